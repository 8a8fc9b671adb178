"""CPA clicks in Firestore: one document per click, per-offer totals in sharded counters.

- `cpa_clicks/{click_id}`: the offer chosen, how, and later the click's reward.
- `cpa_offers/{offer_id}/shards/{n}`: clicks, conversions, reward, reward_sq of one offer.
- `cpa_counters/clicks/shards/{n}`: every click the service has received (greedy's warm-up).

Exactly once: a click document is created with a must-not-exist precondition in the same atomic
commit that adds to the counters, so a replayed or racing click counts nothing; feedback reads
only its own click document inside its transaction.
"""

import math

import numpy as np
from google.api_core import exceptions
from google.cloud import firestore

from shared import counters, errors
from shared.cpa.models import FeedbackRequest, SampleRequest
from shared.cpa.policies import USES_TOTAL_CLICKS, Choice, OfferStats, choose

CLICKS = "cpa_clicks"
GLOBAL_CLICKS = "cpa_counters/clicks"


def offer_counter(offer_id: int) -> str:
    return f"cpa_offers/{offer_id}"


def _offer_stats(total: dict) -> OfferStats:
    return OfferStats(
        clicks=int(total.get("clicks", 0)),
        conversions=int(total.get("conversions", 0)),
        reward=total.get("reward", 0),
        reward_sq=total.get("reward_sq", 0),
        log_conversions=int(total.get("log_conversions", 0)),
        log_reward=total.get("log_reward", 0.0),
        log_reward_sq=total.get("log_reward_sq", 0.0),
    )


def conversion_amounts(reward: float) -> dict[str, float]:
    """What one conversion adds to its offer's counters: the payout's sums, plain and in logs
    (the lognormal payout posterior of `thompson`)."""
    log_reward = math.log(reward)
    return {
        "conversions": 1,
        "reward": reward,
        "reward_sq": reward * reward,
        "log_conversions": 1,
        "log_reward": log_reward,
        "log_reward_sq": log_reward * log_reward,
    }


def click_document(request: SampleRequest, choice: Choice) -> dict:
    """A new click: the offer chosen, how, and with what probability among which candidates."""
    return {
        "click_id": request.click_id,
        "offer_id": request.offer_ids[choice.index],
        "sampler": request.sampler,
        "probability": choice.probability,
        "candidates": ",".join(map(str, request.offer_ids)),  # one string: one index entry, not K
        "sampled_at": firestore.SERVER_TIMESTAMP,
        "reward": None,
        "is_conversion": None,
    }


class CpaStore:
    def __init__(self, db: firestore.Client, rng: np.random.Generator):
        self.db = db
        self.rng = rng

    def sample(self, request: SampleRequest) -> dict:
        """The click's document: new, or the first one when this click was sampled before."""
        click_ref = self.db.collection(CLICKS).document(str(request.click_id))
        paths = [offer_counter(offer) for offer in request.offer_ids]
        if request.sampler in USES_TOTAL_CLICKS:
            paths.append(GLOBAL_CLICKS)
        totals, also = counters.totals(self.db, paths, also=[click_ref])
        if also[click_ref.path].exists:
            return also[click_ref.path].to_dict()

        stats = [_offer_stats(totals[offer_counter(offer)]) for offer in request.offer_ids]
        total_clicks = int(totals.get(GLOBAL_CLICKS, {}).get("clicks", 0))
        choice = choose(request.sampler, stats, total_clicks, request.params(), self.rng)
        click = click_document(request, choice)

        # No reads, so an atomic batched write rather than a transaction: same all-or-nothing
        # commit, one BeginTransaction round trip less. The create precondition fails the whole
        # commit if the click exists, so counters never move without their click document.
        batch = self.db.batch()
        batch.create(click_ref, click)
        counters.add(batch, self.db, offer_counter(click["offer_id"]), {"clicks": 1})
        counters.add(batch, self.db, GLOBAL_CLICKS, {"clicks": 1})
        try:
            batch.commit()
        except exceptions.AlreadyExists:  # the same click raced us; its first answer stands
            return click_ref.get().to_dict()
        return click

    def feedback(self, request: FeedbackRequest) -> dict:
        """The click's document with its reward; a replay of the same reward changes nothing."""
        click_ref = self.db.collection(CLICKS).document(str(request.click_id))
        reward = request.reward_value

        @firestore.transactional
        def apply(transaction):
            snapshot = click_ref.get(transaction=transaction)
            if not snapshot.exists:
                raise errors.NotFound(f"click {request.click_id} was never sampled", "click_id")
            click = snapshot.to_dict()
            if click.get("reward") is not None:
                if click["reward"] == reward:
                    return click
                raise errors.Conflict(
                    f"click {request.click_id} already has reward {click['reward']}, not {reward}", "reward"
                )
            update = {"reward": reward, "is_conversion": reward > 0, "feedback_at": firestore.SERVER_TIMESTAMP}
            transaction.update(click_ref, update)
            if reward > 0:
                counters.add(transaction, self.db, offer_counter(click["offer_id"]), conversion_amounts(reward))
            return {**click, **update}

        return apply(self.db.transaction())

    def offer_stats(self, offer_id: int) -> OfferStats:
        path = offer_counter(offer_id)
        return _offer_stats(counters.totals(self.db, [path])[0][path])
