"""Statistics reset: one sharded counter back to zero, its old totals archived first. The products say
which counters may be reset (shared/cpa/reset.py, shared/customer/reset.py); shared/admin.py and the
admin function `admin_reset` (`make reset` locally) call this.

Steps, for the counter at P (shared/platform/counters.py):
1. `counter_resets/{id}` is created: who asked, when, which counter, status "started";
2. the shards are moved into it, a chunk of CHUNK shards per transaction: the transaction reads the
   chunk's shards, adds their values to the archive's `totals` and deletes them, in one atomic
   commit. A click committed before that commit is in the archive and gone from the shard; one
   committed after it lands in an empty shard and counts in the new period. Each increment is in
   exactly one of the two, never both, never neither. Shards that a concurrent roll-up added
   while the reset ran (the shard count only grows) are moved the same way, until none is left;
3. the summary P is rewritten from the shards as they are now (only the new period's writes), with
   its shard count kept (never shrinks, as everywhere else);
4. the archive's status becomes "done", with the time it finished.

So the archive holds the exact totals the counter had when each shard was moved (their sum is
the old period), the counter holds everything after. Semantics, stated: the cut is per shard, at
the commit of its chunk, not one instant for the whole counter (a reset of a counter with S
shards is ceil(S / CHUNK) commits). A conversion is counted when its feedback commits: the reward
of a click sampled before the reset and rewarded after it counts in the new period. Instances'
cached summaries (shared/platform/stats_cache.py) may show the old totals to decisions for up to
STATS_MAX_AGE_SECONDS after the reset; /offer_ids/{id}/stats sums the shards and shows zero at once.
A reset that dies half way leaves its archive "started" with the shards moved so far: nothing is
lost (moved values are in the archive), and running it again moves the rest into a new archive.
"""

import datetime
import uuid
from dataclasses import dataclass

from google.cloud import firestore

from shared.platform import counters, namespace, records

ARCHIVE = "counter_resets"
CHUNK = 100  # shards per transaction: transactions over ~100 documents get slow


@dataclass(frozen=True)
class Archive:
    """A finished reset: the archive document's id, the counter, who asked, what was moved."""

    id: str
    counter: str
    kind: str
    who: str
    totals: dict  # the old period's totals, as moved out of the shards
    shards_moved: int
    status: str

    @classmethod
    def from_document(cls, archive_id: str, document: dict) -> "Archive":
        return records.from_document(cls, document, id=archive_id)


def _move_chunk(db: firestore.Client, archive: firestore.DocumentReference, refs: list) -> int:
    """Move the shards `refs` into the archive in one transaction; returns how many held values."""

    @firestore.transactional
    def move(transaction) -> int:
        snapshots = [s for s in transaction.get_all(refs) if s.exists]
        if not snapshots:
            return 0
        moved = _flatten(counters.sum_shards(snapshots))
        transaction.set(
            archive, counters.nest({f"totals.{k}": firestore.Increment(v) for k, v in moved.items()}), merge=True
        )
        transaction.update(archive, {"shards_moved": firestore.Increment(len(snapshots))})
        for snapshot in snapshots:
            transaction.delete(snapshot.reference)
        return len(snapshots)

    return move(db.transaction())


def _flatten(nested: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _finish(db: firestore.Client, path: str, moved: int) -> dict | None:
    """Rewrite the summary from the shards as they are now (only the new period's writes), keeping
    its shard count; None, writing nothing, when the count grew past the `moved` shards meanwhile."""
    as_of = datetime.datetime.now(datetime.UTC)  # before the shards are read: totals include what came before
    totals = counters.sum_shards(db.get_all(list(counters.shard_refs(db, path, moved))))
    ref = db.document(path)

    @firestore.transactional
    def write(transaction) -> dict | None:
        summary = counters.summary_of(ref.get(transaction=transaction))
        if summary.shards > moved:
            return None
        transaction.set(
            ref,
            {"shards": moved, "totals": totals, "as_of": as_of, "rate": summary.rate, "sustained": summary.sustained},
        )
        return totals

    return write(db.transaction())


def reset(db: firestore.Client, path: str, kind: str, key: str, who: str, reason: str = "") -> Archive:
    """Archive then zero the counter at `path` (see the module's docstring), recording what was
    asked (`kind`=`key`), who and why."""
    started = datetime.datetime.now(datetime.UTC)
    archive = db.collection(namespace.of_path(path).path(ARCHIVE)).document(
        f"{uuid.uuid4().hex[:8]}-{started:%Y%m%dT%H%M%S}"
    )
    archive.create(
        {
            "counter": path,
            "kind": kind,
            "key": key,
            "who": who,
            "reason": reason,
            "started_at": started,
            "status": "started",
            "totals": {},
            "shards_moved": 0,
        }
    )
    moved = 0
    while True:
        shards = counters.read_summaries(db, [path])[path].shards
        refs = counters.shard_refs(db, path, shards)
        for start in range(moved, shards, CHUNK):
            _move_chunk(db, archive, list(refs[start : start + CHUNK]))
        moved = max(moved, shards)
        after = _finish(db, path, moved)
        if after is not None:
            break
    finished = datetime.datetime.now(datetime.UTC)
    archive.update({"status": "done", "finished_at": finished, "shards": moved, "totals_after": after})
    return Archive.from_document(archive.id, archive.get().to_dict())
