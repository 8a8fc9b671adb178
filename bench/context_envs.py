"""The environments of issue 24, fixed before any policy was tuned on them (bench/README.md):

- `contextual`: 20 offers (CPA-20: E1's offers twice, rates x exp(0.3 Z) per seed, fixed payouts),
  each click with a country (30, Zipf-skewed: the first five carry about half the traffic), a
  device (desktop 35 %, mobile 50 %, tablet 10 %, other 5 %) and a source (200, Zipf; a quarter of
  them first appear at T/2). Offer j's rate in context (g, d, s) is its base rate x
  exp(geo_{j,g} + device_{j,d} + source_{j,s}), effects Normal(0, 0.3 / 0.2 / 0.3) drawn per seed,
  so the best offer differs by context (the best single offer earns 72 % of the contextual
  oracle's revenue). T = 200,000.
- `E1-context`: E1 (the same offers, arm order and conversion draws) with the same kinds of context
  drawn but no effect at all: context that says nothing.
- `capped`: CPA-10 (E1's offers, rates x exp(0.3 Z) per seed) over 2 days of 100,000 clicks with a
  daily traffic curve (intensity 1 + 0.6 sin(2 pi (t - 0.375)), t the time of day); the two offers
  of highest value per click are capped per day at 30 % of the conversions each would make on all
  of the day's clicks (conversions past a cap are not paid). The capped optimum is the linear
  programme that knows every rate (`capped_optimum`).
- `capped-delayed`: `capped` (the same offers, caps and draws) with each conversion's postback
  arriving an exponential delay after its click, mean 1 hour of the 24 h day (`delay`, in days).
  A conversion reaches the learning statistics and the day's spend only when it arrives, counts
  against the cap of the day it arrives on, and is not paid when that day's cap is already reached;
  conversions still on their way when the run ends are paid (they land in a new day). Parameters
  fixed before any policy ran on it.

Every draw is paired (bench/rand.py): the context of click t of seed s and whether offer x converts
there are the same for every policy.
"""

from dataclasses import dataclass

import numpy as np

from bench import rand
from bench.envs import CPA10_PAYOUTS, CPA10_RATES

FEATURES = ("geo", "device", "source")
DEVICE_SHARES = (0.35, 0.5, 0.1, 0.05)
STREAM_CONVERSION, STREAM_CONTEXT, STREAM_DELAY = 0, 6, 8


@dataclass(frozen=True)
class ContextEnv:
    key: str
    number: int  # salt of the paired random numbers (E1-context: E1's, for E1's very draws)
    title: str
    horizon: int
    k: int
    sigmas: tuple = (0.0, 0.0, 0.0)  # sd of the log-rate effects of geo, device, source
    countries: int = 30
    sources: int = 200
    late_share: float = 0.25  # of sources, first seen at T/2
    jitter: float = 0.3  # base rates x exp(jitter Z) per seed (0: E1's rates as they are)
    days: int = 0  # > 0: capped days of horizon / days clicks
    cap_share: float = 0.3
    capped: int = 2
    delay: float = 0.0  # > 0: mean postback delay, as a share of the day (exponential)
    detail: str = ""

    def cardinalities(self) -> tuple[int, int, int]:
        return self.countries, len(DEVICE_SHARES), self.sources


