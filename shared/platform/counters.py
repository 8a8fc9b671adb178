"""Distributed counters with a rolled-up summary: hot totals spread over shards, added to with
Increment, summed by a roll-up into one summary document that requests read (through a cache).

A counter at path P (`cpa_offers/7`, `agent_segments/F|30-44|Asia`) is:
- shards `P/shards/{n}`, n in [0, shards): `{"c": {field: sum, ..., "_writes": writes}}`. A write
  adds to ONE random shard, inside the caller's atomic commit. The counted fields sit under one
  map `c` so a single index exemption covers them: a counter's values rise in step, and indexing
  them would put every increment into one narrow, moving index range.
- the summary `P`: `{"shards": S, "totals": {field: sum of all shards}, "as_of": time, "rate":
  writes/s}`. The roll-up SETS it (never increments): it reads every shard and writes the sum,
  so a roll-up that dies, or runs twice, loses or doubles nothing. `totals` is exact as of `as_of`.

Shard count: the roll-up measures the counter's write rate (the `_writes` total between two
roll-ups) and grows `shards` to the multiple of 8 that keeps each shard at or below
WRITES_PER_SHARD writes/s (2,000 clicks/s on one offer: 4,000 shards) at the rate the counter
*sustains* (sizing_rate): the higher of that rate smoothed over SUSTAIN_SECONDS (`sustained`, an
exponential average) and the lower of the last two roll-ups' rates. Firestore's limit is about
one sustained write per second per document, and `shards` never shrinks (writers pick a shard
below the count in their possibly older summary, readers read every shard below the newest
count, so every write is read): sized on one roll-up's rate, a one-second burst or Poisson noise
at a modest rate ratcheted the count, and every later roll-up read every one of those shards. So
a rise that lasts two roll-ups gets its shards at the second, a burst of one roll-up only moves
the average.

One roll-up per counter per interval: the roller first creates a lease document named after
(counter, time slot) with a must-not-exist precondition; only the instance whose create wins
reads the shards. The summary write itself carries a last-update-time precondition, so a slower
roller holding an older summary cannot overwrite a newer one.
"""

import dataclasses
import datetime
import functools
import hashlib
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from google.api_core import exceptions
from google.cloud import firestore

from shared.platform import namespace, sdk_private
from shared.platform.firestore import MAX_COMMIT_WRITES

MIN_SHARDS = 8
MAX_SHARDS = 1 << 16
WRITES_PER_SHARD = 0.5  # sustained writes/s per shard: half of Firestore's ~1/s, for headroom
SUSTAIN_SECONDS = 10.0  # the time constant of the write rate that sizes the shards
FIELD = "c"
WRITES = "_writes"
LEASES = "counter_rollups"
LEASE_RETENTION = datetime.timedelta(days=1)
GET_ALL_CHUNK = 1000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
# A roll-up's hook: (counter path, previous Summary, new totals, now) -> the summary's new `derived`
# map, state that follows the totals roll-up by roll-up (an offer's drift state, shared/cpa/drift.py).
# Written in the same summary write, so it moves exactly once per roll-up; without a hook the roll-up
# keeps `derived` as it was.
Derive = Callable[[str, "Summary", dict, float], dict]


@dataclass(frozen=True)
class Summary:
    """A counter's rolled-up state. `as_of` is None when it has never been rolled up."""

    totals: dict = field(default_factory=dict)
    shards: int = MIN_SHARDS
    as_of: float | None = None  # seconds since the epoch
    rate: float | None = None  # writes/s measured between the last two roll-ups; None before two
    sustained: float | None = None  # the rate smoothed over SUSTAIN_SECONDS (sustained_rate); sizes shards
    update_time: object = None  # the summary document's update time (the roll-up's precondition)
    derived: dict = field(default_factory=dict)  # what the roll-up's hook (Derive) keeps beside the totals
    # What readers compute from this copy, kept with it (a copy never changes: a refresh makes a new one)
    memo: dict = field(default_factory=dict, init=False, compare=False, repr=False)


def shards_for(rate: float) -> int:
    """Shards (a multiple of MIN_SHARDS) that keep each at or below WRITES_PER_SHARD writes/s.
    Not a power of two: every shard is read by every roll-up, and rounding up to a power of two
    would cost up to twice the reads for nothing."""
    needed = math.ceil(rate / WRITES_PER_SHARD / MIN_SHARDS) * MIN_SHARDS
    return min(MAX_SHARDS, max(MIN_SHARDS, needed))


def shard_ref(db: firestore.Client, counter_path: str, index: int) -> firestore.DocumentReference:
    return db.document(f"{counter_path}/shards/{index}")


@functools.lru_cache(maxsize=4096)
def _shard_refs(db: firestore.Client, counter_path: str, shards: int) -> tuple[firestore.DocumentReference, ...]:
    return tuple(shard_ref(db, counter_path, index) for index in range(shards))


