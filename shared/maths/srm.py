"""Sample-ratio mismatch: are the observed counts of a split (holdout / the rest, or any configured
split) what its configured shares expect? Pearson's chi-square test of observed against expected
counts, with its p-value. Pure.

A split whose assignment is broken (a bug, a client retrying one side more, decisions lost on one
path) shows as a tiny p-value long before it shows in the metrics. The usual alarm: p < 0.001
(GrowthBook, Statsig), so a fair split alarms once in a thousand checks.
"""

import math
from dataclasses import dataclass

ALARM_P = 0.001


@dataclass(frozen=True)
class Test:
    statistic: float
    dof: int
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < ALARM_P


def chi_square(observed, expected) -> Test:
    """observed[i] counts against expected[i] counts (same total); groups expected to hold nothing
    are left out (a count there is a mismatch by itself: p = 0)."""
    statistic, groups = 0.0, 0
    for seen, wanted in zip(observed, expected, strict=True):
        if wanted <= 0:
            if seen > 0:
                return Test(math.inf, 0, 0.0)
            continue
        statistic += (seen - wanted) ** 2 / wanted
        groups += 1
    dof = groups - 1
    if dof < 1:
        return Test(0.0, 0, 1.0)
    return Test(statistic, dof, upper_gamma_regularized(dof / 2, statistic / 2))


def upper_gamma_regularized(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a): the chi-square survival function at 2x with 2a degrees of freedom
    (series below a + 1, continued fraction above, as in Numerical Recipes' gammq)."""
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        for n in range(1, 1000):
            term *= x / (a + n)
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return math.exp(log_prefix) * h
