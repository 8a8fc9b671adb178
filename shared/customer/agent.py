"""The customer-offers agent (Company A): picks a slate of three offers for one customer. Pure, no I/O.

The case study's `rl_agent` scored offers with weight lists per age band, region and gender, but
was broken: lists of 5-6 weights against 10 offers, region and gender compared with numbers while
clients send "Europa" and "M", each `if` block overwriting the previous one, and
`random.choices` returning the same offer twice. The repair, kept as the `static` agent and as the
learning agent's prior:
- one weight per offer in every list (10 offers), looked up by the values clients really send;
- the three lists combined (their product) instead of the last one winning;
- the top three eligible offers by that score, distinct, ties to the lower offer number.

The learning agent (`thompson-slate`, the default) keeps, per segment and offer, a Beta posterior on
"a slate holding this offer is accepted", seeded from the static score, and draws one Thompson
sample per eligible offer; the top three form the slate. A reward credits every offer of the slate
(the client only says whether one of the three was accepted) unless it names the offer accepted.

The contextual linear agents (`linear-ts`, `linear-ucb`, shared/customer/linear.py) score offers
with one Bayesian linear model per offer over the customer's age, band, region, gender and segment,
seeded so that they start from the static agent's ranking; their evidence is not the segment
counters but the additive statistics that `linear.update_amounts` describes.
"""

import functools
from collections.abc import Mapping, Sequence

import numpy as np

OFFERS: tuple[str, ...] = tuple(f"OFFER_{number}" for number in range(1, 11))
SLATE_SIZE = 3
REGIONS = ("Americas", "Asia", "Europa")
GENDERS = ("F", "M")
AGE_BANDS = ((0, 30, "18-29"), (30, 45, "30-44"), (45, 65, "45-64"), (65, 200, "65+"))

# Segment weights of the case study's agent, one per offer (OFFER_1 .. OFFER_10).
AGE_WEIGHTS = {
    "18-29": (3, 2, 1, 2, 1, 3, 2, 2, 1, 2),
    "30-44": (3, 3, 1, 3, 2, 2, 1, 2, 2, 2),
    "45-64": (2, 2, 2, 2, 3, 1, 2, 1, 3, 2),
    "65+": (1, 1, 3, 1, 2, 1, 2, 1, 3, 1),
}
REGION_WEIGHTS = {
    "Americas": (3, 3, 2, 2, 1, 1, 2, 2, 2, 2),
    "Asia": (2, 1, 1, 3, 2, 3, 2, 1, 1, 1),
    "Europa": (2, 2, 2, 3, 2, 2, 1, 2, 2, 2),
}
GENDER_WEIGHTS = {
    "F": (3, 2, 2, 2, 2, 1, 1, 2, 3, 2),
    "M": (2, 3, 1, 2, 2, 2, 2, 2, 1, 2),
}

# Prior: a slate holding the segment's average offer is accepted this often, with the weight of
# PRIOR_STRENGTH rewards; an offer's prior mean scales with its static score.
PRIOR_MEAN = 0.15
PRIOR_STRENGTH = 10.0

STATIC = "static"
LEARNING = "thompson-slate"
LINEAR_TS = "linear-ts"
LINEAR_UCB = "linear-ucb"
LINEAR = (LINEAR_TS, LINEAR_UCB)
# Bump a version whenever that agent's behaviour changes: /is-alive reports it, episodes store it.
AGENT_VERSIONS = {STATIC: "1.1.0", LEARNING: "2.0.0", LINEAR_TS: "1.1.0", LINEAR_UCB: "1.1.0"}
DEFAULT_AGENT = LEARNING


def age_band(age: float) -> str:
    return next(label for low, high, label in AGE_BANDS if low <= age < high)


def segment_of(age: float, gender: str, region: str) -> str:
    """The segment key, e.g. "30-44|Europa|M"; gender and region as `GENDERS` / `REGIONS` spell them."""
    return f"{age_band(age)}|{region}|{gender}"


