"""The seeded generator of CPA environments (issue 26). `draw(cls, seed)` is a pure function of its
arguments: the same (class, seed) always gives the same environment (tests/test_family.py).

Ranges (every class unless said; U uniform, LU log-uniform):
- offers K: uniform over K_GRID (2 to 200, about log-uniform); rotating and arrivals K >= 5; close K = 2;
- conversion rates: ln r_i = ln c + s Z_i, c ~ LU(0.03 %, 10 %), s ~ U(0.1, 1), clipped to 0.01 %-20 %;
- mean payouts: all BASE_PAYOUT (1,000 cents) with probability 1/3, else BASE_PAYOUT exp(sigma Z_i),
  sigma ~ U(0, 2) (offers paying up to ~50x one another);
- a conversion's payout: the mean (probability 1/2) or lognormal around it, mean-preserving, sigma ~ U(0, 2);
- horizon T: density proportional to T^-1.5 on 10,000-1,000,000 clicks (median 33,000, mean 100,000,
  4.6 % above 500,000), in steps of BUCKET clicks: the full range, at a compute cost that keeps the
  test split within about an hour of one core per policy;
- rates are constant within each BUCKET (100 clicks) and evaluated at its first click.
Classes (what each adds to the common draw; every other class has all offers eligible, no delay and
stationary rates):
- stationary: nothing;
- rotating: each click offers `shown` of the K offers (uniform 2 to K - 1), drawn without replacement
  with per-offer weights w_i ~ U(0.2, 1) (some offers are eligible more often than others);
- arrivals: 20-60 % of the offers (at least 2) present at the start, the others join at U(5 %, 80 %)
  of T; every offer but two starting anchors leaves with probability 0.3 at a uniform time after it joins;
- delayed: conversions reported after a geometric delay of mean LU(10, 3,000) clicks, capped at 10,000;
- drifting: rates abrupt (1-5 changes at U(10 %, 90 %) of T, each offer redrawn with probability
  U(0.3, 1)), gradual (fresh rates at 1-4 equally spaced knots, linear in ln r between them) or
  periodic (ln r_i + A a_i sin(2 pi t / P + phi_i), A ~ U(0.3, 1), a_i ~ U(0, 1), P ~ LU(T / 20, T / 2));
- close: two offers whose revenue per click differ by a relative gap U(5 %, 20 %), by the rate
  alone (equal payouts) or with the worse offer paying U(1, 2)x more at a lower rate; better
  offer's rate LU(0.5 %, 20 %); fixed payouts; T at least CLOSE_INFORMATION / kl (kl: the
  Lai-Robbins divergence of the worse offer), so the horizon can tell the two apart.
Offers are drawn independently, so their order (the candidate position) is random.
"""

from dataclasses import dataclass, field

import numpy as np

FAMILY_NUMBER = 26  # salt of every random number of the family (issue 26)
CLASSES = ("stationary", "rotating", "arrivals", "delayed", "drifting", "close")
STATIONARY_CLASSES = ("stationary", "rotating", "arrivals", "delayed", "close")  # rates never move
K_GRID = (2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200)
RATE_RANGE = (1e-4, 0.2)
RATE_CENTRE = (3e-4, 0.1)
BASE_PAYOUT = 1000.0  # cents
HORIZON_RANGE = (10_000, 1_000_000)
BUCKET = 100  # clicks: rates, arrivals and departures change only at multiples of it
MAX_DELAY = 10_000
CLOSE_INFORMATION = 40.0  # T x kl(worse, best) at least this: the horizon can tell the two apart


