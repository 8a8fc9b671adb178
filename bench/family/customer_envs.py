"""The seeded generator of customer-agent environments (issue 26): customers of the 24 segments
(age band x region x gender of shared/customer/segments.py), a slate of three, each customer accepting at
most one offer of it. `draw(cls, seed)` is a pure function of its arguments (tests/test_family.py).

Per environment (U uniform, LU log-uniform, N(0, 1) draws per offer unless said):
- offers n ~ U{5..30}: OFFER_1..OFFER_n (the static agent and the priors know OFFER_1..OFFER_10);
- customers T: density proportional to T^-1.5 on 5,000-200,000 (median ~18,000, mean ~32,000);
- a customer: age U{18..90}, gender and region uniform; eligible: a random 3 to all of the offers present;
- acceptance of offer o by a customer of segment g, age z = (age - 50) / 20, region r, gender x:
      logit p = logit(level) + spread N_o + w_static S_o(g)
                + w_shared (0.5 N_o z + 0.4 N_o (z^2 - 0.6) + 0.4 N_or + 0.3 N_ox) + w_segment N_og,
  level ~ LU(0.5 %, 20 %), spread ~ U(0.2, 1), w_static ~ U(0, 0.6) (S: the standardised log static
  score; 0 for offers the static agent does not know), p clipped to 0.1 %-80 %;
- classes: segmented (w_segment ~ U(0.4, 1), w_shared ~ U(0, 0.3): every segment its own world),
  contextual (w_segment ~ U(0, 0.2), w_shared ~ U(0.6, 1.5); with probability 1/2 one age band x
  region (two segments) never seen before U(40 %, 80 %) of T), new-products (30-60 % of the offers,
  at least one, join at U(10 %, 70 %) of T), delayed (the reward of a customer reported after a
  geometric delay of mean LU(100, 5,000) customers, capped at 10,000); new-products and delayed draw
  w_segment ~ U(0, 0.8) and w_shared ~ U(0, 1).
"""

from dataclasses import dataclass

import numpy as np

from shared.customer import segments
from shared.customer.agents import linear

CUSTOMER_NUMBER = 126  # salt of the family's customer random numbers
CLASSES = ("segmented", "contextual", "new-products", "delayed")
CUSTOMER_RANGE = (5_000, 200_000)
MAX_DELAY = 10_000
SEGMENT_INDEX = {segment: i for i, segment in enumerate(linear.SEGMENTS)}


@dataclass(eq=False)
class CustomerWorld:
    cls: str
    seed: int
    offers: tuple[str, ...]
    customers: list  # linear.Customer per customer
    segment: np.ndarray  # (T,) index into linear.SEGMENTS
    eligible: np.ndarray  # (T, n) bool
    logit: np.ndarray  # (T, n) acceptance logits (see rates)
    delay: np.ndarray  # (T,) customers until the reward is reported (1: before the next batch)
    unseen: np.ndarray  # (T,) bool: the customer belongs to a segment never seen before its arrival
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.cls}-{self.seed}"

    @property
    def rand_seed(self) -> int:
        return CLASSES.index(self.cls) * 1_000_000 + self.seed

    def rates(self, rows: np.ndarray) -> np.ndarray:
        return np.clip(1.0 / (1.0 + np.exp(-self.logit[rows])), 0.001, 0.8)


def _log_uniform(rng, low, high) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_customers(rng) -> int:
    low, high = (1.0 / np.sqrt(h) for h in CUSTOMER_RANGE)
    count = 1.0 / (low - rng.random() * (low - high)) ** 2
    return int(min(max(round(count / 100) * 100, CUSTOMER_RANGE[0]), CUSTOMER_RANGE[1]))


def _sizes(rng) -> tuple[int, int]:
    return int(rng.integers(5, 31)), draw_customers(rng)


def sizes(cls: str, seed: int) -> tuple[int, int]:
    """(offers, customers) of draw(cls, seed), without drawing the customers."""
    return _sizes(np.random.default_rng([CUSTOMER_NUMBER, CLASSES.index(cls), seed]))


