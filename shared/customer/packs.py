"""Batch episodes, packed: a scored file's episodes live in a few documents, not one each.

A file's rows are spread over `buckets` packs by a hash of the customer id, so every episode of a
customer in that file is in one pack, `batch_packs/{spread}-{file}-{bucket}` (in the tenant's
namespace; `pack_id`).
A pack holds its entries as zlib-compressed JSON lines (one per row: row key, customer id,
timestamp, segment, slate, states) in one unindexed bytes field, and what all its rows share:
the file, the policy and agent version, `created_at` (when the file was scored: the start of the
reward window) and `expire_at` (the TTL policy deletes on it). A pack is written once and never
again: a reward creates `rewards/{episode_id}` (shared/customer/batch_rewards.py), so packs are
never hot. A pack over MAX_PART_BYTES (a file whose customer ids repeat heavily) continues in
`{pack}.1`, `{pack}.2`, ...; the first part says how many there are.

A batch episode id names its pack: `b-{file}-{bucket}-{row}` (hex), so a reward that names it
reads one pack. A reward without an id looks the customer up in the tenant's recent files,
`batch_files/recent`: one document, one entry per inbox object (a newer generation replaces the
older one's entry), kept while its episodes can still be open; then one pack per recent file.
"""

import datetime
import hashlib
import json
import re
import zlib
from dataclasses import dataclass

from google.cloud import firestore

from shared.platform.namespace import ROOT, Namespace

PACKS = "batch_packs"
RECENT = "batch_files/recent"
FILE_KEY_CHARS = 20
MAX_PART_BYTES = 700_000  # compressed entries per document, well under Firestore's 1 MiB
_ENTRY = json.JSONEncoder(separators=(",", ":"), default=str)  # one encoder: json.dumps builds one a call
_EPISODE_ID = re.compile(rf"^b-([0-9a-f]{{{FILE_KEY_CHARS}}})-([0-9a-f]{{1,8}})-([0-9a-f]{{1,16}})$")


@dataclass(frozen=True)
class PackFile:
    """What every pack of one scored file shares."""

    job_id: str
    name: str  # bucket/object of the upload
    generation: str
    buckets: int
    created_at: datetime.datetime
    expire_at: datetime.datetime
    policy: str
    agent_version: str
    source: str

    @property
    def key(self) -> str:
        return file_key(self.job_id)


@dataclass(frozen=True)
class PackedEpisode:
    episode_id: str
    customer_id: str
    timestamp: str
    segment: str
    slate: list[str]
    states: dict
    created_at: datetime.datetime
    policy: str
    agent_version: str


def file_key(job_id: str) -> str:
    return job_id[:FILE_KEY_CHARS]


