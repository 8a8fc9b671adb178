"""The contextual linear agent (`linear-ts`, `linear-ucb`): one Bayesian linear model per offer over
the customer's features. Pure, no I/O.

Features of a customer (`FEATURES`, the same vector for every offer; the offer's one-hot id picks
which offer's model it enters, i.e. the joint feature is e_offer ⊗ x(customer)):
- `bias`; `age` = (age − 50) / 20 and `age2` = its square (age clipped to 18-90): continuous age;
- one-hots of the age band, region and gender (the static agent's three weight lists);
- a one-hot of the segment (band × region × gender), so a segment with enough evidence is fit as
  closely as the segment agent fits it, while a segment never seen is scored from the shared
  band, region, gender and age effects alone.

Reward per offer shown (slate credit, `credit`): the client names the accepted offer → 1 to it, 0 to
the other two; it only says "one of the three" → 1/3 to each; a refusal → 0 to each. Either way the
credits of a slate sum to its acceptance, and an offer's expected credit is about its own
acceptance rate when the three are alike.

Model of offer o: credit ≈ xᵀθ_o + noise (sd `NOISE_SD`), prior θ_o ~ N(θ₀_o, NOISE_SD² A₀⁻¹).
Posterior: A = A₀ + Σ x xᵀ, b = A₀ θ₀ + Σ r x, mean μ = A⁻¹ b, covariance NOISE_SD² A⁻¹.
- Prior mean θ₀: `PRIOR_CREDIT` on `bias` plus `PRIOR_SLOPE` × the centred log of the static
  weight on each band, region and gender feature. log(static score) = log a + log r + log g is
  additive in those one-hots, so the prior score ranks offers exactly as `segments.static_scores`
  does. An offer the static agent never knew gets `bias` only: the segment's geometric-mean offer.
- Prior precision A₀ = diagonal, `PRIOR_STRENGTH` × (number of active features): the prior
  prediction for a customer is worth about PRIOR_STRENGTH (10) rewards, as the segment agent's.
  The segment features' precision λ is then estimated per offer from its own statistics (EM,
  `_solve`): segment effects are offsets from the shared model, loosened where segments
  disagree with it and tightened where it carries them.
- `linear-ts` draws xᵀθ̃ ~ N(xᵀμ, NOISE_SD² xᵀA⁻¹x) per offer and customer (the models are
  independent across offers, so this is one Thompson draw of θ); `linear-ucb` scores
  xᵀμ + UCB_ALPHA × NOISE_SD × sqrt(xᵀA⁻¹x). The slate is the top three.

Sufficient statistics (what the store keeps, additive, in sharded counters with Increment:
shared/customer/linear_store.py), per offer o, as dotted field paths (Firestore nests them as
maps; `counters.add` takes them as is):
- `{o}.n`: decisions counted for o;
- `{o}.xx.{f}.{g}`: Σ x_f x_g for features f ≤ g in `FEATURES` order (upper triangle of Σ x xᵀ);
- `{o}.xr.{f}`: Σ r x_f.
The prior is not stored: A, b and λ are rebuilt from these sums at read time, so a prior change
needs no migration. Only non-zero amounts are emitted: one reward touches at most
3 × (1 + 28 + 7) = 108 fields (7 active features), below Firestore's 500 transforms per document
per commit. Stats may come flat ({"OFFER_1.xx.bias.age": 3.0}) or nested as read back.
"""

import functools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from shared.customer import segments

TS, UCB = "linear-ts", "linear-ucb"  # the two agents this model serves (registry.py)
AGE_CENTRE, AGE_SCALE, AGE_RANGE = 50.0, 20.0, (18.0, 90.0)
PRIOR_CREDIT = 0.05  # an average offer's credit: the segment agent's 0.15 slate acceptance / 3
PRIOR_SLOPE = 0.05  # prior credit per unit of log static weight: ~ the segment agent's prior / 3 at the average offer
PRIOR_STRENGTH = 10.0
NOISE_SD = 0.15  # sd of one offer's credit (0, 1/3 or 1) around its mean
UCB_ALPHA = 1.0


