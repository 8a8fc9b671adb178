"""Score one uploaded client CSV: the job behind the `score_upload` storage trigger.

The input is read as a stream and handled in chunks of `chunk_rows` records. Per chunk: parse
and apply the client's rules (shared/batch/csv_io.py), read each needed segment's counters once,
draw the slates (shared/customer/agents/, one call per group of alike rows), create the episodes
through BulkWriter at Firestore's ramp (shared/batch/writer.py), write the chunk's rows as part
objects in the results bucket, then record the chunk in the job's status document. While chunk k
is being written, chunk k+1 is parsed and scored; never more than one chunk waits, so memory stays bounded.

A delivery has a time budget (BATCH_TIME_BUDGET_SECONDS, below the function's timeout): once it is
spent, the delivery stops after its current chunk, marks the job `retrying` and raises, so the
platform's retry redelivers the event and the next delivery carries on from the recorded chunk.

Delivery is at least once, so everything is keyed by the object generation:
- the status document `batch_jobs/{job id}` says done/failed (a redelivery then writes nothing),
  or how many chunks are complete (a redelivery skips them and carries on);
- episode ids derive from (bucket, name, generation, line), and episodes are only ever created:
  when a create finds one already there (the chunk that was in flight when a run died, or a
  second run overlapping a stale lease), the stored episode is read back and its slate reused,
  so a redelivery neither duplicates an episode nor overwrites one that was rewarded since;
- a lease in the status document keeps two deliveries of one file from running at once. It is
  renewed with every chunk; a delivery whose lease has lapsed (its run died) is taken over by the
  next, and every status write checks the lease, so a run that lost it stops instead of writing on.
At the end the parts are composed into `<client>/<stem>.results.csv` (and `.errors.csv` when a
row was rejected) — GCS has no append, and compose works on real GCS and gcp-storage-emulator.
"""

import collections
import concurrent.futures
import datetime
import functools
import hashlib
import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from google.api_core import exceptions
from google.cloud import firestore, storage

from shared.batch import status as status_document
from shared.batch.csv_io import (
    ERROR_HEADER,
    RESULT_HEADER,
    Customer,
    FileError,
    Rejected,
    RowParser,
    csv_bytes,
    read_layout,
    records,
)
from shared.batch.outputs import Parts
from shared.batch.rules import RulesError, load_rules
from shared.batch.status import JOBS, LeaseLost
from shared.batch.status import now as _now
from shared.batch.writer import Ramp, create_new
from shared.customer import agents, segments
from shared.customer.records import slate_of
from shared.customer.store import EPISODES, CustomerStore, new_episode
from shared.platform.firestore import LOCAL_PROJECT, get_db
from shared.platform.log import log
from shared.platform.namespace import ROOT, Namespace

FINALIZED = "google.cloud.storage.object.v1.finalized"
DEFAULT_CHUNK_ROWS = 5000
# Cloud Functions 2nd gen event functions time out at 540 s: stop in time to record the last chunk
# (about 10 s at 500 writes/s) and compose the outputs.
DEFAULT_TIME_BUDGET_SECONDS = 480
# A run renews its lease with every chunk (seconds at production rates); one that has not for this
# long is taken for dead and the next delivery takes the file over.
DEFAULT_LEASE_SECONDS = 120
READ_CHUNK_BYTES = 8 * 1024 * 1024
IN_FILTER_VALUES = 10  # values per Firestore `in` filter (the limit was 10; it is 30 since 2023)