def shard_refs(db: firestore.Client, counter_path: str, shards: int = MIN_SHARDS):
    return _shard_refs(db, counter_path, shards)


def pick_shard(shards: int, rng: random.Random | None = None) -> int:
    return (rng or random).randrange(shards)


def add(
    writes,
    db: firestore.Client,
    counter_path: str,
    amounts: dict[str, float],
    shards: int = MIN_SHARDS,
    forget: Iterable[str] = (),
) -> None:
    """Within `writes` (a transaction or a batch: one atomic commit), add `amounts` (field ->
    delta; dotted paths allowed) to a random one of the counter's `shards` (from its summary).
    `forget`: dotted fields that shard drops in the same write (old entries of a dated map)."""
    increments = {field: firestore.Increment(delta) for field, delta in amounts.items() if delta}
    if increments:
        increments[WRITES] = firestore.Increment(1)
        increments.update(dict.fromkeys(forget, firestore.DELETE_FIELD))
        writes.set(shard_ref(db, counter_path, pick_shard(shards)), {FIELD: nest(increments)}, merge=True)


def nest(flat: dict) -> dict:
    """Dotted field paths as nested maps (what a merge-set of Increments needs)."""
    nested: dict = {}
    for path, value in flat.items():
        node = nested
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def summary_of(snapshot: firestore.DocumentSnapshot) -> Summary:
    if not snapshot.exists:
        return Summary()
    data = snapshot.to_dict()
    as_of = data.get("as_of")
    return Summary(
        totals=data.get("totals") or {},
        shards=int(data.get("shards", MIN_SHARDS)),
        as_of=as_of.timestamp() if as_of is not None else None,
        rate=None if data.get("rate") is None else float(data["rate"]),
        sustained=None if data.get("sustained") is None else float(data["sustained"]),
        update_time=snapshot.update_time,
        derived=data.get("derived") or {},
    )


def read_summaries(db: firestore.Client, counter_paths: Iterable[str]) -> dict[str, Summary]:
    """Every counter's summary document, in one get_all."""
    paths = list(dict.fromkeys(counter_paths))
    if not paths:
        return {}
    snapshots = {s.reference.path: s for s in db.get_all([db.document(path) for path in paths])}
    return {path: summary_of(snapshots[path]) for path in paths}


def sum_shards(snapshots: Iterable[firestore.DocumentSnapshot]) -> dict:
    """Field-wise sum of shard documents (nested maps summed leaf by leaf); missing shards add nothing."""
    total: dict = {}
    for snapshot in snapshots:
        if snapshot.exists:
            # Read in place: to_dict() would deep-copy every shard. _add_into only reads it.
            _add_into(total, sdk_private.snapshot_fields(snapshot).get(FIELD) or {})
    return total


def read_shards(db: firestore.Client, shard_counts: dict[str, int]) -> dict[str, dict]:
    """Each counter's shards summed, read together in get_alls of up to GET_ALL_CHUNK documents."""
    refs = [ref for path, shards in shard_counts.items() for ref in shard_refs(db, path, shards)]
    totals: dict[str, dict] = {path: {} for path in shard_counts}
    for start in range(0, len(refs), GET_ALL_CHUNK):
        # The raw protobuf fields, summed without decoding the documents (sdk_private.found_fields)
        for path, fields in sdk_private.found_fields(db, refs[start : start + GET_ALL_CHUNK]):
            counted = fields.get(FIELD)
            if counted is not None:
                _add_values_into(totals[path.rsplit("/shards/", 1)[0]], counted.map_value.fields)
    return totals


def exact_totals(db: firestore.Client, counter_paths: Iterable[str]) -> dict[str, dict]:
    """Every counter's exact total now, summed from its shards (the summaries give the counts)."""
    return read_shards(db, {path: s.shards for path, s in read_summaries(db, counter_paths).items()})


_NUMBERS = (int, float)


def _add_into(total: dict, values: dict) -> None:
    for key, value in values.items():
        if type(value) in _NUMBERS:  # exact types: a bool is not a count
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            _add_into(total.setdefault(key, {}), value)


def _add_values_into(total: dict, values) -> None:
    """_add_into over a raw protobuf map of Firestore Values: integers and doubles added, maps
    summed leaf by leaf, anything else (a bool, a string) left out, as _add_into does."""
    for key, value in values.items():
        kind = value.WhichOneof("value_type")
        if kind == "integer_value":
            total[key] = total.get(key, 0) + value.integer_value
        elif kind == "double_value":
            total[key] = total.get(key, 0) + value.double_value
        elif kind == "map_value":
            _add_values_into(total.setdefault(key, {}), value.map_value.fields)


def lease_id(counter_path: str, slot: int) -> str:
    """Spread ids: a hash prefix first, so leases of consecutive slots land far apart."""
    natural = f"{counter_path.replace('/', ':')}@{slot}"
    return f"{hashlib.sha256(natural.encode()).hexdigest()[:4]}-{natural}"