def _zipf(n: int, power: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** power
    return weights / weights.sum()


class ContextWorld:
    """Per-seed tables, by candidate position (arm order shuffled per seed as bench.envs does)."""

    def __init__(self, env: ContextEnv, seeds: np.ndarray):
        self.env, self.seeds = env, np.asarray(seeds)
        b, k = len(self.seeds), env.k
        base_rates = np.tile(CPA10_RATES, k // len(CPA10_RATES))
        payouts = np.tile(CPA10_PAYOUTS, k // len(CPA10_PAYOUTS))
        self.order = np.array([np.random.default_rng([env.number, int(s), 11]).permutation(k) for s in self.seeds])
        self.rates = np.empty((b, k))
        self.effects = [np.empty((b, k, n)) for n in env.cardinalities()]
        for row, seed in enumerate(self.seeds):
            rng = np.random.default_rng([env.number, int(seed), 7])
            jitter = np.exp(env.jitter * rng.standard_normal(k)) if env.jitter else np.ones(k)
            self.rates[row] = (base_rates * jitter)[self.order[row]]
            effects_rng = np.random.default_rng([env.number, int(seed), 21])
            for table, sigma in zip(self.effects, env.sigmas, strict=True):
                table[row] = sigma * effects_rng.standard_normal(table.shape[1:]) if sigma else 0.0
        self.payouts = np.take_along_axis(np.broadcast_to(payouts, (b, k)), self.order, axis=1)
        self.shares = [_zipf(env.countries, 1.1), np.array(DEVICE_SHARES), _zipf(env.sources, 1.0)]
        late = np.random.default_rng([env.number, 5]).permutation(env.sources)[: int(env.late_share * env.sources)]
        early = _zipf(env.sources, 1.0)
        early[late] = 0.0
        self.early_sources = early / early.sum()
        self.offsets = np.cumsum([0, *env.cardinalities()])[:-1]

    def contexts(self, first: int, count: int) -> np.ndarray:
        """(count, B, 3): the country, device and source of clicks first..first+count of each seed."""
        steps = np.arange(first, first + count)[:, None]
        columns = []
        for feature, shares in enumerate(self.shares):
            u = rand.uniform(self.env.number, self.seeds[None, :], steps, 1000 + feature, STREAM_CONTEXT)
            found = np.searchsorted(np.cumsum(shares), u)
            if feature == 2:  # sources: a quarter of them only from T/2 on
                early = np.searchsorted(np.cumsum(self.early_sources), u)
                found = np.where(steps < self.env.horizon // 2, early, found)
            columns.append(np.minimum(found, len(shares) - 1))
        return np.stack(columns, axis=2)

    def context(self, step: int) -> np.ndarray:
        """(B, 3): the click's country, device and source of each seed."""
        return self.contexts(step, 1)[0]

    def values(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rates, values) shaped (B, K) in this context; with a leading axis of clicks, (N, B, K)."""
        rows = np.arange(len(self.seeds))
        rows = rows[None, :] if context.ndim == 3 else rows
        log_effect = sum(table[rows, :, context[..., f]] for f, table in enumerate(self.effects))
        rates = np.minimum(self.rates * np.exp(log_effect), 0.5)
        return rates, rates * self.payouts

    def converted(self, step: int, position: np.ndarray, rates: np.ndarray) -> np.ndarray:
        rows = np.arange(len(self.seeds))
        offers = self.order[rows, position]
        return rand.uniform(self.env.number, self.seeds, step, offers, STREAM_CONVERSION) < rates[rows, position]

    # -- caps ---------------------------------------------------------------------------------
    def day_length(self) -> int:
        return self.env.horizon // self.env.days

    def caps(self) -> np.ndarray:
        """(B, K) conversions per day; inf for an uncapped offer."""
        value = self.rates * self.payouts
        top = np.argsort(-value, axis=1)[:, : self.env.capped]
        caps = np.full(value.shape, np.inf)
        rows = np.arange(len(self.seeds))[:, None]
        caps[rows, top] = self.env.cap_share * self.day_length() * self.rates[rows, top]
        return caps

    def arrivals(self, times: np.ndarray) -> np.ndarray:
        """(T, B) int32: the click at or after which the postback of each click of each seed arrives
        (an exponential delay of mean `delay` days after the click's time; T when after the run).
        `times` are the clicks' times in days since the start (increasing). Drawn for every click,
        converting or not, from its own stream: the same for every policy."""
        found = np.empty((len(times), len(self.seeds)), dtype=np.int32)
        for first in range(0, len(times), 10_000):
            steps = np.arange(first, min(first + 10_000, len(times)))
            u = rand.uniform(self.env.number, self.seeds[None, :], steps[:, None], 0, STREAM_DELAY)
            arrive = times[steps, None] - self.env.delay * np.log(u)
            found[steps] = np.searchsorted(times, arrive, side="left")
        return found

    def time_of_day(self) -> np.ndarray:
        """The time of day (share of 24 h) of each click of a day, under the traffic curve."""
        grid = np.linspace(0.0, 1.0, 10_001)
        intensity = 1.0 + 0.6 * np.sin(2 * np.pi * (grid - 0.375))
        cumulative = np.concatenate([[0.0], np.cumsum((intensity[1:] + intensity[:-1]) / 2)])
        cumulative /= cumulative[-1]
        return np.interp((np.arange(self.day_length()) + 0.5) / self.day_length(), cumulative, grid)


def capped_optimum(rates: np.ndarray, payouts: np.ndarray, caps: np.ndarray, clicks: int) -> float:
    """The linear programme that knows every rate: a day's clicks x_j >= 0 summing to `clicks`,
    rate_j x_j <= cap_j, maximising sum rate_j payout_j x_j (scipy's HiGHS)."""
    from scipy.optimize import linprog

    k = len(rates)
    value = rates * payouts
    bounded = np.isfinite(caps)
    found = linprog(
        -value,
        A_ub=np.diag(rates)[bounded] if bounded.any() else None,
        b_ub=caps[bounded] if bounded.any() else None,
        A_eq=np.ones((1, k)),
        b_eq=[clicks],
        bounds=[(0, None)] * k,
        method="highs",
    )
    if not found.success:
        raise RuntimeError(found.message)
    return float(-found.fun)


ENVS = {
    env.key: env
    for env in (
        ContextEnv(
            "contextual",
            24,
            "contextual",
            200_000,
            20,
            sigmas=(0.3, 0.2, 0.3),
            detail="CPA-20 with per-offer country (30), device (4) and source (200, a quarter new at T/2) "
            "effects on the rate, sd 0.3 / 0.2 / 0.3",
        ),
        ContextEnv(
            "E1-context",
            1,
            "E1 with uninformative context",
            100_000,
            10,
            jitter=0.0,
            detail="E1 (same draws) with country, device and source drawn per click and no effect",
        ),
        ContextEnv(
            "capped",
            25,
            "capped",
            200_000,
            10,
            days=2,
            detail="CPA-10 (rates x exp(0.3 Z)), 2 days of 100,000 clicks on a daily traffic curve; the two "
            "best offers capped per day at 30 % of the conversions they would make on every click",
        ),
        ContextEnv(
            "capped-delayed",
            25,
            "capped, postbacks delayed",
            200_000,
            10,
            days=2,
            delay=1 / 24,
            detail="capped (the same offers, caps and draws) with each postback arriving an exponential delay "
            "after its click, mean 1 h of the 24 h day; spend and learning only on arrival, a conversion "
            "arriving after its day's cap is reached not paid",
        ),
    )
}
