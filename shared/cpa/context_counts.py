"""Each offer's clicks and conversions per context value, at any cardinality, within Firestore's limits.

Written (one document per click, inside the click's own commit): `cpa_offers/{offer}/context_slots/
{slot}-{n}`, the minute `slot` of the write and n a random one of the offer counter's shards (so a
slot document takes at most about one write every 2 s, as a counter shard does). Its map `c` holds
{feature: {value: {"n": clicks, "v": conversions}}} of that minute's writes only, so it stays small
whatever the number of sources; `expire_at` lets the TTL policy delete it after SLOT_RETENTION.

Folded (once a minute per offer, by one instance): `cpa_context/{offer}` holds the counts summed over
every folded slot, {feature: {value: [clicks, conversions]}}, and `through`, the last slot folded.
A fold reads the slot documents after `through` and up to the last slot that ended GRACE_SECONDS
ago (one query), adds them and writes the summary with a last-update-time precondition; a fold
that raced another is refused and changes nothing, and a slot is never added twice because
`through` moves with the counts in the same write. A click's write that lands more than
GRACE_SECONDS after its minute ended (beyond any call deadline) would be missed by the fold.

Read: each instance keeps the folded counts of the offers it serves, turned into the model's
effects (shared/cpa/context_model.py), and refreshes them in the background about once a minute.
A request never reads them: an offer whose counts are not loaded yet decides as without context,
and a source seen for the first time is simply absent from the counts (the offer's average), so a
new source costs no read at all.
"""

import datetime
import random
import threading
import time
from collections.abc import Callable

from google.api_core import exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.cpa.context_model import FeatureEffects, feature_effects
from shared.platform import counters, refresher, remembered, stats_cache
from shared.platform.firestore import PerClient
from shared.platform.namespace import Namespace

OFFERS = "cpa_offers"
SLOTS = "context_slots"
FOLDED = "cpa_context"
SLOT_SECONDS = 60
GRACE_SECONDS = 60
REFRESH_SECONDS = 60.0
PUBLISH_SECONDS = 1.0  # a refresh of many offers lands its new effects at most this often
SLOT_RETENTION = datetime.timedelta(days=2)
MAX_VALUES = 10_000  # per feature in a folded summary: the values with the fewest clicks are dropped beyond it