def handle(event_id: str, event_type: str, data: dict) -> dict | None:
    """A storage CloudEvent: score the new object when it is a finalized upload to the inbox."""
    inbox = os.environ.get("INBOX_BUCKET")
    if event_type != FINALIZED or not isinstance(data, dict) or (inbox and data.get("bucket") != inbox):
        log("WARNING", "ignored an event that is not a new object in the inbox", event_id=event_id, type=event_type)
        return None
    if not all(data.get(key) for key in ("bucket", "name", "generation")):
        log("ERROR", "storage event without bucket, name or generation", event_id=event_id)
        return None
    upload = Upload(str(data["bucket"]), str(data["name"]), str(data["generation"]), str(event_id))
    space = tenant_of_folder(upload.name.partition("/")[0])
    if space is None:
        log("ERROR", "an upload in a folder no client owns: not scored", event_id=event_id, name=upload.name)
        return None
    policy = os.environ.get("AGENT_POLICY", agents.DEFAULT_AGENT)
    return Job(upload, get_db(), get_gcs(), os.environ["RESULTS_BUCKET"], policy, space=space).run()


def tenant_of_folder(folder: str) -> Namespace | None:
    """The tenant whose client owns this inbox folder: BATCH_TENANTS (JSON folder -> tenant, from the
    client registry); None for a folder no client owns. Unset: a single-tenant deployment, every
    folder the default tenant's."""
    tenants = os.environ.get("BATCH_TENANTS")
    if tenants is None:
        return ROOT
    tenant = json.loads(tenants).get(folder)
    return Namespace(tenant) if tenant else None


@functools.cache
def get_gcs() -> storage.Client:
    return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or LOCAL_PROJECT)


class OutOfTime(RuntimeError):
    """This delivery spent its time budget; the platform's retry carries on from the last chunk."""


@dataclass(frozen=True)
class Upload:
    bucket: str
    name: str
    generation: str
    event_id: str = ""

    @property
    def job_id(self) -> str:
        return _digest(f"{self.bucket}/{self.name}#{self.generation}", 40)

    def episode_id(self, line: int) -> str:
        return _digest(f"{self.bucket}/{self.name}#{self.generation}:{line}", 32)

    @property
    def source(self) -> str:
        return f"batch:{self.bucket}/{self.name}#{self.generation}"


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


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


@dataclass
class Chunk:
    index: int
    customers: list[Customer] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    slates: list[list[str]] = field(default_factory=list)
    totals: dict = field(default_factory=dict)  # rows read / scored / rejected through this chunk


