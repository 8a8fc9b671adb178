"""A batch file's plan: everything its tasks share, decided once when the file arrives and kept as
JSON beside its outputs (`_parts/{job}/v{version}/plan.json` in the results bucket).

The plan holds the header, the client's rules and product names, the tenant's statistics frozen
for this file (shared/customer/snapshot.py), the byte ranges the score tasks take, the number of
packs (buckets) and of pack tasks (groups), and a seed. Every task and every retry of a task reads
the same plan, so a row gets the same slate and episode id however often it is scored; a
redelivered event finds the plan there and reuses it.

Sizes: files up to BATCH_PARALLEL_BYTES are one range, scored inside the storage-triggered function;
larger ones are cut into ranges of about BATCH_RANGE_BYTES for the engine's parallel tasks.
A file has one pack per about ROWS_PER_PACK rows (estimated from a sample of its lines).
"""

import dataclasses
import datetime
import hashlib
import json
import math
import os
from dataclasses import dataclass

from shared.batch.csv_io import FileError, read_layout, records_of
from shared.batch.lines import ByteLines
from shared.batch.rules import rules_document
from shared.customer import agents, packs, snapshot
from shared.customer.store import episode_expire_at

DEFAULT_PARALLEL_BYTES = 48 * 1024 * 1024
DEFAULT_RANGE_BYTES = 16 * 1024 * 1024
MAX_RANGES = 10_000  # Cloud Run jobs run at most 10,000 tasks per execution
ROWS_PER_PACK = 1000
SAMPLE_BYTES = 256 * 1024
IN_FILTER_VALUES = 10  # values per Firestore `in` filter


@dataclass(frozen=True)
class Upload:
    bucket: str
    name: str
    generation: str
    event_id: str = ""

    @property
    def job_id(self) -> str:
        return hashlib.sha256(f"{self.bucket}/{self.name}#{self.generation}".encode()).hexdigest()[:40]

    @property
    def source(self) -> str:
        return f"batch:{self.bucket}/{self.name}#{self.generation}"


def client_and_stem(name: str) -> tuple[str, str]:
    client, _, rest = name.partition("/")
    if not client or not rest:
        raise FileError("upload files as <client>/<file>.csv")
    if not rest.lower().endswith(".csv"):
        raise FileError("only .csv files are scored")
    return client, rest[:-4]


def output_paths(name: str) -> tuple[str, str]:
    client, stem = client_and_stem(name)
    return f"{client}/{stem}.results.csv", f"{client}/{stem}.errors.csv"


@dataclass(frozen=True)
class Plan:
    version: int
    job_id: str
    bucket: str
    name: str
    generation: str
    size: int
    tenant: str
    client: str
    policy: str
    created_at: str  # ISO 8601, UTC: when the file was planned (its episodes' creation)
    response_date: str
    header: list
    header_end: int  # byte offset after the header record
    header_lines: int
    rules: dict
    names: dict
    evidence: dict
    bounds: list  # ranges+1 byte offsets: range i is [bounds[i], bounds[i+1])
    buckets: int
    groups: int
    seed: int
    inline: bool  # scored inside the storage-triggered function (a small file), not on the engine

    @property
    def ranges(self) -> int:
        return len(self.bounds) - 1

    @property
    def source(self) -> str:
        return f"batch:{self.bucket}/{self.name}#{self.generation}"

    def pack_file(self) -> packs.PackFile:
        created = datetime.datetime.fromisoformat(self.created_at)
        return packs.PackFile(
            self.job_id,
            f"{self.bucket}/{self.name}",
            self.generation,
            self.buckets,
            created,
            episode_expire_at(created),
            self.policy,
            agents.version_of(self.policy),
            self.source,
        )

    def as_one_range(self) -> "Plan":
        """The same plan as one range (the fallback when a quoted line break crosses a boundary)."""
        return dataclasses.replace(self, version=self.version + 1, bounds=[self.header_end, self.size], groups=1)

    def dumps(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def loads(cls, data: bytes) -> "Plan":
        return cls(**json.loads(data))


def make_plan(upload: Upload, blob, tenant: str, store, at: datetime.datetime) -> Plan:
    """Read the header and a sample of the file, the client's rules, product names and the tenant's
    statistics; FileError or RulesError when the file cannot be scored at all."""
    client, _ = client_and_stem(upload.name)
    rules = rules_document(client)
    size = blob.size
    with blob.open("rb") as stream:
        lines = ByteLines(stream, 0)
        header = next(records_of(lines), None)
        header_end, header_lines = lines.offset, lines.number
    if header is None:
        raise FileError("the file is empty")
    layout = read_layout(header[1])
    offers = [offer for offer, _ in layout.offers]
    store.ensure_agent_registered()
    names = {}
    for start in range(0, len(offers), IN_FILTER_VALUES):
        names.update(store.product_names(offers[start : start + IN_FILTER_VALUES]))
    body = size - header_end
    sample = blob.download_as_bytes(start=header_end, end=min(size, header_end + SAMPLE_BYTES) - 1) if body else b""
    row_bytes = len(sample) / max(1, sample.count(b"\n")) if sample else 1
    parallel_bytes = _env_int("BATCH_PARALLEL_BYTES", DEFAULT_PARALLEL_BYTES)
    range_bytes = _env_int("BATCH_RANGE_BYTES", DEFAULT_RANGE_BYTES)
    inline = size <= parallel_bytes
    ranges = 1 if inline else max(1, min(MAX_RANGES, math.ceil(body / range_bytes)))
    bounds = [header_end + body * k // ranges for k in range(ranges)] + [size]
    buckets = max(1, math.ceil(body / row_bytes / ROWS_PER_PACK))
    return Plan(
        version=1,
        job_id=upload.job_id,
        bucket=upload.bucket,
        name=upload.name,
        generation=upload.generation,
        size=size,
        tenant=tenant,
        client=client,
        policy=store.policy,
        created_at=at.isoformat(),
        response_date=at.date().isoformat(),
        header=header[1],
        header_end=header_end,
        header_lines=header_lines,
        rules=rules,
        names=names,
        evidence=snapshot.take(store, store.policy, offers),
        bounds=bounds,
        buckets=buckets,
        groups=min(buckets, ranges),
        seed=int(upload.job_id[:15], 16),
        inline=inline,
    )


def _env_int(name: str, default: int) -> int:
    value = int(os.environ.get(name) or default)
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value
