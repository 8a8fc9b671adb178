"""Distributed counters: hot totals spread over shards, added to with Increment, read by summing.

A transaction never reads a shard (many requests write each one); it only adds to a random one.
The shard count may grow but never shrink: readers sum shards 0..SHARDS-1.
"""

import functools
import random
from collections.abc import Iterable

from google.cloud import firestore

from shared import sdk_private

SHARDS = 8


@functools.lru_cache(maxsize=4096)
def shard_refs(db: firestore.Client, counter_path: str) -> tuple[firestore.DocumentReference, ...]:
    """The counter's shard references; cached, since /sample needs 8 per candidate on every call."""
    return tuple(db.document(f"{counter_path}/shards/{index}") for index in range(SHARDS))


def random_shard(db: firestore.Client, counter_path: str) -> firestore.DocumentReference:
    return db.document(f"{counter_path}/shards/{random.randrange(SHARDS)}")


def add(writes, db: firestore.Client, counter_path: str, amounts: dict[str, float]) -> None:
    """Within `writes` (a transaction or a batch: one atomic commit), add `amounts` (field ->
    delta; dotted paths allowed) to a random shard."""
    increments = {field: firestore.Increment(delta) for field, delta in amounts.items() if delta}
    if increments:
        writes.set(random_shard(db, counter_path), _nest(increments), merge=True)


def _nest(flat: dict) -> dict:
    nested: dict = {}
    for path, value in flat.items():
        node = nested
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def totals(
    db: firestore.Client, counter_paths: Iterable[str], also: Iterable[firestore.DocumentReference] = ()
) -> tuple[dict[str, dict], dict[str, firestore.DocumentSnapshot]]:
    """Every counter's total in one get_all: ({counter path: summed fields}, {path: snapshot} of the
    documents in `also`, read in the same round trip)."""
    paths = list(dict.fromkeys(counter_paths))
    extra = list(also)
    refs = [*extra, *(ref for path in paths for ref in shard_refs(db, path))]
    snapshots = {snapshot.reference.path: snapshot for snapshot in db.get_all(refs)} if refs else {}
    summed = {path: sum_shards(snapshots[ref.path] for ref in shard_refs(db, path)) for path in paths}
    return summed, {ref.path: snapshots[ref.path] for ref in extra}


def sum_shards(snapshots: Iterable[firestore.DocumentSnapshot]) -> dict:
    """Field-wise sum of shard documents (nested maps summed leaf by leaf); missing shards add nothing."""
    total: dict = {}
    for snapshot in snapshots:
        if snapshot.exists:
            # Read in place: to_dict() deep-copies, about 7 us a shard. _add_into only reads it.
            _add_into(total, sdk_private.snapshot_fields(snapshot))
    return total


_NUMBERS = (int, float)


def _add_into(total: dict, values: dict) -> None:
    for key, value in values.items():
        if type(value) in _NUMBERS:  # exact types: a bool is not a count
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            _add_into(total.setdefault(key, {}), value)