class Job:
    def __init__(
        self,
        upload: Upload,
        db: firestore.Client,
        gcs: storage.Client,
        results_bucket: str,
        policy: str = agents.DEFAULT_AGENT,
        rng: np.random.Generator | None = None,
        ramp: Ramp | None = None,
        space: Namespace = ROOT,
    ):
        self.started = time.monotonic()
        self.time_budget = _env_number("BATCH_TIME_BUDGET_SECONDS", DEFAULT_TIME_BUDGET_SECONDS, float)
        self.lease = datetime.timedelta(seconds=_env_number("BATCH_LEASE_SECONDS", DEFAULT_LEASE_SECONDS, float))
        self.ramp = ramp or Ramp.from_env()  # one per delivery: each delivery starts again at 500 writes/s
        self.upload = upload
        self.db = db
        self.gcs = gcs
        self.results = gcs.bucket(results_bucket)
        self.space = space  # the client's tenant: its episodes, counters and job status are its own
        self.store = CustomerStore(db, rng or np.random.default_rng(), policy, space=space)
        self.status_ref = db.collection(space.path(JOBS)).document(upload.job_id)
        self.owner = uuid.uuid4().hex
        self.parts = Parts(gcs, self.results, upload.job_id, upload.source)

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> dict | None:
        """Score the file; returns its final status, or None when an earlier delivery finished it."""
        status = self._claim()
        if status is None:
            log("INFO", "batch file already handled", job=self.upload.job_id, name=self.upload.name)
            return None
        try:
            return self._score(status)
        except (FileError, RulesError) as error:
            return self._finish({"state": "failed", "reason": str(error)})
        except LeaseLost:
            log("WARNING", "another delivery took this batch file over; stopping", job=self.upload.job_id)
            raise
        except Exception as error:
            if isinstance(error, OutOfTime):
                log("INFO", str(error), job=self.upload.job_id, name=self.upload.name)
            try:  # let the redelivery start at once instead of waiting for the lease to lapse
                self._update(
                    {
                        "state": "retrying",
                        "last_error": f"{type(error).__name__}: {error}"[:1000],
                        "lease_expires": _now(),
                    }
                )
            except Exception:
                log("ERROR", "could not record the failed attempt", exc_info=True, job=self.upload.job_id)
            raise

    def _score(self, status: dict) -> dict:
        client, _ = client_and_stem(self.upload.name)
        rules = load_rules(client)
        results_path, errors_path = output_paths(self.upload.name)
        self._update({"client": client})
        blob = self.gcs.bucket(self.upload.bucket).blob(self.upload.name, generation=int(self.upload.generation))
        try:
            text = blob.open(
                "rt", encoding="utf-8-sig", errors="surrogateescape", newline="", chunk_size=READ_CHUNK_BYTES
            )
            lines = records(text)
            header = next(lines, None)
        except exceptions.NotFound:
            raise FileError("the uploaded object no longer exists") from None
        with text:
            if header is None:
                raise FileError("the file is empty")
            layout = read_layout(header[1])
            parser = RowParser(layout, rules)
            self.store.ensure_agent_registered()
            names = self._product_names([offer for offer, _ in layout.offers])
            self.parts.put("results", 0, csv_bytes([], RESULT_HEADER))
            self.parts.put("errors", 0, csv_bytes([], ERROR_HEADER))
            totals = {key: status.get(key, 0) for key in ("rows_read", "rows_scored", "rejected_rows")}
            deadline = self.started + self.time_budget
            with concurrent.futures.ThreadPoolExecutor(1) as writer:
                pending = None
                for chunk in self._chunks(lines, parser, status["chunks_done"], status["chunk_rows"], totals):
                    self._score_chunk(chunk)
                    if pending:
                        pending.result()
                        if time.monotonic() >= deadline:  # at least one chunk per delivery, then stop in time
                            raise OutOfTime(
                                f"time budget of {self.time_budget:g} s spent with {chunk.index} chunks done "
                                f"({chunk.index * status['chunk_rows']} records); the next delivery resumes there"
                            )
                    pending = writer.submit(self._write_chunk, chunk, names, status["response_date"])
                if pending:
                    pending.result()
        results = self.parts.compose("results", results_path)
        errors = self.parts.compose("errors", errors_path) if totals["rejected_rows"] else None
        status = self._finish(
            {
                "state": "done",
                **totals,
                "results_path": f"gs://{self.results.name}/{results}",
                "errors_path": f"gs://{self.results.name}/{errors}" if errors else None,
            }
        )
        self.parts.delete()  # only once done: a redelivery before that composes the same parts again
        return status

    def _chunks(self, lines: Iterator, parser: RowParser, done: int, size: int, totals: dict) -> Iterator[Chunk]:
        for index in itertools.count():
            records_ = list(itertools.islice(lines, size))
            if not records_:
                return
            if index < done:  # completed by an earlier delivery: skipped over, not parsed
                continue
            chunk = Chunk(index)
            for line, cells in records_:
                parsed = parser.parse(line, cells)
                (chunk.customers if isinstance(parsed, Customer) else chunk.rejected).append(parsed)
            totals["rows_read"] += len(records_)
            totals["rows_scored"] += len(chunk.customers)
            totals["rejected_rows"] += len(chunk.rejected)
            chunk.totals = dict(totals)
            yield chunk

    def _score_chunk(self, chunk: Chunk) -> None:
        """Rows that share a segment and an eligible list share the agent's inputs: one agent call
        per group (priors computed once, one draw per row) rather than one per row; the linear
        agents score each row's own customer (its age within the segment)."""
        keys = [(segments.segment_of(c.age, c.gender, c.region), tuple(c.eligible)) for c in chunk.customers]
        policy = self.store.policy
        evidence = self.store.evidence(policy, {s for s, _ in keys}, {o for _, eligible in keys for o in eligible})
        groups: dict[tuple, list[int]] = collections.defaultdict(list)
        for row, key in enumerate(keys):
            groups[key].append(row)
        chunk.slates = [[] for _ in keys]
        for (segment, eligible), rows in groups.items():
            customers = [chunk.customers[row] for row in rows]
            drawn = agents.slates(policy, segment, eligible, evidence(segment), self.store.rng, len(rows), customers)
            for row, slate in zip(rows, drawn, strict=True):
                chunk.slates[row] = slate

    def _write_chunk(self, chunk: Chunk, names: dict, response_date: str) -> None:
        episodes = {}
        now = _now()
        for customer, slate in zip(chunk.customers, chunk.slates, strict=True):
            segment = segments.segment_of(customer.age, customer.gender, customer.region)
            episodes[self.upload.episode_id(customer.line)] = new_episode(
                customer.customer_id,
                customer.timestamp or response_date,
                customer.states,
                customer.eligible,
                segment,
                slate,
                self.store.policy,
                self.upload.source,
                now,
            )
        ids = list(episodes)
        stored = self._stored_slates(create_new(self.db, self.space.path(EPISODES), episodes, self.ramp))
        rows = []
        for customer, episode_id in zip(chunk.customers, ids, strict=True):
            slate = stored.get(episode_id) or slate_of(episodes[episode_id])
            padded = slate + [""] * (segments.SLATE_SIZE - len(slate))
            rows.append(
                [customer.customer_id, *padded, *(names.get(o) or "" for o in padded), episode_id, response_date]
            )
        if rows:
            self.parts.put("results", chunk.index + 1, csv_bytes(rows))
        if chunk.rejected:
            self.parts.put(
                "errors", chunk.index + 1, csv_bytes([r.line, r.customer_id, r.reason] for r in chunk.rejected)
            )
        self._record_chunk(chunk)

    def _record_chunk(self, chunk: Chunk) -> None:
        self._update({"chunks_done": chunk.index + 1, **chunk.totals, "lease_expires": _now() + self.lease})

    def _stored_slates(self, episode_ids: set[str]) -> dict[str, list[str]]:
        """The slates of episodes that were already there (written by an earlier run), which are kept."""
        if not episode_ids:
            return {}
        refs = [
            self.db.collection(self.space.path(EPISODES)).document(episode_id) for episode_id in sorted(episode_ids)
        ]
        return {snapshot.id: slate_of(snapshot.to_dict()) for snapshot in self.db.get_all(refs) if snapshot.exists}

    # -- Firestore reads ---------------------------------------------------------------------
    def _product_names(self, offers: list[str]) -> dict[str, str | None]:
        names = {}
        for start in range(0, len(offers), IN_FILTER_VALUES):
            names.update(self.store.product_names(offers[start : start + IN_FILTER_VALUES]))
        return names

    # -- the status document (shared/batch/status.py) -------------------------------------------
    def _claim(self) -> dict | None:
        return status_document.claim(self.db, self.status_ref, self.upload, self.owner, self.lease, _chunk_rows())

    def _update(self, fields: dict) -> None:
        status_document.update(self.db, self.status_ref, self.owner, fields)

    def _finish(self, fields: dict) -> dict:
        self._update({**fields, "finished_at": _now(), "lease_expires": _now()})
        status = self.status_ref.get().to_dict()
        log(
            "INFO" if status["state"] == "done" else "WARNING",
            f"batch file {status['state']}",
            job=self.status_ref.id,
            name=self.upload.name,
            rows_read=status["rows_read"],
            rows_scored=status["rows_scored"],
            rejected_rows=status["rejected_rows"],
            reason=status.get("reason"),
        )
        return status


def _chunk_rows() -> int:
    return max(1, _env_number("BATCH_CHUNK_ROWS", DEFAULT_CHUNK_ROWS, int))


def _env_number(name: str, default, kind):
    value = kind(os.environ.get(name) or default)
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value
