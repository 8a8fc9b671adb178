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

Decisions read the candidates' summaries from the instance's cache (shared/platform/stats_cache.py),
so a new click costs one commit; the candidates' statistics are computed once per set of cached
copies. Exactly once: the click document is created with a must-not-exist precondition in the same
atomic commit that adds to the counters, so a replayed or racing click counts nothing; feedback
reads only its own click document inside its transaction.
"""

import datetime
import functools
import hashlib
import os
from collections.abc import Callable

import numpy as np
from google.api_core import exceptions
from google.cloud import firestore

from shared.cpa import adjust, caps, context_counts, drift, holdout, log_records, serving, settlement
from shared.cpa.models import MAX_REWARD_CENTS, FeedbackRequest, SampleRequest
from shared.cpa.policies import SAMPLERS, WARMUP_CLICKS, Choice, OfferStats, Stats
from shared.cpa.records import Click, Feedback
from shared.platform import config, counters, decision_log, errors, namespace, stats_cache, windows
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


def _decided_on(summary: Summary, forgets: bool) -> OfferStats:
    """The statistics a sampler decides on from a cached summary, computed once per copy: the
    statistics cache hands every request the same copy until its next refresh, and at K = 100
    recomputing them (drift.since) was about 2 ms of each /sample."""
    key = ("decided_on", forgets)
    if key not in summary.memo:
        totals = drift.since(summary.totals, summary.derived) if forgets else summary.totals
        summary.memo[key] = _offer_stats(totals)
    return summary.memo[key]


@functools.lru_cache(maxsize=1024)
def _paths(space: Namespace, offer_ids: tuple[int, ...]) -> tuple[str, ...]:
    """The candidates' counter paths, remembered: the same candidate sets come again and again."""
    return tuple(offer_counter(offer, space) for offer in offer_ids)


def _candidates(copies: stats_cache.Copies, paths: tuple[str, ...]) -> list[Summary]:
    """The candidates' cached summaries in their order, once per set of copies."""
    key = ("candidates", paths)
    if key not in copies.memo:
        copies.memo[key] = [copies[path] for path in paths]
    return copies.memo[key]


def _table(copies: stats_cache.Copies, paths: tuple[str, ...], forgets: bool) -> Stats:
    """The statistics a sampler decides on, as the policies' arrays, once per set of copies: a
    steady request reuses them with no Python step per candidate. Read-only."""
    key = ("stats", paths, forgets)
    if key not in copies.memo:
        table = Stats.of([_decided_on(summary, forgets) for summary in _candidates(copies, paths)])
        for part in table:
            part.setflags(write=False)
        copies.memo[key] = table
    return copies.memo[key]


def _among(stats: Stats, eligible: list[int]) -> Stats:
    """The eligible candidates' statistics (all of them when none is left out)."""
    if len(eligible) == stats.clicks.shape[1]:
        return stats
    return Stats(*(None if part is None else part[:, eligible] for part in stats))


def _spend(cap: caps.Cap | None, deltas: dict, now: datetime.datetime, click: dict) -> tuple[dict, list[str]]:
    """A capped offer's day spend (shared/cpa/caps.py) with its conversion's postback delay, added in
    the feedback's own commit, and the days before yesterday that the written shard forgets."""
    if cap is None or not (deltas.get("conversions") or deltas.get("reward")):
        return {}, []
    day = caps.day_of(now, cap.tz)
    sampled_at = click.get("sampled_at")
    delay = (now - sampled_at).total_seconds() if isinstance(sampled_at, datetime.datetime) else 0.0
    fields = caps.spend_fields(day, deltas.get("conversions", 0), deltas.get("reward", 0), delay)
    return fields, caps.old_days(day)


