"""The `thompson-slate` agent (the default until issue 26): per segment and offer, a Beta posterior on "a slate
holding this offer is accepted", seeded from the static score; one Thompson draw per eligible offer,
the top three form the slate. A reward credits every offer of the slate (the client only says
whether one of the three was accepted) unless it names the offer accepted. Pure.
"""

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from shared.customer.segments import SLATE_SIZE, static_scores

# Prior: a slate holding the segment's average offer is accepted this often, with the weight of
# PRIOR_STRENGTH rewards; an offer's prior mean scales with its static score.
PRIOR_MEAN = 0.15
PRIOR_STRENGTH = 10.0


def _score(scores: Mapping[str, float], offer: str) -> float:
    """An offer the case study never knew scores as the segment's average offer."""
    return scores[offer] if offer in scores else float(np.mean(list(scores.values())))


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


def credited_offers(slate: Sequence[str], accepted_offer: str | None) -> list[str]:
    """Offers whose `accepted` count a positive reward raises."""
    return [accepted_offer] if accepted_offer in slate else list(slate)