class Customer(NamedTuple):
    """What the linear agent reads of a customer; `States` and batch rows have the same attributes."""

    age: float
    gender: str
    region: str


def _name(label: str) -> str:
    return label.replace("-", "_").replace("+", "_plus").replace("|", "_")


BANDS = tuple(label for _, _, label in segments.AGE_BANDS)
SEGMENTS = tuple(
    f"{band}|{region}|{gender}" for band in BANDS for region in segments.REGIONS for gender in segments.GENDERS
)
FEATURES: tuple[str, ...] = (
    "bias",
    "age",
    "age2",
    *(f"band_{_name(band)}" for band in BANDS),
    *(f"region_{region}" for region in segments.REGIONS),
    *(f"gender_{gender}" for gender in segments.GENDERS),
    *(f"seg_{_name(segment)}" for segment in SEGMENTS),
)
INDEX = {name: i for i, name in enumerate(FEATURES)}
DIM = len(FEATURES)
ACTIVE = 7  # non-zero features of one customer: bias, age, age2, band, region, gender, segment
_PAIRS = {(FEATURES[i], FEATURES[j]): (i, j) for i in range(DIM) for j in range(i, DIM)}


def representative(segment: str) -> Customer:
    """A customer of `segment` when only the segment is known: the middle of its age band."""
    band, region, gender = segment.split("|")
    low, high = next((low, min(high, AGE_RANGE[1])) for low, high, label in segments.AGE_BANDS if label == band)
    return Customer(age=(max(low, AGE_RANGE[0]) + high) / 2, gender=gender, region=region)


def customer_features(customer) -> np.ndarray:
    """x(customer), read-only (cached)."""
    return _features(float(customer.age), customer.gender, customer.region)


@functools.lru_cache(maxsize=4096)
def _features(age: float, gender: str, region: str) -> np.ndarray:
    customer = Customer(age, gender, region)
    z = (float(np.clip(customer.age, *AGE_RANGE)) - AGE_CENTRE) / AGE_SCALE
    band = segments.age_band(customer.age)
    x = np.zeros(DIM)
    x[:3] = 1.0, z, z * z
    segment = f"seg_{_name(segments.segment_of(customer.age, customer.gender, customer.region))}"
    for name in (f"band_{_name(band)}", f"region_{customer.region}", f"gender_{customer.gender}", segment):
        if name in INDEX:  # a region or gender the model has no feature for adds nothing
            x[INDEX[name]] = 1.0
    x.flags.writeable = False
    return x


def features(customer, offer: str) -> np.ndarray:
    """The feature vector of (customer, offer) within offer's model: every offer's model reads the
    same customer features (the offer is the one-hot that picks the model)."""
    del offer  # the offer's identity is the model it enters, not a feature inside it
    return customer_features(customer)


def credit(slate: Sequence[str], accepted: bool, accepted_offer: str | None) -> dict[str, float]:
    """Each shown offer's reward (slate credit): see the module docstring."""
    if not accepted:
        return {offer: 0.0 for offer in slate}
    if accepted_offer in slate:
        return {offer: float(offer == accepted_offer) for offer in slate}
    return {offer: 1.0 / len(slate) for offer in slate}


def update_amounts(customer, slate: Sequence[str], accepted: bool, accepted_offer: str | None = None) -> dict:
    """What one reward adds to the statistics: {field path: delta}, non-zero deltas only."""
    x = customer_features(customer)
    active = np.flatnonzero(x)
    amounts: dict[str, float] = {}
    for offer, reward in credit(slate, accepted, accepted_offer).items():
        amounts[f"{offer}.n"] = 1.0
        for a, i in enumerate(active):
            for j in active[a:]:
                amounts[f"{offer}.xx.{FEATURES[i]}.{FEATURES[j]}"] = float(x[i] * x[j])
            if reward:
                amounts[f"{offer}.xr.{FEATURES[i]}"] = float(reward * x[i])
    return amounts