def draw(cls: str, seed: int) -> CustomerWorld:
    if cls not in CLASSES:
        raise ValueError(f"unknown class {cls!r}; one of {CLASSES}")
    rng = np.random.default_rng([CUSTOMER_NUMBER, CLASSES.index(cls), seed])
    n, total = _sizes(rng)
    offers = tuple(f"OFFER_{i}" for i in range(1, n + 1))
    level, spread, w_static = _log_uniform(rng, 0.005, 0.2), rng.uniform(0.2, 1.0), rng.uniform(0.0, 0.6)
    w_segment, w_shared = {
        "segmented": (rng.uniform(0.4, 1.0), rng.uniform(0.0, 0.3)),
        "contextual": (rng.uniform(0.0, 0.2), rng.uniform(0.6, 1.5)),
    }.get(cls, (rng.uniform(0.0, 0.8), rng.uniform(0.0, 1.0)))
    base = np.log(level / (1 - level)) + spread * rng.standard_normal(n)
    slope, curve = 0.5 * rng.standard_normal(n), 0.4 * rng.standard_normal(n)
    region = {r: 0.4 * rng.standard_normal(n) for r in segments.REGIONS}
    gender = {g: 0.3 * rng.standard_normal(n) for g in segments.GENDERS}
    fixed = np.zeros((len(linear.SEGMENTS), n))
    known = min(n, len(segments.OFFERS))
    for g, segment in enumerate(linear.SEGMENTS):
        _, r, x = segment.split("|")
        log_score = np.log([segments.static_scores(segment)[o] for o in segments.OFFERS])
        static = np.zeros(n)
        static[:known] = ((log_score - log_score.mean()) / log_score.std())[:known]
        fixed[g] = base + w_static * static + w_shared * (region[r] + gender[x])
        fixed[g] += w_segment * rng.standard_normal(n)
    ages = rng.integers(18, 91, size=total)
    genders = rng.choice(segments.GENDERS, size=total)
    regions = rng.choice(segments.REGIONS, size=total)
    joins = np.zeros(n, dtype=int)
    detail = (
        f"{n} offers, {total:,} customers, level {100 * level:.1f} %, segment {w_segment:.2f}, shared {w_shared:.2f}"
    )
    unseen = np.zeros(total, dtype=bool)
    if cls == "contextual" and rng.random() < 0.5:
        band = segments.AGE_BANDS[int(rng.integers(len(segments.AGE_BANDS)))][2]
        where = str(rng.choice(segments.REGIONS))
        start = int(rng.uniform(0.4, 0.8) * total)
        others = rng.choice([r for r in segments.REGIONS if r != where], size=total)
        bands = np.array([segments.age_band(a) for a in ages])
        hidden = (bands == band) & (regions == where)
        regions = np.where(hidden & (np.arange(total) < start), others, regions)
        unseen = hidden & (np.arange(total) >= start)
        detail += f"; {band} in {where} unseen before customer {start:,}"
    if cls == "new-products":
        joining = rng.permutation(n)[: min(n - 3, max(1, int(round(n * rng.uniform(0.3, 0.6)))))]
        joins[joining] = (rng.uniform(0.1, 0.7, size=len(joining)) * total).astype(int)
        detail += f"; {len(joining)} offers join"
    delay = np.ones(total, dtype=int)
    if cls == "delayed":
        mean = _log_uniform(rng, 100.0, 5000.0)
        u = rng.random(total)
        delay = np.minimum(np.ceil(np.log(u) / np.log1p(-1.0 / mean)), MAX_DELAY).astype(int)
        detail += f"; reward delay mean {mean:,.0f} customers"
    customers = [linear.Customer(int(a), str(x), str(r)) for a, x, r in zip(ages, genders, regions, strict=True)]
    segment = np.array([SEGMENT_INDEX[segments.segment_of(*c)] for c in customers])
    z = (ages.astype(float) - 50.0) / 20.0
    logit = fixed[segment] + w_shared * (np.outer(z, slope) + np.outer(z**2 - 0.6, curve))
    eligible = _eligible(rng, joins, total)
    return CustomerWorld(cls, seed, offers, customers, segment, eligible, logit, delay, unseen, detail)


def _eligible(rng, joins: np.ndarray, total: int) -> np.ndarray:
    """(T, n): per customer a random 3 to all of the offers present (at least 3 are present from the start)."""
    n = len(joins)
    present = np.arange(total)[:, None] >= joins[None, :]
    keys = np.where(present, rng.random((total, n)), 2.0)
    count = present.sum(axis=1)
    size = 3 + (rng.random(total) * (count - 2)).astype(int)  # U{3..count}
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    return rank < size[:, None]
