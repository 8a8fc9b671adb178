"""CPA clicks in Firestore: one document per click, per-offer totals in sharded counters.

- `cpa_clicks/{4 hex of sha256(click id)}-{click_id}`: the offer chosen, how, and later the
  click's reward; `expire_at` for the TTL policy (CLICK_RETENTION_DAYS, default 90).
- `cpa_offers/{offer_id}` (summary) and `.../shards/{n}`: clicks, conversions, reward, reward_sq
  and their log-payout sums of one offer (shared/counters.py).
- `cpa_counters/clicks` (summary) and `.../shards/{n}`: clicks received while greedy's warm-up
  lasts; no longer written once its summary shows the warm-up is over.

Decisions read the candidates' summaries from the instance's cache (shared/stats_cache.py), so a
new click costs one commit. Exactly once: the click document is created with a must-not-exist
precondition in the same atomic commit that adds to the counters, so a replayed or racing click
counts nothing; feedback reads only its own click document inside its transaction.
"""

import datetime
import hashlib
import math
import os

import numpy as np
from google.api_core import exceptions
from google.cloud import firestore

from shared import counters, errors, serving_config, shadow, stats_cache
from shared.cpa.models import FeedbackRequest, SampleRequest
from shared.cpa.policies import WARMUP_CLICKS, Choice, OfferStats

CLICKS = "cpa_clicks"
GLOBAL_CLICKS = "cpa_counters/clicks"
DEFAULT_CLICK_RETENTION_DAYS = 90


def click_doc_id(click_id: int) -> str:
    """Ad platforms issue click ids in increasing order; a hash prefix spreads their documents
    over the key space instead of appending to one hot key range."""
    return f"{hashlib.sha256(str(click_id).encode()).hexdigest()[:4]}-{click_id}"


def click_expire_at(now: datetime.datetime | None = None) -> datetime.datetime:
    days = float(os.environ.get("CLICK_RETENTION_DAYS", DEFAULT_CLICK_RETENTION_DAYS))
    return (now or datetime.datetime.now(datetime.UTC)) + datetime.timedelta(days=days)


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
        "expire_at": click_expire_at(),
    }


class CpaStore:
    def __init__(self, db: firestore.Client, rng: np.random.Generator, cache: stats_cache.StatsCache | None = None):
        self.db = db
        self.rng = rng
        self.cache = cache or stats_cache.for_db(db)
        self.serving = serving_config.for_db(db)

    def _click_ref(self, click_id: int) -> firestore.DocumentReference:
        return self.db.collection(CLICKS).document(click_doc_id(click_id))

    def sample(self, request: SampleRequest) -> dict:
        """The click's document: new, or the first one when this click was sampled before."""
        paths = [offer_counter(offer) for offer in request.offer_ids]
        # Once a copy shows the warm-up over it stays true (the counter only grows, and stops being
        # written): no need to keep it fresh, nor to have it rolled up every second for nothing.
        warmup = self.cache.peek(GLOBAL_CLICKS)
        warm = warmup is not None and warmup.totals.get("clicks", 0) >= WARMUP_CLICKS
        summaries = self.cache.get(paths if warm else [*paths, GLOBAL_CLICKS])
        stats = [_offer_stats(summaries[path].totals) for path in paths]
        warmup = warmup if warm else summaries[GLOBAL_CLICKS]
        total_clicks = int(warmup.totals.get("clicks", 0))
        # The kill switch may force a sampler or an offer; a shadow sampler is logged beside it.
        choice, how = shadow.cpa_decision(
            self.serving.get(), request.sampler, request.offer_ids, stats, total_clicks, request.params(), self.rng
        )
        click = click_document(request, choice) | how

        # No reads, so an atomic batched write rather than a transaction: same all-or-nothing
        # commit, one BeginTransaction round trip less. The create precondition fails the whole
        # commit if the click exists, so counters never move without their click document.
        click_ref = self._click_ref(request.click_id)
        chosen = offer_counter(click["offer_id"])
        batch = self.db.batch()
        batch.create(click_ref, click)
        counters.add(batch, self.db, chosen, {"clicks": 1}, summaries[chosen].shards)
        if total_clicks < WARMUP_CLICKS:  # greedy's warm-up: only counted while it lasts
            counters.add(batch, self.db, GLOBAL_CLICKS, {"clicks": 1}, warmup.shards)
        try:
            batch.commit()
        except exceptions.AlreadyExists:  # a replayed or racing click: its first answer stands
            return click_ref.get().to_dict()
        return click

    def feedback(self, request: FeedbackRequest) -> dict:
        """The click's document with its reward; a replay of the same reward changes nothing."""
        click_ref = self._click_ref(request.click_id)
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
                path = offer_counter(click["offer_id"])
                counters.add(transaction, self.db, path, conversion_amounts(reward), self._shards(path))
            return {**click, **update}

        return apply(self.db.transaction())

    def _shards(self, path: str) -> int:
        """The counter's shard count as this instance knows it, without I/O (fewer than the newest
        count is always safe: shard counts only grow)."""
        summary = self.cache.peek(path)
        return summary.shards if summary else counters.MIN_SHARDS

    def offer_stats(self, offer_id: int) -> OfferStats:
        """Exact: summed from every shard now, not from the cached summary."""
        path = offer_counter(offer_id)
        return _offer_stats(counters.exact_totals(self.db, [path])[path])