def sustained_rate(previous: float | None, measured: float, elapsed: float) -> float:
    """The write rate smoothed over SUSTAIN_SECONDS: `previous` moved towards the rate `measured`
    over the last `elapsed` seconds by 1 - exp(-elapsed / SUSTAIN_SECONDS) (a long pause weighs as
    much as its length). From 0 when nothing was measured before."""
    previous = previous or 0.0
    return previous + (measured - previous) * -math.expm1(-max(elapsed, 0.0) / SUSTAIN_SECONDS)


def sizing_rate(sustained: float | None, rate: float | None, previous_rate: float | None) -> float:
    """The write rate a counter's shards are sized for: its smoothed rate, or the rate it held over
    the last two roll-ups (the lower of the two measured rates) when that is higher."""
    held = min(rate, previous_rate) if rate is not None and previous_rate is not None else 0.0
    return max(sustained or 0.0, held)


def roll_up(
    db: firestore.Client,
    counter_path: str,
    previous: Summary,
    now: float,
    interval: float,
    derive: Derive | None = None,
) -> Summary | None:
    """Sum the counter's shards into its summary, at most once per `interval` seconds across every
    instance. Returns the new summary, or None when another instance holds this slot's lease or
    wrote the summary since `previous` was read."""
    return roll_up_many(db, {counter_path: previous}, now, interval, derive)[counter_path]


def roll_up_many(
    db: firestore.Client, previous: dict[str, Summary], now: float, interval: float, derive: Derive | None = None
) -> dict[str, Summary | None]:
    """roll_up of many counters in three round trips, not three per counter: the leases in one
    commit, every won counter's shards in one get_all, the summaries in one commit. Each commit is
    atomic, so when any of its writes is refused (a lease another instance won, a summary another
    wrote), the counters of that commit are retried one by one to find out which."""
    slot = int(now // interval)
    expire_at = _EPOCH + datetime.timedelta(seconds=now) + LEASE_RETENTION
    leases = {
        path: (
            db.collection(namespace.of_path(path).path(LEASES)).document(lease_id(path, slot)),
            {"counter": path, "slot": slot, "expire_at": expire_at},
        )
        for path in previous
    }
    won = [path for path, ok in _commit_each_or_all(db, leases, "create").items() if ok]
    totals = read_shards(db, {path: previous[path].shards for path in won})
    as_of = _EPOCH + datetime.timedelta(seconds=now)
    documents, rolled = {}, {}
    for path in won:
        before = previous[path]
        rate, sustained = before.rate, before.sustained
        if before.as_of is not None and now > before.as_of:
            rate = max(0.0, totals[path].get(WRITES, 0) - before.totals.get(WRITES, 0)) / (now - before.as_of)
            # a summary written before `sustained` existed starts from its last rate
            start = before.rate if sustained is None else sustained
            sustained = sustained_rate(start, rate, now - before.as_of)
        shards = max(before.shards, shards_for(sizing_rate(sustained, rate, before.rate)))
        derived = derive(path, before, totals[path], now) if derive else before.derived
        document = {
            "shards": shards,
            "totals": totals[path],
            "as_of": as_of,
            "rate": rate,
            "sustained": sustained,
            "derived": derived,
        }
        documents[path] = (db.document(path), document)
        rolled[path] = Summary(
            totals=totals[path], shards=shards, as_of=now, rate=rate, sustained=sustained, derived=derived
        )
    written = _commit_each_or_all(db, documents, "summary", {p: previous[p].update_time for p in won})
    return {
        path: dataclasses.replace(rolled[path], update_time=written[path]) if written.get(path) else None
        for path in previous
    }


_REFUSED = (exceptions.AlreadyExists, exceptions.FailedPrecondition, exceptions.NotFound)


def _commit_each_or_all(db: firestore.Client, writes: dict, kind: str, update_times: dict | None = None) -> dict:
    """Commit `writes` (path -> (ref, document)) all at once when possible; returns path -> the
    write's update time, or None where the write was refused. kind "create": must not exist;
    "summary": create when never written, else update only if unchanged since update_times[path]."""

    def add(batch, path):
        ref, document = writes[path]
        update_time = (update_times or {}).get(path)
        if kind == "create" or update_time is None:
            batch.create(ref, document)
        else:
            batch.update(ref, document, option=db.write_option(last_update_time=update_time))

    paths = list(writes)
    results: dict = {}
    for start in range(0, len(paths), MAX_COMMIT_WRITES):
        chunk = paths[start : start + MAX_COMMIT_WRITES]
        batch = db.batch()
        for path in chunk:
            add(batch, path)
        try:
            results.update(zip(chunk, (r.update_time for r in batch.commit()), strict=True))
            continue
        except _REFUSED:
            pass
        for path in chunk:  # one of them was refused: which?
            batch = db.batch()
            add(batch, path)
            try:
                results[path] = batch.commit()[0].update_time
            except _REFUSED:
                results[path] = None
    return results
