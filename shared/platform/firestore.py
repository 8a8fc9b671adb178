"""The process-wide Firestore clients: the emulator when FIRESTORE_EMULATOR_HOST is set.

Every call of the HTTP functions' client (get_request_db) is bounded. The SDK's own defaults
allow 60 s (commits) to 300 s (reads, queries) of retrying, longer than the functions' timeouts
(30 s; 10 s for is-alive), so an outage hung every request for minutes. Here a call that gets an
answer may take up to CALL_TIMEOUT_S (a slow but working Firestore); a call that keeps failing
(unreachable: refused connections) is retried for RETRY_BUDGET_S at most. Each method keeps the
SDK's own choice of which errors it retries. The first call that fails ends the request with a
503 (shared/web/http.py), so a request never outlives a few seconds of outage, and after a few such
failures in a row the breaker answers at once. Batch jobs keep the SDK's deadlines (get_db).
"""

import functools
import os
import threading
import time

import grpc
from google.api_core import exceptions
from google.cloud import firestore

from shared.platform import sdk_private

LOCAL_PROJECT = "offer-bandits-local"
MAX_COMMIT_WRITES = 500  # Firestore takes at most 500 writes in one commit
CALL_TIMEOUT_S = 5.0  # one call, however slow Firestore answers
RETRY_BUDGET_S = 2.0  # no new attempt of a failing call after this
ROLLBACK_TIMEOUT_S = 1.0  # best effort, after a failed transaction: the request is failing anyway
RETRY_AFTER_S = 2  # what a 503 tells the client to wait; also how long the breaker stays open

# Firestore is down, overloaded or too slow: the request may succeed later, so 503, never a 500.
UNAVAILABLE = (
    exceptions.ServiceUnavailable,
    exceptions.DeadlineExceeded,
    exceptions.RetryError,
    exceptions.ResourceExhausted,
    exceptions.InternalServerError,
    exceptions.Aborted,  # a transaction still contended after the SDK's five attempts
)
_UNAVAILABLE_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def is_unavailable(error: BaseException | None) -> bool:
    """Whether `error`, or one it was raised from, says Firestore could not be reached in time or
    stayed contended (rather than a bug or bad input). The chain matters: when a transaction's
    begin fails, the SDK's rollback raises a ValueError in its place."""
    seen = 0
    while error is not None and seen < 10:
        code = getattr(error, "code", None)
        if isinstance(error, UNAVAILABLE) or (
            isinstance(error, grpc.RpcError) and callable(code) and code() in _UNAVAILABLE_CODES
        ):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


class Breaker:
    """After `threshold` requests in a row found Firestore unreachable, the next `open_s` seconds
    of requests skip it (a 503, or the degraded answer, at once instead of after a deadline); then
    requests try again. One per process: a function instance's own view of the outage."""

    def __init__(self, threshold: int = 3, open_s: float = RETRY_AFTER_S):
        self.threshold = threshold
        self.open_s = open_s
        self._failures = 0
        self._open_until = 0.0
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold:
                self._open_until = time.monotonic() + self.open_s
                self._failures = 0

    def succeeded(self) -> None:
        self._failures = 0


breaker = Breaker()


def _client() -> firestore.Client:
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT") or LOCAL_PROJECT
    database = os.environ.get("FIRESTORE_DATABASE", "(default)")
    sdk_private.read_streams_on_the_calling_thread()
    return firestore.Client(project=project, database=database)


@functools.cache
def get_db() -> firestore.Client:
    """The client with the SDK's own deadlines: batch jobs (540 s) and tools, whose big commits may
    take longer than a request could wait."""
    return _client()


@functools.cache
def get_request_db() -> firestore.Client:
    """The client of the HTTP functions: every call bounded (CALL_TIMEOUT_S, RETRY_BUDGET_S)."""
    db = _client()
    sdk_private.bound_every_call(db, CALL_TIMEOUT_S, RETRY_BUDGET_S, ROLLBACK_TIMEOUT_S)
    return db


class PerClient:
    """One object per Firestore client (and key), shared by the process's requests: a deployed
    instance keeps one cache per client. `make(db, *key)` builds it; the object keeps `db`."""

    def __init__(self, make):
        self._make = make
        self._items: dict = {}
        self._lock = threading.Lock()

    def get(self, db: firestore.Client, *key):
        with self._lock:
            found = self._items.get((id(db), *key))
            if found is None or found.db is not db:
                found = self._items[(id(db), *key)] = self._make(db, *key)
            return found