def _flatten(stats: Mapping, prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in stats.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = float(value)
    return flat


@functools.lru_cache(maxsize=1024)
def prior_mean(offer: str) -> np.ndarray:
    """θ₀ of the offer's model (read-only: it is cached)."""
    theta = np.zeros(DIM)
    theta[INDEX["bias"]] = PRIOR_CREDIT
    if offer in segments.OFFERS:
        k = segments.OFFERS.index(offer)
        tables = (
            ("band", segments.AGE_WEIGHTS),
            ("region", segments.REGION_WEIGHTS),
            ("gender", segments.GENDER_WEIGHTS),
        )
        for prefix, table in tables:
            for value, weights in table.items():
                logs = np.log(weights)
                theta[INDEX[f"{prefix}_{_name(value)}"]] = PRIOR_SLOPE * (logs[k] - logs.mean())
    theta.flags.writeable = False
    return theta


PRIOR_PRECISION = np.full(DIM, PRIOR_STRENGTH * ACTIVE)
PRIOR_A = np.diag(PRIOR_PRECISION)
SEGMENT = np.array([name.startswith("seg_") for name in FEATURES])
# The segment effects' prior precision is estimated from each offer's own statistics (below):
# EM_STEPS steps of EM from PRIOR_PRECISION, kept within SEGMENT_PRECISION_RANGE.
EM_STEPS = 5
SEGMENT_PRECISION_RANGE = (2.0, 1000.0)


@functools.lru_cache(maxsize=65536)
def _parse(field: str) -> tuple[str, str, int, int]:
    """ "OFFER_1.xx.bias.age" -> ("OFFER_1", "xx", 0, 1); kind "" for a field the model does not use."""
    offer, _, rest = field.partition(".")
    kind, _, names = rest.partition(".")
    if kind == "xx" and tuple(names.split(".")) in _PAIRS:
        return offer, kind, *_PAIRS[tuple(names.split("."))]
    if kind == "xr" and names in INDEX:
        return offer, kind, INDEX[names], INDEX[names]
    return offer, "", 0, 0


class OfferSums(NamedTuple):
    """One offer's Σ x xᵀ (DIM × DIM) and Σ r x (DIM), as parsed from its statistics."""

    xx: np.ndarray
    xr: np.ndarray


def offer_sums(totals: Mapping) -> OfferSums:
    """One offer's statistics (`n`, `xx.f.g`, `xr.f`, without the offer prefix; nested or flat)."""
    model = Model.from_stats({"offer": totals}) if totals else Model()
    if not model._slot:
        return OfferSums(np.zeros((DIM, DIM)), np.zeros(DIM))
    return OfferSums(model._xx[0].copy(), model._xr[0].copy())


class Model:
    """The posterior of every offer's model. Built from statistics (`from_stats`, `from_sums`,
    `add`), or kept up to date reward by reward (`observe`, `observe_batch`: the same sums as
    adding `update_amounts`); an offer's posterior is recomputed when next read."""

    def __init__(self) -> None:
        self._slot: dict[str, int] = {}
        self._xx = np.zeros((0, DIM, DIM))
        self._xr = np.zeros((0, DIM))
        self._a_inv = np.zeros((0, DIM, DIM))
        self._mu = np.zeros((0, DIM))
        self._theta0 = np.zeros((0, DIM))
        self._stale = np.zeros(0, dtype=bool)

    @classmethod
    def from_stats(cls, stats: Mapping) -> "Model":
        model = cls()
        model.add(stats)
        return model

    @classmethod
    def from_sums(cls, sums: Mapping[str, OfferSums]) -> "Model":
        model = cls()
        slots = model._slots(list(sums))
        for k, one in zip(slots, sums.values(), strict=True):
            model._xx[k] = one.xx
            model._xr[k] = one.xr
        return model

    @classmethod
    def combine(cls, parts: Mapping[str, "Model"]) -> "Model":
        """One model of every offer of `parts` (offer -> a model holding it), posteriors kept."""
        model = cls()
        slots = model._slots(list(parts))
        for k, (offer, part) in zip(slots, parts.items(), strict=True):
            j = part._slot[offer]
            model._xx[k], model._xr[k] = part._xx[j], part._xr[j]
            model._a_inv[k], model._mu[k], model._stale[k] = part._a_inv[j], part._mu[j], part._stale[j]
        return model

    def _slots(self, offers: Sequence[str]) -> np.ndarray:
        new = [offer for offer in dict.fromkeys(offers) if offer not in self._slot]
        if new:
            for offer in new:
                self._slot[offer] = len(self._slot)
            grow = len(new)
            self._xx = np.concatenate([self._xx, np.zeros((grow, DIM, DIM))])
            self._xr = np.concatenate([self._xr, np.zeros((grow, DIM))])
            self._a_inv = np.concatenate([self._a_inv, np.zeros((grow, DIM, DIM))])
            self._mu = np.concatenate([self._mu, np.zeros((grow, DIM))])
            self._theta0 = np.concatenate([self._theta0, [prior_mean(offer) for offer in new]])
            self._stale = np.concatenate([self._stale, np.ones(grow, dtype=bool)])
        return np.array([self._slot[offer] for offer in offers], dtype=int)

    def add(self, amounts: Mapping) -> None:
        """Add statistics (flat field paths or nested maps); fields the model does not use are ignored."""
        for field, delta in _flatten(amounts).items():
            offer, kind, i, j = _parse(field)
            if not kind:
                continue
            (k,) = self._slots([offer])
            if kind == "xx":
                self._xx[k, i, j] += delta
                if i != j:
                    self._xx[k, j, i] += delta
            else:
                self._xr[k, i] += delta
            self._stale[k] = True

    def observe(self, customer, slate: Sequence[str], accepted: bool, accepted_offer: str | None = None) -> None:
        """Add one reward: equal to `add(update_amounts(customer, slate, accepted, accepted_offer))`."""
        x = customer_features(customer)
        rewards = credit(slate, accepted, accepted_offer)
        slots = self._slots(list(rewards))
        r = np.fromiter(rewards.values(), dtype=float)[:, None]
        self._xx[slots] += np.outer(x, x)
        self._xr[slots] += r * x
        self._stale[slots] = True

    def posterior(self, offers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(μ, A⁻¹) of each offer's model, shapes (K, DIM) and (K, DIM, DIM); cov(θ) = NOISE_SD² A⁻¹."""
        slots = self._slots(offers)
        stale = slots[self._stale[slots]]
        if len(stale):
            self._a_inv[stale], self._mu[stale] = _solve(self._xx[stale], self._xr[stale], self._theta0[stale])
            self._stale[stale] = False
        return self._mu[slots], self._a_inv[slots]

    def scores(self, customers: Sequence, eligible: Sequence[str], rng: np.random.Generator, policy: str) -> np.ndarray:
        """(rows, len(eligible)) scores: a Thompson draw, an upper confidence bound or the mean."""
        x = np.array([customer_features(c) for c in customers])
        mu, a_inv = self.posterior(eligible)
        mean = x @ mu.T
        if policy == MEAN:
            return mean
        sd = NOISE_SD * np.sqrt((np.matmul(x, a_inv) * x).sum(axis=2).T)  # x A⁻¹ x per row and offer
        if policy == UCB:
            return mean + UCB_ALPHA * sd
        return mean + sd * rng.standard_normal(mean.shape)

    def observe_batch(self, customers: Sequence, slates: Sequence[Sequence[str]], accepted: Sequence[bool]) -> None:
        """Add many rewards at once (slates' accepted offer not named): the same sums as `observe`
        one by one; the affected offers' A⁻¹ is recomputed when next read."""
        credited = [credit(slate, bool(yes), None) for slate, yes in zip(slates, accepted, strict=True)]
        slots = self._slots([offer for c in credited for offer in c])
        rows = [row for row, c in enumerate(credited) for _ in c]
        x = np.array([customer_features(c) for c in customers])[rows]
        rx = np.array([r for c in credited for r in c.values()])[:, None] * x
        # which slot each (reward, offer) pair adds to, as a matrix: sums per slot are one product
        pairs = np.zeros((len(slots), len(self._slot)))
        pairs[np.arange(len(slots)), slots] = 1.0
        touched = np.flatnonzero(pairs.any(axis=0))
        pairs = pairs[:, touched]
        self._xx[touched] += (pairs.T @ (x[:, :, None] * x[:, None, :]).reshape(len(x), -1)).reshape(-1, DIM, DIM)
        self._xr[touched] += pairs.T @ rx
        self._stale[touched] = True

    def slates(self, customers: Sequence, eligible: Sequence[str], rng: np.random.Generator, policy: str) -> list:
        order = top(self.scores(customers, eligible, rng, policy), policy)
        return np.array(eligible, dtype=object)[order].tolist()


def _solve(xx: np.ndarray, xr: np.ndarray, theta0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A⁻¹, μ) per offer, its segment effects' prior precision estimated from its own data.

    The segment coefficients are a random effect: θ_seg ~ N(0, NOISE_SD² / λ). One EM step sets
    λ = S / Σ_seg (μ_j² / NOISE_SD² + (A⁻¹)_jj) over the S segments (their posterior second
    moment); with no data that is λ again, so the prior is unchanged until rewards say how far
    segments stray from the shared effects: far (each its own world, E7) → λ falls and segments
    are fit on their own; little (E8) → λ rises and the shared effects carry them."""
    precision = np.broadcast_to(PRIOR_PRECISION, xr.shape).copy()
    for step in range(EM_STEPS + 1):
        a_inv = np.linalg.inv(precision[:, :, None] * np.eye(DIM) + xx)
        mu = np.matmul(a_inv, (precision * theta0 + xr)[:, :, None])[:, :, 0]
        if step == EM_STEPS:
            return a_inv, mu
        second = (mu[:, SEGMENT] - theta0[:, SEGMENT]) ** 2 / NOISE_SD**2 + np.diagonal(a_inv, axis1=1, axis2=2)[
            :, SEGMENT
        ]
        precision[:, SEGMENT] = np.clip(SEGMENT.sum() / second.sum(axis=1), *SEGMENT_PRECISION_RANGE)[:, None]
    raise AssertionError("unreachable")


def top(scores: np.ndarray, policy: str) -> np.ndarray:
    """Column indices of each row's best SLATE_SIZE scores, best first."""
    if policy != TS:
        # Deterministic scores tie where the static products tie (float sums differ in the last
        # bits): rounded, ties go to the earlier eligible offer, as in static.static_slate.
        scores = np.round(scores, 9)
    return np.argsort(-scores, axis=1, kind="stable")[:, : segments.SLATE_SIZE]


MEAN = "mean"  # the posterior mean alone (greedy): for tests and the benchmark, not served


def slates_from_stats(
    stats: Mapping, customer, eligible: Sequence[str], rng: np.random.Generator, rows: int = 1, policy: str = ""
) -> list[list[str]]:
    """`rows` slates; `customer` is one customer for every row or a sequence of `rows` customers;
    `stats` is the statistics (flat or nested) or a `Model` already built from them."""
    customers = list(customer) if isinstance(customer, Sequence) and not isinstance(customer, Customer) else None
    if customers is None:
        customers = [customer] * rows
    if len(customers) != rows:
        raise ValueError(f"{len(customers)} customers for {rows} rows")
    model = stats if isinstance(stats, Model) else Model.from_stats(stats)
    return model.slates(customers, list(eligible), rng, policy or TS)