def bucket_of(customer_id: str, buckets: int) -> int:
    digest = hashlib.blake2b(customer_id.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def episode_id(key: str, bucket: int, row: int) -> str:
    return f"b-{key}-{bucket:x}-{row:x}"


def parse_episode_id(value: str | None) -> tuple[str, int, int] | None:
    """(file key, bucket, row) of a batch episode id; None for any other id."""
    match = _EPISODE_ID.match(value or "")
    return (match[1], int(match[2], 16), int(match[3], 16)) if match else None


def is_batch_episode_id(value: str | None) -> bool:
    return bool(value) and value.startswith("b-")


def pack_id(key: str, bucket: int, part: int = 0, spread: bool = True) -> str:
    """`{spread}-{file}-{bucket}`: the short hash in front spreads one file's packs over the key range,
    so writing them is no run of increasing ids (a hot spot Firestore caps at about 500 writes/s).
    `spread=False`: the id packs were written under before it (still read, see read_pack)."""
    natural = f"{key}-{bucket}" + (f".{part}" if part else "")
    if not spread:
        return natural
    return f"{hashlib.blake2b(f'{key}-{bucket}'.encode(), digest_size=2).hexdigest()}-{natural}"


def entry_line(row: int, customer_id: str, timestamp: str, segment: str, slate: list[str], states: dict) -> bytes:
    """One row's entry, as a pack holds it (ASCII JSON: lone surrogates of undecodable bytes escaped)."""
    return _ENTRY.encode([row, customer_id, timestamp, segment, slate, states]).encode("ascii") + b"\n"


def pack_documents(file: PackFile, bucket: int, entries: bytes) -> dict[str, dict]:
    """The documents of one bucket's pack (id -> fields): its entries (JSON lines, in file order)
    compressed into parts of at most MAX_PART_BYTES each."""
    compressed = _compress_within(entries)
    shared = {
        "job": file.job_id,
        "name": file.name,
        "generation": file.generation,
        "bucket": bucket,
        "parts": len(compressed),
        "created_at": file.created_at,
        "expire_at": file.expire_at,
        "policy": file.policy,
        "agent_version": file.agent_version,
        "source": file.source,
    }
    return {
        pack_id(file.key, bucket, number): {**shared, "part": number, "rows": data.count(b"\n"), "entries": blob}
        for number, (data, blob) in enumerate(compressed)
    }


def _compress_within(lines: bytes) -> list[tuple[bytes, bytes]]:
    blob = zlib.compress(lines, 6)
    if len(blob) <= MAX_PART_BYTES or lines.count(b"\n") <= 1:
        return [(lines, blob)]
    rows = lines.splitlines(keepends=True)
    half = len(rows) // 2
    return _compress_within(b"".join(rows[:half])) + _compress_within(b"".join(rows[half:]))


def _entries(document: dict, key: str, bucket: int) -> list[PackedEpisode]:
    found = []
    for line in zlib.decompress(document["entries"]).splitlines():
        row, customer_id, timestamp, segment, slate, states = json.loads(line)
        found.append(
            PackedEpisode(
                episode_id(key, bucket, row),
                customer_id,
                timestamp,
                segment,
                slate,
                states,
                document["created_at"],
                document["policy"],
                document["agent_version"],
            )
        )
    return found


def read_pack(db: firestore.Client, space: Namespace, key: str, bucket: int) -> list[PackedEpisode]:
    """Every episode of one pack (one read; one more per extra part, and one on a miss)."""
    packs = db.collection(space.path(PACKS))
    spread = True
    head = packs.document(pack_id(key, bucket)).get()
    if not head.exists:  # a file scored before the ids were spread, still within its reward window
        spread = False
        head = packs.document(pack_id(key, bucket, spread=False)).get()
    if not head.exists:
        return []
    documents = [head.to_dict()]
    parts = range(1, documents[0].get("parts", 1))
    extra = [packs.document(pack_id(key, bucket, part, spread)) for part in parts]
    documents += [snapshot.to_dict() for snapshot in db.get_all(extra) if snapshot.exists]
    return [episode for document in documents for episode in _entries(document, key, bucket)]


def find(db: firestore.Client, space: Namespace, batch_episode_id: str) -> PackedEpisode | None:
    parsed = parse_episode_id(batch_episode_id)
    if parsed is None:
        return None
    key, bucket, _ = parsed
    return next((e for e in read_pack(db, space, key, bucket) if e.episode_id == batch_episode_id), None)


# -- the tenant's recent files -------------------------------------------------------------------
def _name_key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def publish(db: firestore.Client, file: PackFile, keep_since: datetime.datetime, space: Namespace = ROOT) -> None:
    """List the scored file among the tenant's recent files, replacing an earlier generation of the
    same object, and drop files scored before `keep_since` (their episodes are settled)."""
    ref = db.document(space.path(RECENT))
    entry = {"file": file.key, "job": file.job_id, "buckets": file.buckets, "created_at": file.created_at}

    @firestore.transactional
    def write(transaction) -> None:
        snapshot = ref.get(transaction=transaction)
        files = (snapshot.to_dict() or {}).get("files", {}) if snapshot.exists else {}
        kept = {k: v for k, v in files.items() if v["created_at"] >= keep_since}
        kept[_name_key(file.name)] = entry
        transaction.set(ref, {"files": kept, "updated_at": firestore.SERVER_TIMESTAMP})

    write(db.transaction())


def customer_episodes(
    db: firestore.Client, space: Namespace, customer_id: str, since: datetime.datetime
) -> list[PackedEpisode]:
    """The customer's episodes in the tenant's files scored since `since`, newest file first: one
    read of the recent files, then one pack per file."""
    snapshot = db.document(space.path(RECENT)).get()
    if not snapshot.exists:
        return []
    files = sorted(
        (entry for entry in snapshot.to_dict().get("files", {}).values() if entry["created_at"] >= since),
        key=lambda entry: entry["created_at"],
        reverse=True,
    )
    found = []
    for entry in files:
        bucket = bucket_of(customer_id, entry["buckets"])
        found += [e for e in read_pack(db, space, entry["file"], bucket) if e.customer_id == customer_id]
    return found
