"""Create many documents through google-cloud-firestore's public BulkWriter, create-only.

Production Firestore takes a new key range at 500 writes/s and lets it grow by 50 % every five
minutes ("500/50/5"); BulkWriter throttles to that and retries writes that fail for a passing
reason. It sends BatchWrite requests, which are not atomic: each document succeeds or fails on
its own, so a document that already exists fails alone with ALREADY_EXISTS and is left as it is.

One BulkWriter per `create_new` call, started at the rate the ramp has reached by then (`Ramp`):
the SDK's flush() shuts the writer's executor down and a later flush() with fewer than a batch of
operations queued returns without sending them (google-cloud-firestore 2.34), so a writer is not
reused across flushes. The ramp itself is kept here, on the caller's clock, with the SDK's figures.
"""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from google.cloud import firestore
from google.cloud.firestore_v1.bulk_writer import BulkRetry, BulkWriteFailure, BulkWriterOptions
from google.rpc import code_pb2

INITIAL_OPS_PER_SECOND = 500  # Firestore's "500/50/5" rule: start at 500 writes/s ...
RAMP_FACTOR = 1.5  # ... and add 50 % ...
RAMP_PHASE_SECONDS = 5 * 60  # ... every 5 minutes of sustained traffic
DEFAULT_MAX_OPS_PER_SECOND = 10_000  # the SDK's own cap is 500, which would never ramp
MAX_ATTEMPTS = 15  # the SDK's default retry count per write (linear backoff: 1 s, 2 s, ...)
RETRIED = frozenset(
    {
        code_pb2.ABORTED,
        code_pb2.UNAVAILABLE,
        code_pb2.RESOURCE_EXHAUSTED,
        code_pb2.DEADLINE_EXCEEDED,
        code_pb2.INTERNAL,
    }
)


class WriteFailed(RuntimeError):
    """Some documents were neither created nor found already there; the caller must not go on."""


@dataclass
class Ramp:
    """Writes per second allowed `elapsed` seconds after the first write: 500/50/5, capped."""

    initial: int = INITIAL_OPS_PER_SECOND
    maximum: int = DEFAULT_MAX_OPS_PER_SECOND
    clock: Callable[[], float] = time.monotonic
    started: float | None = field(default=None, init=False)

    @classmethod
    def from_env(cls) -> "Ramp":
        """BATCH_MAX_OPS_PER_SECOND caps the ramp; BATCH_INITIAL_OPS_PER_SECOND exists for benchmarks
        on the emulator (production must start at 500)."""
        return cls(
            int(os.environ.get("BATCH_INITIAL_OPS_PER_SECOND", INITIAL_OPS_PER_SECOND)),
            int(os.environ.get("BATCH_MAX_OPS_PER_SECOND", DEFAULT_MAX_OPS_PER_SECOND)),
        )

    def rate(self) -> int:
        if self.started is None:
            self.started = self.clock()
        phases = int((self.clock() - self.started) // RAMP_PHASE_SECONDS)
        return max(1, min(self.maximum, round(self.initial * RAMP_FACTOR**phases)))


def create_new(db: firestore.Client, collection: str, documents: dict[str, dict], ramp: Ramp) -> set[str]:
    """Create each of `documents` (id -> fields) in `collection` unless it exists; returns the ids
    that already existed, which are left untouched. Raises WriteFailed when any other write fails
    for good (after BulkWriter's retries) or gets no answer."""
    rate, started = ramp.rate(), ramp.clock()
    writer = db.bulk_writer(
        BulkWriterOptions(initial_ops_per_second=rate, max_ops_per_second=rate, retry=BulkRetry.linear)
    )
    lock = threading.Lock()
    created, existing, failed = set(), set(), []

    def on_result(reference, _result, _writer) -> None:
        with lock:
            created.add(reference.id)

    def on_error(failure: BulkWriteFailure, _writer) -> bool:
        if failure.code in RETRIED and failure.attempts < MAX_ATTEMPTS:
            return True
        with lock:
            if failure.code == code_pb2.ALREADY_EXISTS:
                existing.add(failure.operation.reference.id)
            else:
                failed.append(f"{failure.operation.reference.id}: {code_pb2.Code.Name(failure.code)} {failure.message}")
        return False

    writer.on_write_result(on_result)
    writer.on_write_error(on_error)
    target = db.collection(collection)
    for document_id, fields in documents.items():
        writer.create(target.document(document_id), fields)
    writer.close()
    unanswered = len(documents) - len(created) - len(existing) - len(failed)
    if failed or unanswered:
        # a whole BatchWrite that raised (after the transport's own retries) reports no write at all
        raise WriteFailed(f"{len(failed)} writes failed and {unanswered} got no answer; first: {failed[:1]}")
    # a new writer starts with a full second of tokens: pad the call to keep the average at `rate`
    spare = len(documents) / rate - (ramp.clock() - started)
    if spare > 0:
        time.sleep(spare)
    return existing