@dataclass(eq=False)
class CpaEnvironment:
    cls: str
    seed: int
    k: int
    horizon: int
    mean_payouts: np.ndarray  # (K,) cents
    payout_sigma: float  # a conversion pays mean x exp(sigma Z - sigma^2 / 2)
    knots: np.ndarray  # (M,) clicks at which each row of knot_log_rates holds (knots[0] = 0)
    knot_log_rates: np.ndarray  # (M, K)
    interpolate: bool = False  # ln r linear between knots (gradual, periodic), else a step at each knot
    joins: np.ndarray = field(default=None)  # (K,) click an offer joins at (0: from the start)
    leaves: np.ndarray = field(default=None)  # (K,) click it leaves at (horizon: never)
    shown: int = 0  # candidates per click (0: every offer present)
    eligibility: np.ndarray = field(default=None)  # (K,) weights of the rotating draw
    delay_mean: float = 0.0  # clicks; 0: conversions reported at once
    drift: str = "none"  # none, abrupt, gradual or periodic
    detail: str = ""

    def __post_init__(self):
        if self.joins is None:
            self.joins = np.zeros(self.k, dtype=int)
        if self.leaves is None:
            self.leaves = np.full(self.k, self.horizon, dtype=int)
        if self.eligibility is None:
            self.eligibility = np.ones(self.k)

    @property
    def key(self) -> str:
        return f"{self.cls}-{self.seed}"

    @property
    def rand_seed(self) -> int:
        """The seed bench.rand keys this environment's outcomes on (with FAMILY_NUMBER as its
        environment number): unique per (class, seed)."""
        return CLASSES.index(self.cls) * 1_000_000 + self.seed

    def rates_at(self, click: int) -> np.ndarray:
        """(K,) conversion rates during the BUCKET holding `click`."""
        t = (click // BUCKET) * BUCKET
        i = int(np.searchsorted(self.knots, t, side="right")) - 1
        log_rates = self.knot_log_rates[i]
        if self.interpolate and i + 1 < len(self.knots):
            w = (t - self.knots[i]) / (self.knots[i + 1] - self.knots[i])
            log_rates = (1.0 - w) * log_rates + w * self.knot_log_rates[i + 1]
        return np.clip(np.exp(log_rates), *RATE_RANGE)

    def present_at(self, click: int) -> np.ndarray:
        """(K,) bool: the offers in the market at `click`."""
        return (self.joins <= click) & (click < self.leaves)

    def values_at(self, click: int) -> np.ndarray:
        return self.rates_at(click) * self.mean_payouts


def _log_uniform(rng, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_horizon(rng) -> int:
    """Density proportional to T^-1.5 on HORIZON_RANGE (inverse of its distribution function)."""
    low, high = (1.0 / np.sqrt(h) for h in HORIZON_RANGE)
    horizon = 1.0 / (low - rng.random() * (low - high)) ** 2
    return int(min(max(round(horizon / BUCKET) * BUCKET, HORIZON_RANGE[0]), HORIZON_RANGE[1]))


def _offer_draw(rng, k: int):
    """(centre, spread, log rates (K,), mean payouts (K,), payout sigma): the common draw."""
    centre, spread = np.log(_log_uniform(rng, *RATE_CENTRE)), rng.uniform(0.1, 1.0)
    log_rates = np.clip(centre + spread * rng.standard_normal(k), *np.log(RATE_RANGE))
    equal = rng.random() < 1 / 3
    payout_spread = 0.0 if equal else rng.uniform(0.0, 2.0)
    mean_payouts = BASE_PAYOUT * np.exp(payout_spread * rng.standard_normal(k))
    payout_sigma = 0.0 if rng.random() < 0.5 else rng.uniform(0.0, 2.0)
    detail = f"payouts {'equal' if equal else f'spread {payout_spread:.2f}'}, conversion sigma {payout_sigma:.2f}"
    return centre, spread, log_rates, mean_payouts, payout_sigma, detail


def _round(clicks: np.ndarray) -> np.ndarray:
    return (np.round(np.asarray(clicks, dtype=float) / BUCKET) * BUCKET).astype(int)


def bernoulli_kl(p, q):
    p, q = np.clip(p, 1e-15, 1 - 1e-15), np.clip(q, 1e-15, 1 - 1e-15)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def _close(rng, seed: int) -> CpaEnvironment:
    while True:
        best_rate, gap = _log_uniform(rng, 0.005, 0.2), rng.uniform(0.05, 0.2)
        by_payout = rng.random() < 0.5
        ratio = rng.uniform(1.0, 2.0) if by_payout else 1.0  # the worse offer's payout / the better's
        worse_rate = best_rate * (1.0 - gap) / ratio
        kl = bernoulli_kl(worse_rate, best_rate / ratio)  # the rate at which the worse offer would tie
        needed = CLOSE_INFORMATION / kl
        if needed <= HORIZON_RANGE[1]:
            break
    horizon = max(draw_horizon(rng), int(np.ceil(needed / BUCKET)) * BUCKET)
    rates, payouts = np.array([best_rate, worse_rate]), BASE_PAYOUT * np.array([1.0, ratio])
    order = rng.permutation(2)
    how = "rate and payout" if by_payout else "rate"
    detail = f"K = 2, T = {horizon:,}, gap {100 * gap:.1f} % by {how}, best rate {100 * best_rate:.2f} %"
    return CpaEnvironment(
        "close", seed, 2, horizon, payouts[order], 0.0, np.zeros(1, dtype=int), np.log(rates[order])[None, :],
        detail=detail,
    )  # fmt: skip


def draw(cls: str, seed: int) -> CpaEnvironment:
    """The environment of class `cls` drawn from `seed` (see the module's doc for the ranges)."""
    if cls not in CLASSES:
        raise ValueError(f"unknown class {cls!r}; one of {CLASSES}")
    rng = np.random.default_rng([FAMILY_NUMBER, CLASSES.index(cls), seed])
    if cls == "close":
        return _close(rng, seed)
    grid = [k for k in K_GRID if k >= 5] if cls in ("rotating", "arrivals") else list(K_GRID)
    k = int(grid[rng.integers(len(grid))])
    horizon = draw_horizon(rng)
    centre, spread, log_rates, payouts, sigma, detail = _offer_draw(rng, k)
    env = CpaEnvironment(cls, seed, k, horizon, payouts, sigma, np.zeros(1, dtype=int), log_rates[None, :])
    if cls == "rotating":
        env.shown = int(rng.integers(2, k))
        env.eligibility = rng.uniform(0.2, 1.0, size=k)
        detail += f"; {env.shown} of {k} offers per click"
    elif cls == "arrivals":
        start = max(2, round(k * rng.uniform(0.2, 0.6)))
        first = rng.permutation(k)
        joins = np.zeros(k, dtype=int)
        joins[first[start:]] = _round(rng.uniform(0.05, 0.8, size=k - start) * horizon)
        leaves = np.full(k, horizon, dtype=int)
        leaving = rng.random(k) < 0.3
        leaving[first[:2]] = False  # two anchors stay: the market never has fewer than two offers
        when = _round(joins + rng.uniform(0.0, 1.0, size=k) * (horizon - joins))
        leaves = np.where(leaving & (when > joins), when, leaves)
        env.joins, env.leaves = joins, leaves
        detail += f"; {start} offers at the start, {k - start} join, {int((leaves < horizon).sum())} leave"
    elif cls == "delayed":
        env.delay_mean = _log_uniform(rng, 10.0, 3000.0)
        detail += f"; delay mean {env.delay_mean:,.0f} clicks"
    elif cls == "drifting":
        env.drift = str(rng.choice(["abrupt", "gradual", "periodic"]))
        env.knots, env.knot_log_rates, env.interpolate, how = _drift(rng, env.drift, horizon, centre, spread, log_rates)
        detail += f"; {env.drift} drift ({how})"
    env.detail = f"K = {k}, T = {horizon:,}, rate centre {100 * np.exp(centre):.3f} %, {detail}"
    return env


def _drift(rng, mode: str, horizon: int, centre: float, spread: float, log_rates: np.ndarray):
    """(knots, knot log rates, interpolate, description) of a drifting environment."""
    k = len(log_rates)
    low, high = np.log(RATE_RANGE)
    if mode == "abrupt":
        changes = int(rng.integers(1, 6))
        knots = np.unique(_round(np.sort(rng.uniform(0.1, 0.9, size=changes)) * horizon))
        tables = [log_rates]
        moving = rng.uniform(0.3, 1.0)
        for _ in knots:
            fresh = np.clip(centre + spread * rng.standard_normal(k), low, high)
            tables.append(np.where(rng.random(k) < moving, fresh, tables[-1]))
        return np.concatenate([[0], knots]), np.array(tables), False, f"{len(knots)} changes"
    if mode == "gradual":
        segments = int(rng.integers(1, 5))
        knots = _round(np.arange(segments + 1) * horizon / segments)
        tables = [log_rates] + [np.clip(centre + spread * rng.standard_normal(k), low, high) for _ in range(segments)]
        return knots, np.array(tables), True, f"{segments} segments"
    amplitude = rng.uniform(0.3, 1.0)
    period = _log_uniform(rng, horizon / 20, horizon / 2)
    weights, phases = rng.uniform(0.0, 1.0, size=k), rng.uniform(0.0, 2 * np.pi, size=k)
    step = max(BUCKET, int(period / 16 / BUCKET) * BUCKET)
    knots = np.arange(0, horizon + step, step)
    tables = log_rates + amplitude * weights * np.sin(2 * np.pi * knots[:, None] / period + phases)
    return knots, np.clip(tables, low, high), True, f"amplitude {amplitude:.2f}, period {period:,.0f} clicks"