def _clicked(cap: caps.Cap | None, now: datetime.datetime) -> tuple[dict, list[str]]:
    """A capped offer's click in its day's recent click rate (shared/cpa/caps.py), added in the
    click's own commit, and the days before yesterday that the written shard forgets."""
    if cap is None:
        return {}, []
    return caps.click_fields(cap, now), caps.old_days(caps.day_of(now, cap.tz))


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
        log: decision_log.Off | decision_log.PubSubLog | None = None,
        context_cache: context_counts.ContextCache | None = None,
    ):
        self.db = db
        self.rng = rng
        self.space = space  # the tenant's namespace: every document this store names is in it
        self.log = log or decision_log.from_env()  # the decision and outcome log (docs/analytics.md)
        self.cache = cache or stats_cache.for_db(db, derive=offer_drift)
        # Seconds after /sample when a click without feedback stands settled at reward 0.
        self.reward_window = reward_window or windows.window_seconds(
            settlement.CLICK_WINDOW_ENV, settlement.DEFAULT_CLICK_WINDOW_SECONDS
        )
        self.clock = clock or windows.utc_now
        self.config = config.for_db(db, config.OPERATOR_DOCUMENT, space.path(config.SERVING_DOCUMENT))
        self.warmup_counter = space.path(GLOBAL_CLICKS)
        self.context = context_cache or context_counts.for_db(db)
        self._exact: dict[str, dict] = {}  # offers' exact totals read by this store (one request)

    def _click_ref(self, click_id: int) -> firestore.DocumentReference:
        return self.db.collection(self.space.path(CLICKS)).document(click_doc_id(click_id))

    def sample(self, request: SampleRequest) -> Click:
        """The click: new, or the first one when this click was sampled before."""
        paths = _paths(self.space, tuple(request.offer_ids))
        # The kill switch may force a sampler or an offer; a shadow sampler is logged beside it.
        plan = self.config.cached(serving.parse_both)
        # Once a copy shows the warm-up over it stays true (the counter only grows, and stops being
        # written): no need to keep it fresh, nor to have it rolled up every second for nothing.
        # Until then every click counts towards it, whichever sampler serves (greedy's warm-up is the
        # service's first clicks), so it is read while it lasts.
        warmup = self.cache.peek(self.warmup_counter)
        warm = warmup is not None and warmup.totals.get("clicks", 0) >= WARMUP_CLICKS
        summaries = self.cache.get(paths if warm else (*paths, self.warmup_counter))
        candidates = _candidates(summaries, paths)

        def stats_for(sampler: str) -> Stats:
            return _table(summaries, paths, SAMPLERS[sampler].forgets)

        warmup = warmup if warm else summaries[self.warmup_counter]
        total_clicks = int(warmup.totals.get("clicks", 0))
        now = self.clock()  # one instant for the click's caps, its day's rate and its context slot
        tailored, paced_fields = self._tailored(request, plan, candidates, stats_for, total_clicks, now)
        eligible = tailored.eligible
        eligible_ids = [request.offer_ids[i] for i in eligible]
        held = holdout.choice(plan, self.space.tenant, request.click_id, eligible_ids)
        choice, how = held or serving.decide(
            plan,
            tailored.sampler,
            eligible_ids,
            lambda sampler: _among(stats_for(sampler), eligible),
            total_clicks,
            adjust.subset(tailored.params, eligible, len(request.offer_ids)),
            self.rng,
        )
        choice = Choice(eligible[choice.index], choice.probability)
        click = click_document(request, choice) | how | paced_fields(choice)

        # No reads, so an atomic batched write rather than a transaction: same all-or-nothing
        # commit, one BeginTransaction round trip less. The create precondition fails the whole
        # commit if the click exists, so counters never move without their click document.
        click_ref = self._click_ref(request.click_id)
        chosen = offer_counter(click["offer_id"], self.space)
        batch = self.db.batch()
        batch.create(click_ref, click)
        # a held-out click counts in no statistics, but its conversions will count against a cap
        learns = holdout.learns_from(click)
        rate, forget = _clicked(self.config.cached(serving.parse_caps).get(click["offer_id"]), now)
        if learns or rate:
            amounts = ({"clicks": 1} if learns else {}) | rate
            counters.add(batch, self.db, chosen, amounts, summaries[chosen].shards, forget)
        if learns:
            context = request.context()
            shards = summaries[chosen].shards
            context_counts.add(batch, self.db, self.space, click["offer_id"], context, 1, 0, shards, now.timestamp())
            if total_clicks < WARMUP_CLICKS:  # greedy's warm-up: only counted while it lasts
                counters.add(batch, self.db, self.warmup_counter, {"clicks": 1}, self.cache.shards(self.warmup_counter))
        try:
            written = batch.commit()
        except exceptions.AlreadyExists:  # a replayed or racing click: its first answer stands
            return self._replayed(click_ref, click)
        self._log_decision(click, plan, written[0].update_time)
        return Click.from_document(click)

    def _log_decision(self, click: dict, plan: serving.CpaServing, committed) -> None:
        """A new click, to the decision log (docs/analytics.md): after its commit, never for a replay.
        Its time is the commit's, as the instance saw it (the document's `sampled_at` is the server's
        timestamp: the emulator sets it 1 to 100 ms before the commit)."""
        share = holdout.share_of(plan, click["served_by"])
        time_us = decision_log.microseconds(committed.timestamp() if committed else None)
        self.log.emit("decisions", log_records.decision(self.space.tenant, click, share, time_us))

    def holdout_share(self, click: Click) -> float:
        """The probability this click had of being held out (the tenant's serving config, cached)."""
        return holdout.share_of(self.config.cached(serving.parse_both), click.served_by)

    def _tailored(
        self,
        request: SampleRequest,
        plan,
        candidates: list[Summary],
        stats_for,
        total_clicks: int,
        now: datetime.datetime,
    ):
        """What the click's context and the candidates' caps change (shared/cpa/adjust.py), and the
        click document's fields saying whether pacing changed the choice."""
        offer_caps = self.config.cached(serving.parse_caps)
        click_context = request.context()
        # the context's effects (the instance's cache: never a read on this path) when `contextual` serves it
        wanted = adjust.decides_on_context(request.sampler, request.sampler_given, click_context)
        effects = self.context.effects(self.space, request.offer_ids) if wanted else None
        tailored = adjust.plan(
            request.sampler,
            request.sampler_given,
            request.params(),
            request.offer_ids,
            [c.totals for c in candidates] if offer_caps else [],
            click_context,
            effects,
            offer_caps,
            now,
        )
        if not tailored.capped:
            return tailored, lambda choice: {}
        sampler, forced, _ = plan.plan(tailored.sampler, request.offer_ids)
        unpaced = None
        if forced is None and tailored.unpaced_params is not None:
            unpaced = adjust.unpaced_index(sampler, stats_for(sampler), total_clicks, tailored.unpaced_params, self.rng)
        prices = {str(request.offer_ids[i]): round(price, 6) for i, price in tailored.prices.items()}
        return tailored, lambda choice: {"paced": unpaced is not None and unpaced != choice.index, "prices": prices}

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
        recorded: list[dict] = []  # the outcome record of the attempt that commits
        offer_caps = self.config.cached(serving.parse_caps)  # before the transaction: no I/O inside it

        @firestore.transactional
        def apply(transaction):
            recorded.clear()
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
                "feedback_at": now,  # the service's clock, as the event's `at` and the decision log's time
            }
            transaction.update(click_ref, update)
            path = offer_counter(click["offer_id"], self.space)
            # a held-out click's conversion moves no statistics, but it is spent against the offer's cap
            learns = holdout.learns_from(click)
            spend, forget = _spend(offer_caps.get(click["offer_id"]), outcome.deltas, now, click)
            if learns or spend:
                deltas = (outcome.deltas if learns else {}) | spend
                counters.add(transaction, self.db, path, deltas, self.cache.shards(path), forget)
            if learns:
                conversions = int(outcome.deltas.get("conversions", 0))
                shards = self.cache.shards(path)
                context = click.get("context")
                context_counts.add(
                    transaction,
                    self.db,
                    self.space,
                    click["offer_id"],
                    context,
                    0,
                    conversions,
                    shards,
                    now.timestamp(),
                )
            key = request.event_id or settlement.DEFAULT_EVENT
            event = outcome.event
            time_us = decision_log.microseconds(now.timestamp())
            recorded.append(
                log_records.outcome(
                    self.space.tenant, click, key, event["amount"], outcome.total, event["late"], time_us
                )
            )
            return answer

        answer = apply(self.db.transaction())
        for record in recorded:
            self.log.emit("outcomes", record)
        return answer

    def cap_status(self, offer_id: int) -> dict | None:
        """A capped offer's cap and today's spend against it (exact: every shard summed now)."""
        cap = self.config.cached(serving.parse_caps).get(offer_id)
        if cap is None:
            return None
        path = offer_counter(offer_id, self.space)
        totals = self._exact.get(path) or counters.exact_totals(self.db, [path])[path]
        now = self.clock()
        state = caps.state_of(cap, totals, now)
        return {
            "kind": cap.kind,
            "limit": cap.limit,
            "tz": cap.tz,
            "day": caps.day_of(now, cap.tz),
            "spent": state.spent,
            "in_flight": round(state.in_flight, 2),  # spend expected to arrive today from clicks taken
            "mean_delay_seconds": round(state.mean_delay, 1),  # click to postback; 0: none measured yet
            "share_of_day": round(state.day_fraction, 4),
            "price": round(state.price, 6),
            "reached": state.reached,
        }

    def offer_stats(self, offer_id: int) -> OfferStats:
        """Exact: summed from every shard now, not from the cached summary. An offer this tenant has
        never served (no summary, no shard) is NotFound: offer ids are the tenant's own."""
        path = offer_counter(offer_id, self.space)
        summary = counters.read_summaries(self.db, [path])[path]
        totals = self._exact[path] = counters.read_shards(self.db, {path: summary.shards})[path]
        if summary.update_time is None and not totals:
            raise errors.NotFound(f"offer {offer_id} has no statistics for this client", "offer_id")
        return _offer_stats(totals)

    def offers_stats(self, offer_ids: list[int]) -> list[OfferStats]:
        """offer_stats of several offers, in their order (their summaries in one get_all)."""
        paths = [offer_counter(offer, self.space) for offer in offer_ids]
        totals = counters.exact_totals(self.db, paths)
        return [_offer_stats(totals[path]) for path in paths]
