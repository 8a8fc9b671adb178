"""CPA clicks in Firestore: one document per click, per-offer totals in sharded counters.

- `cpa_clicks/{4 hex of sha256(click id)}-{click_id}`: the offer chosen, how, and later the
  click's reward: the sum of its reward `events` (event id -> amount, total after it, late, time;
  shared/cpa/settlement.py); `expire_at` for the TTL policy (CLICK_RETENTION_DAYS, default 90).
- `cpa_offers/{offer_id}` (summary) and `.../shards/{n}`: clicks, conversions, reward, reward_sq
  and their log-payout sums of one offer (shared/platform/counters.py). The summary's `derived` map
  holds the offer's drift state (shared/cpa/drift.py), moved by each roll-up (`offer_drift`, the
  hook this store's cache rolls up with): samplers that forget (the registry's trait) decide on the
  statistics since the offer's last detected market change, the others on all of them.
- `cpa_counters/clicks` (summary) and `.../shards/{n}`: clicks received while greedy's warm-up
  lasts, whichever sampler serves them; no longer read nor written once the instance's copy of its
  summary shows the warm-up is over.

Decisions read the candidates' summaries from the instance's cache (shared/platform/stats_cache.py), so a
new click costs one commit. Exactly once: the click document is created with a must-not-exist
precondition in the same atomic commit that adds to the counters, so a replayed or racing click
counts nothing; feedback reads only its own click document inside its transaction.
"""

import datetime
import hashlib
import os
from collections.abc import Callable

import numpy as np
from google.api_core import exceptions
from google.cloud import firestore

from shared.cpa import drift, serving, settlement
from shared.cpa.models import MAX_REWARD_CENTS, FeedbackRequest, SampleRequest
from shared.cpa.policies import SAMPLERS, WARMUP_CLICKS, Choice, OfferStats
from shared.cpa.records import Click, Feedback
from shared.platform import config, counters, errors, namespace, stats_cache, windows
from shared.platform.counters import Summary
from shared.platform.namespace import ROOT, Namespace

CLICKS = "cpa_clicks"
OFFERS = "cpa_offers"
GLOBAL_CLICKS = "cpa_counters/clicks"
DEFAULT_CLICK_RETENTION_DAYS = 90


def click_doc_id(click_id: int) -> str:
    """Ad platforms issue click ids in increasing order; a hash prefix spreads their documents
    over the key space instead of appending to one hot key range."""
    return f"{hashlib.sha256(str(click_id).encode()).hexdigest()[:4]}-{click_id}"


def click_expire_at(now: datetime.datetime | None = None) -> datetime.datetime:
    days = float(os.environ.get("CLICK_RETENTION_DAYS", DEFAULT_CLICK_RETENTION_DAYS))
    return (now or datetime.datetime.now(datetime.UTC)) + datetime.timedelta(days=days)


def offer_counter(offer_id: int, space: Namespace = ROOT) -> str:
    return space.path(f"{OFFERS}/{offer_id}")


def offer_drift(path: str, before: Summary, totals: dict, now: float) -> dict:
    """The roll-up's hook (counters.Derive): an offer counter's `derived` map after a roll-up, its
    drift state; other counters (the warm-up counter) keep theirs."""
    params = drift.params_from_env()
    if params is None or namespace.collection_id(path) != OFFERS:
        return before.derived
    elapsed = now - before.as_of if before.as_of is not None else 0.0
    return drift.rolled(before.derived, totals, before.totals, elapsed, params)


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


def click_document(request: SampleRequest, choice: Choice) -> dict:
    """A new click: the offer chosen, how (with the payouts and floor given), and with what
    probability among which candidates."""
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
        **request.logged(),  # payouts and floor, when the request gave them
    }