@functools.lru_cache(maxsize=256)
def _static_scores(segment: str) -> tuple[tuple[str, float], ...]:
    band, region, gender = segment.split("|")
    weights = zip(AGE_WEIGHTS[band], REGION_WEIGHTS[region], GENDER_WEIGHTS[gender], strict=True)
    return tuple((offer, float(a * r * g)) for offer, (a, r, g) in zip(OFFERS, weights, strict=True))


def static_scores(segment: str) -> dict[str, float]:
    return dict(_static_scores(segment))


def _score(scores: Mapping[str, float], offer: str) -> float:
    """An offer the case study never knew scores as the segment's average offer."""
    return scores[offer] if offer in scores else float(np.mean(list(scores.values())))


def static_slate(segment: str, eligible: Sequence[str]) -> list[str]:
    scores = static_scores(segment)
    average = float(np.mean(list(scores.values())))
    ranked = sorted(enumerate(eligible), key=lambda item: (-scores.get(item[1], average), item[0]))
    return [offer for _, offer in ranked[:SLATE_SIZE]]


@functools.lru_cache(maxsize=4096)
def prior(segment: str, offer: str) -> tuple[float, float]:
    scores = static_scores(segment)
    mean = float(np.clip(PRIOR_MEAN * _score(scores, offer) / np.mean(list(scores.values())), 0.01, 0.9))
    return mean * PRIOR_STRENGTH, (1 - mean) * PRIOR_STRENGTH


def learning_slates(
    segment: str,
    eligible: Sequence[str],
    counts: Mapping[str, tuple[float, float]],
    rng: np.random.Generator,
    rows: int,
) -> list[list[str]]:
    """`rows` slates by Thompson sampling over the eligible offers, one draw per offer and row;
    `counts[offer]` is (shown, accepted) in the segment."""
    alpha, beta = np.array([prior(segment, offer) for offer in eligible]).T
    shown, accepted = np.array([counts.get(offer, (0.0, 0.0)) for offer in eligible], dtype=float).reshape(-1, 2).T
    draws = rng.beta(alpha + accepted, beta + np.maximum(shown - accepted, 0.0), size=(rows, len(eligible)))
    order = np.argsort(-draws, axis=1, kind="stable")[:, :SLATE_SIZE]
    return np.array(eligible, dtype=object)[order].tolist()


def reads_counts(policy: str) -> bool:
    """Whether callers must read the segment's counters (`counts`: offer -> (shown, accepted))."""
    return policy == LEARNING


def reads_linear_stats(policy: str) -> bool:
    """Whether callers must read the linear statistics (`counts`: the fields of
    `linear.update_amounts`, summed, for the eligible offers at least)."""
    return policy in LINEAR


def slates(
    policy: str,
    segment: str,
    eligible: Sequence[str],
    counts: Mapping[str, tuple[float, float]],
    rng: np.random.Generator,
    rows: int = 1,
    customer=None,
) -> list[list[str]]:
    """`rows` slates for customers of one segment with the same eligible offers: the one interface
    of every agent, used by /predict (rows=1) and batch scoring (a group of rows at once).

    `counts` is the segment's counters when `reads_counts(policy)`, the linear statistics when
    `reads_linear_stats(policy)`, else unused. `customer` (anything with age, gender and region,
    or a sequence of `rows` of them) is read by the linear agents only; without it they score the
    middle of the segment's age band. For one group and one generator, a call with rows=n gives
    exactly the slates of n calls with rows=1 (numpy fills a draw row by row).
    """
    if not eligible:
        raise ValueError("no eligible offer")
    if policy not in AGENT_VERSIONS:
        raise ValueError(f"unknown agent policy {policy!r}")
    if policy == STATIC:
        return [static_slate(segment, eligible) for _ in range(rows)]
    if policy in LINEAR:
        from shared.customer import linear  # linear builds on this module's weights, so it imports it

        return linear.slates_from_stats(
            counts, linear.representative(segment) if customer is None else customer, eligible, rng, rows, policy
        )
    return learning_slates(segment, eligible, counts, rng, rows)


def credited_offers(slate: Sequence[str], accepted_offer: str | None) -> list[str]:
    """Offers whose `accepted` count a positive reward raises."""
    return [accepted_offer] if accepted_offer in slate else list(slate)