def slot_of(now: float) -> int:
    return int(now // SLOT_SECONDS)


def folded_path(space: Namespace, offer_id: int) -> str:
    return space.path(f"{FOLDED}/{offer_id}")


def add(
    writes, db, space: Namespace, offer_id: int, context: dict, clicks: int, conversions: int, shards: int, now: float
):
    """Within `writes` (the click's commit), one merge-set on a slot document of the offer."""
    if not context or not (clicks or conversions):
        return
    slot = slot_of(now)
    path = space.path(f"{OFFERS}/{offer_id}/{SLOTS}/{slot}-{counters.pick_shard(shards)}")
    amounts = {key: firestore.Increment(value) for key, value in (("n", clicks), ("v", conversions)) if value}
    expire_at = datetime.datetime.fromtimestamp(now, datetime.UTC) + SLOT_RETENTION
    counts = {feature: {value: dict(amounts)} for feature, value in context.items()}
    writes.set(db.document(path), {"slot": slot, "expire_at": expire_at, "c": counts}, merge=True)


def _merge(counts: dict, added: dict) -> None:
    for feature, values in added.items():
        into = counts.setdefault(feature, {})
        for value, amounts in values.items():
            clicks, conversions = into.get(value, (0, 0))
            into[value] = [clicks + amounts.get("n", 0), conversions + amounts.get("v", 0)]
    for feature, values in counts.items():
        if len(values) > MAX_VALUES:
            kept = sorted(values.items(), key=lambda item: -item[1][0])[:MAX_VALUES]
            counts[feature] = dict(kept)


def fold(db, space: Namespace, offer_id: int, now: float) -> dict:
    """Fold the offer's finished slots into its summary when due (see the module's doc); returns the
    summary's counts as they stand after."""
    ref = db.document(folded_path(space, offer_id))
    snapshot = ref.get()
    summary = snapshot.to_dict() if snapshot.exists else {}
    counts = summary.get("counts") or {}
    through = summary.get("through")
    upto = slot_of(now - GRACE_SECONDS) - 1
    if through is not None and through >= upto:
        return counts
    lease = db.collection(space.path(counters.LEASES)).document(counters.lease_id(ref.path, upto))
    try:
        lease.create({"counter": ref.path, "slot": upto, "expire_at": _expiry(now)})
    except exceptions.AlreadyExists:  # another instance folds this minute
        return counts
    query = db.collection(space.path(f"{OFFERS}/{offer_id}/{SLOTS}")).where(filter=FieldFilter("slot", "<=", upto))
    if through is not None:
        query = query.where(filter=FieldFilter("slot", ">", through))
    for slot in query.stream():
        _merge(counts, slot.to_dict().get("c") or {})
    document = {"counts": counts, "through": upto, "as_of": _expiry(now) - counters.LEASE_RETENTION}
    try:
        if snapshot.exists:
            ref.update(document, option=db.write_option(last_update_time=snapshot.update_time))
        else:
            ref.create(document)
    except (exceptions.AlreadyExists, exceptions.FailedPrecondition):  # folded meanwhile: theirs stands
        return (ref.get().to_dict() or {}).get("counts") or {}
    return counts


def _expiry(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, datetime.UTC) + counters.LEASE_RETENTION


def effects_of(counts: dict) -> dict[str, FeatureEffects]:
    return {feature: feature_effects(values) for feature, values in counts.items()}


class ContextCache:
    """Per instance: each offer's folded counts as the model's effects, refreshed in the background
    (inline with background=False) once REFRESH_SECONDS old; a request never waits on it."""

    def __init__(
        self, db, clock: Callable[[], float] = time.time, background: bool = True, every: float = REFRESH_SECONDS
    ):
        self.db = db
        self.clock = clock
        self.background = background
        self.every = every
        self.delay = random.uniform(0, every / 4)  # this instance's turn: one of them folds
        self._entries: dict[tuple[Namespace, int], tuple[float, dict]] = {}
        self._sets = remembered.BySet()  # each candidate set's effects, while none of them changes
        self._lock = threading.Lock()
        self._refresher = refresher.Refresher("context-refresh", self.refresh, failed=self._failed)

    def effects(self, space: Namespace, offer_ids: list[int]) -> list[dict[str, FeatureEffects] | None]:
        """Each candidate's effects (None: not loaded yet). Callers do not change what they are
        handed: a set asked for again is handed the same list while none of its offers changed."""
        now = self.clock()
        key = (space, tuple(offer_ids))
        with self._lock:
            known = self._sets.get(key, now)
            if known is not None:
                return known
            generation = self._sets.generation
            entries = [self._entries.get((space, offer)) for offer in offer_ids]
        due = [
            (space, offer)
            for offer, entry in zip(offer_ids, entries, strict=True)
            if entry is None or now - entry[0] >= self.every + self.delay
        ]
        if due:
            self._ask(due)
            if not self.background:
                with self._lock:
                    entries = [self._entries.get((space, offer)) for offer in offer_ids]
        found = [entry[1] if entry else None for entry in entries]
        if entries:
            # While a refresh is on its way the set keeps the effects in hand (its landing moves the
            # generation); one that failed is asked again a refresh interval later.
            until = now + self.every if due else min(entry[0] for entry in entries) + self.every + self.delay
            with self._lock:
                self._sets.keep(key, generation, until, found)
        return found

    def refresh(self, keys: list[tuple[Namespace, int]]) -> None:
        """Fold and load each key not refreshed meanwhile. The new effects land together, at most
        every PUBLISH_SECONDS: each landing hands every candidate set new effects (its remembered
        columns recomputed), so a minute's refresh of a hundred offers lands a few times, not a
        hundred."""
        token = stats_cache.phase.set("context")  # background work (the capacity bench counts it apart)
        fresh, published = {}, time.monotonic()
        try:
            for space, offer in keys:
                now = self.clock()
                with self._lock:
                    entry = self._entries.get((space, offer))
                if entry is not None and now - entry[0] < self.every + self.delay:
                    continue  # asked again by a request while an earlier refresh was on its way to it
                fresh[(space, offer)] = (now, effects_of(fold(self.db, space, offer, now)))
                if time.monotonic() - published >= PUBLISH_SECONDS:
                    self._publish(fresh)
                    fresh, published = {}, time.monotonic()
        finally:
            self._publish(fresh)
            stats_cache.phase.reset(token)

    def _publish(self, fresh: dict) -> None:
        if fresh:
            with self._lock:
                self._entries.update(fresh)
                self._sets.changed()

    def _ask(self, keys) -> None:
        if self.background:
            self._refresher.ask(keys)
        else:
            self.refresh(keys)

    def _failed(self, keys) -> None:
        """The old entries stay; retry no sooner than a refresh interval."""
        with self._lock:
            for key in keys:
                if key not in self._entries:
                    self._entries[key] = (self.clock(), {})
                    self._sets.changed()


_shared = PerClient(lambda db: ContextCache(db))


def for_db(db) -> ContextCache:
    """The process-wide context cache of this client (one per deployed instance)."""
    return _shared.get(db)