class CpaStore:
    def __init__(
        self,
        db: firestore.Client,
        rng: np.random.Generator,
        cache: stats_cache.StatsCache | None = None,
        reward_window: float | None = None,
        clock: Callable[[], datetime.datetime] | None = None,
        space: Namespace = ROOT,
    ):
        self.db = db
        self.rng = rng
        self.space = space  # the tenant's namespace: every document this store names is in it
        self.cache = cache or stats_cache.for_db(db, derive=offer_drift)
        # Seconds after /sample when a click without feedback stands settled at reward 0.
        self.reward_window = reward_window or windows.window_seconds(
            settlement.CLICK_WINDOW_ENV, settlement.DEFAULT_CLICK_WINDOW_SECONDS
        )
        self.clock = clock or windows.utc_now
        self.config = config.for_db(db, config.OPERATOR_DOCUMENT, space.path(config.SERVING_DOCUMENT))
        self.warmup_counter = space.path(GLOBAL_CLICKS)

    def _click_ref(self, click_id: int) -> firestore.DocumentReference:
        return self.db.collection(self.space.path(CLICKS)).document(click_doc_id(click_id))

    def sample(self, request: SampleRequest) -> Click:
        """The click: new, or the first one when this click was sampled before."""
        paths = [offer_counter(offer, self.space) for offer in request.offer_ids]
        # The kill switch may force a sampler or an offer; a shadow sampler is logged beside it.
        plan = self.config.cached(serving.parse_both)
        # Once a copy shows the warm-up over it stays true (the counter only grows, and stops being
        # written): no need to keep it fresh, nor to have it rolled up every second for nothing.
        # Until then every click counts towards it, whichever sampler serves (greedy's warm-up is the
        # service's first clicks), so it is read while it lasts.
        warmup = self.cache.peek(self.warmup_counter)
        warm = warmup is not None and warmup.totals.get("clicks", 0) >= WARMUP_CLICKS
        summaries = self.cache.get(paths if warm else [*paths, self.warmup_counter])
        candidates = [summaries[path] for path in paths]

        def stats_for(sampler: str) -> list[OfferStats]:
            if SAMPLERS[sampler].forgets:
                return [_offer_stats(drift.since(c.totals, c.derived)) for c in candidates]
            return [_offer_stats(c.totals) for c in candidates]

        warmup = warmup if warm else summaries[self.warmup_counter]
        total_clicks = int(warmup.totals.get("clicks", 0))
        choice, how = serving.decide(
            plan, request.sampler, request.offer_ids, stats_for, total_clicks, request.params(), self.rng
        )
        click = click_document(request, choice) | how

        # No reads, so an atomic batched write rather than a transaction: same all-or-nothing
        # commit, one BeginTransaction round trip less. The create precondition fails the whole
        # commit if the click exists, so counters never move without their click document.
        click_ref = self._click_ref(request.click_id)
        chosen = offer_counter(click["offer_id"], self.space)
        batch = self.db.batch()
        batch.create(click_ref, click)
        counters.add(batch, self.db, chosen, {"clicks": 1}, summaries[chosen].shards)
        if total_clicks < WARMUP_CLICKS:  # greedy's warm-up: only counted while it lasts
            counters.add(batch, self.db, self.warmup_counter, {"clicks": 1}, self.cache.shards(self.warmup_counter))
        try:
            batch.commit()
        except exceptions.AlreadyExists:  # a replayed or racing click: its first answer stands
            return self._replayed(click_ref, click)
        return Click.from_document(click)

    def _replayed(self, click_ref: firestore.DocumentReference, click: dict) -> Click:
        """The click sampled first, when the retry is the same request; a Conflict naming offer_ids
        when the same click id comes with other candidates (never an offer the caller did not send)."""
        stored = click_ref.get().to_dict()
        if stored.get("candidates", click["candidates"]) != click["candidates"]:
            raise errors.Conflict(
                f"click {click['click_id']} was sampled among offers {stored['candidates']}; "
                "a retry must send the same offer_ids",
                "offer_ids",
            )
        return Click.from_document(stored)

    def feedback(self, request: FeedbackRequest) -> Feedback:
        """The click with this reward event added (shared/cpa/settlement.py); a replay of an event
        changes nothing and answers as the first time."""
        click_ref = self._click_ref(request.click_id)

        @firestore.transactional
        def apply(transaction):
            snapshot = click_ref.get(transaction=transaction)
            if not snapshot.exists:
                raise errors.NotFound(f"click {request.click_id} was never sampled", "click_id")
            click = snapshot.to_dict()
            now = self.clock()
            outcome = settlement.add_event(
                click, request.event_id, request.reward_value, now, self.reward_window, MAX_REWARD_CENTS
            )
            answer = Feedback(
                click_id=click["click_id"],
                offer_id=click["offer_id"],
                is_conversion=outcome.total > 0,
                reward=outcome.total,
                event_id=request.event_id,
                late=outcome.event["late"],
            )
            if outcome.replay:
                return answer
            update = {
                "reward": outcome.total,
                "is_conversion": outcome.total > 0,
                "events": outcome.events,
                "feedback_at": firestore.SERVER_TIMESTAMP,
            }
            transaction.update(click_ref, update)
            path = offer_counter(click["offer_id"], self.space)
            counters.add(transaction, self.db, path, outcome.deltas, self.cache.shards(path))
            return answer

        return apply(self.db.transaction())

    def offer_stats(self, offer_id: int) -> OfferStats:
        """Exact: summed from every shard now, not from the cached summary. An offer this tenant has
        never served (no summary, no shard) is NotFound: offer ids are the tenant's own."""
        path = offer_counter(offer_id, self.space)
        summary = counters.read_summaries(self.db, [path])[path]
        totals = counters.read_shards(self.db, {path: summary.shards})[path]
        if summary.update_time is None and not totals:
            raise errors.NotFound(f"offer {offer_id} has no statistics for this client", "offer_id")
        return _offer_stats(totals)

    def offers_stats(self, offer_ids: list[int]) -> list[OfferStats]:
        """offer_stats of several offers, in their order (their summaries in one get_all)."""
        paths = [offer_counter(offer, self.space) for offer in offer_ids]
        totals = counters.exact_totals(self.db, paths)
        return [_offer_stats(totals[path]) for path in paths]
