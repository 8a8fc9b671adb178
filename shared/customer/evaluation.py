"""Off-policy estimates for customer slates from logged episodes: pure.

An episode logs its slate (up to 3 offers), the eligible offers, the customer's answer and, when
the service records them (`inclusion`, shared/customer/propensity.py), each eligible offer's
probability of being in the slate. The reward is credited per offer: 1 to the accepted offer, or
1 / (slate size) to each offer when the customer accepted without naming one, 0 otherwise, so the
credits of a slate sum to its acceptance (an additive slate reward).

- Per offer, marginal IPS: the acceptance the offer would earn were it in every slate of the
  customers it is eligible for, mean over those episodes of 1{shown} credit / P(shown); SNIPS
  divides by the mean of 1{shown} / P(shown) instead.
- A slate policy with inclusion probabilities pi (e.g. the shadow's): the pseudo-inverse-style
  estimate for additive rewards (Swaminathan et al. 2017, with marginal weights), mean over episodes
  of sum over the shown offers of pi(offer) / mu(offer) x credit; for the logged policy itself
  (pi = mu) it is the plain acceptance rate.
Unbiased when every offer a target can show had mu > 0 (the randomised agents' estimated inclusion
counts the served slate, so a shown offer never has mu = 0; deterministic agents give 0 elsewhere).
"""

from dataclasses import dataclass

import numpy as np

from shared.maths import estimators
from shared.maths.estimators import Estimate, mean_interval

NAN = Estimate(float("nan"), float("nan"), float("nan"))


@dataclass(frozen=True)
class Episodes:
    """n rewarded episodes over the offers `offers`; matrices (n, len(offers))."""

    offers: list[str]
    shown: np.ndarray  # bool: in the slate
    inclusion: np.ndarray  # mu: the logging policy's P(in the slate); 0 where not eligible
    credit: np.ndarray  # the offer's share of the customer's acceptance

    @classmethod
    def of(cls, rows: list[dict]) -> "Episodes":
        """rows: {"slate": [...], "inclusion": {offer: p}, "accepted": bool, "accepted_offer": str | None}."""
        offers = sorted({o for row in rows for o in (*row["slate"], *row["inclusion"])})
        column = {offer: j for j, offer in enumerate(offers)}
        shape = (len(rows), len(offers))
        shown, inclusion, credit = np.zeros(shape, dtype=bool), np.zeros(shape), np.zeros(shape)
        for i, row in enumerate(rows):
            for offer, p in row["inclusion"].items():
                inclusion[i, column[offer]] = float(p)
            slate = row["slate"]
            for offer in slate:
                shown[i, column[offer]] = True
            if row["accepted"]:
                named = row.get("accepted_offer")
                for offer in [named] if named in slate else slate:
                    credit[i, column[offer]] += 1.0 / (1 if named in slate else len(slate))
        return cls(offers, shown, inclusion, credit)


@dataclass(frozen=True)
class OfferEstimate:
    offer: str
    eligible: int  # episodes where the offer could be shown (mu > 0)
    shown: int
    ips: Estimate
    snips: Estimate


def offer_acceptance(episodes: Episodes) -> list[OfferEstimate]:
    found = []
    for j, offer in enumerate(episodes.offers):
        eligible = episodes.inclusion[:, j] > 0
        mu = episodes.inclusion[eligible, j]
        shown = episodes.shown[eligible, j] & (mu > 0)
        if not shown.any():
            found.append(OfferEstimate(offer, int(eligible.sum()), 0, NAN, NAN))
            continue
        # as one-action logs: weight 1{shown} / mu on the offer's credit
        actions, propensities = np.zeros(len(mu), dtype=int), np.where(shown, mu, 1.0)
        target, credit = shown[:, None].astype(float), episodes.credit[eligible, j]
        found.append(
            OfferEstimate(
                offer,
                int(eligible.sum()),
                int(shown.sum()),
                estimators.ips(actions, propensities, credit, target),
                estimators.snips(actions, propensities, credit, target),
            )
        )
    return found


def slate_value(episodes: Episodes, target_inclusion: np.ndarray) -> Estimate:
    """Acceptance rate of a slate policy with these inclusion probabilities (n, offers), by the
    pseudo-inverse-style estimate (see the module docstring)."""
    mu = np.where(episodes.shown, episodes.inclusion, 1.0)
    ratio = np.where(episodes.shown & (mu > 0), np.asarray(target_inclusion) / np.where(mu > 0, mu, 1.0), 0.0)
    return mean_interval((ratio * episodes.credit).sum(axis=1))
