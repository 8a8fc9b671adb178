"""The lift of the learning policy over the holdout: the difference of their mean reward per
decision (revenue per click, acceptance per episode), with a 95 % interval. Pure.

Each arm is summarised by its decisions n, the sum of their rewards and of their squares (what one
GROUP BY returns, tools/analytics/queries.py), so a day's arms and the cumulative arms (sums of
days) are estimated the same way: Welch's normal-approximation interval of the difference of two
independent means, var = s1² / n1 + s2² / n2. The holdout's assignment is random and independent of
everything else (shared/platform/holdout.py), so the difference is an unbiased estimate of what the
learning policy earns per decision over the baseline. The normal approximation needs both arms
large enough: below MIN_DECISIONS in either, the difference has no interval (too few).
"""

import math
from dataclasses import dataclass

from shared.maths.estimators import Z95, Estimate

NAN = Estimate(math.nan, math.nan, math.nan)
MIN_DECISIONS = 30


@dataclass(frozen=True)
class Arm:
    n: int
    total: float
    total_sq: float

    def __add__(self, other: "Arm") -> "Arm":
        return Arm(self.n + other.n, self.total + other.total, self.total_sq + other.total_sq)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """The sample variance of the rewards (ddof 1)."""
        if self.n < 2:
            return math.nan
        return max(self.total_sq - self.total * self.total / self.n, 0.0) / (self.n - 1)


EMPTY = Arm(0, 0.0, 0.0)


def difference(learning: Arm, holdout: Arm, z: float = Z95) -> Estimate:
    """learning mean - holdout mean with its interval; no interval (NaN bounds) with fewer than
    MIN_DECISIONS decisions in an arm, no value either without any."""
    if learning.n < 1 or holdout.n < 1:
        return NAN
    value = learning.mean - holdout.mean
    if learning.n < MIN_DECISIONS or holdout.n < MIN_DECISIONS:
        return Estimate(value, math.nan, math.nan)
    half = z * math.sqrt(learning.variance / learning.n + holdout.variance / holdout.n)
    return Estimate(value, value - half, value + half)


@dataclass(frozen=True)
class Lift:
    day: object  # a date, or None for the cumulative row
    learning: Arm
    holdout: Arm
    difference: Estimate

    @property
    def relative(self) -> float:
        """The difference as a share of the holdout's mean (NaN when that is 0)."""
        base = self.holdout.mean
        return self.difference.value / base if base and math.isfinite(base) else math.nan


def by_day(rows, z: float = Z95) -> tuple[list[Lift], Lift]:
    """rows: {day, holdout, n, total, total_sq}, one per day and arm; the lift per day (oldest
    first) and cumulated over every day."""
    days: dict = {}
    for row in rows:
        arms = days.setdefault(row["day"], {True: EMPTY, False: EMPTY})
        arms[bool(row["holdout"])] += Arm(int(row["n"]), float(row["total"] or 0), float(row["total_sq"] or 0))
    daily = [
        Lift(day, arms[False], arms[True], difference(arms[False], arms[True], z)) for day, arms in sorted(days.items())
    ]
    learning = sum((lift.learning for lift in daily), EMPTY)
    holdout = sum((lift.holdout for lift in daily), EMPTY)
    return daily, Lift(None, learning, holdout, difference(learning, holdout, z))
