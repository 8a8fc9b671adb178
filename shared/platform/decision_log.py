"""The decision and outcome log: each recorded decision and outcome published as one JSON record to
its Pub/Sub topic, whose BigQuery subscription writes it into the table of the same name
(infra/analytics.tf; columns in shared/platform/log_tables.py; docs/analytics.md).

Publishing never waits: `emit` hands the record to the client library's batcher (a background
thread sends a batch every BATCH_LATENCY seconds or BATCH_MESSAGES records) and returns. A batch
that fails after the library's retries is logged at ERROR with its records in full ("decision log:
publish failed"), so no record disappears without a trace; the batcher is flushed when the process
exits. Delivery is at least once (publish retries, subscription redeliveries): the tables' views
keep one row per record_id.

DECISION_LOG=pubsub turns it on (Terraform and `make run` set it), with DECISION_LOG_TOPIC_PREFIX
(topics `<prefix>decisions`, `<prefix>outcomes`) in GOOGLE_CLOUD_PROJECT; PUBSUB_EMULATOR_HOST
points the client at the emulator. Anything else, or unset: off (nothing published).
"""

import atexit
import json
import os
import threading
import time

from shared.platform.log import log
from shared.platform.log_tables import TABLES

BATCH_LATENCY = 0.05  # seconds a record may wait in the instance for its batch
BATCH_MESSAGES = 500


def microseconds(seconds: float | None = None) -> int:
    """A record's time: microseconds since the epoch (now by default)."""
    return int((time.time() if seconds is None else seconds) * 1_000_000)


class Off:
    """No log: records are dropped (DECISION_LOG unset or off)."""

    enabled = False

    def emit(self, table: str, record: dict) -> None:
        pass

    def flush(self) -> None:
        pass


class PubSubLog:
    """Records published to `<prefix><table>` topics of `project` through one batching client."""

    enabled = True

    def __init__(self, project: str, prefix: str):
        from google.cloud import pubsub_v1

        settings = pubsub_v1.types.BatchSettings(max_messages=BATCH_MESSAGES, max_latency=BATCH_LATENCY)
        self.client = pubsub_v1.PublisherClient(batch_settings=settings)
        self.topics = {table: self.client.topic_path(project, f"{prefix}{table}") for table in TABLES}

    def emit(self, table: str, record: dict) -> None:
        data = json.dumps(record, separators=(",", ":")).encode()
        future = self.client.publish(self.topics[table], data)
        future.add_done_callback(lambda done: _failed(done, table, record))

    def flush(self) -> None:
        """Send what is batched and wait for it (the process is about to end)."""
        self.client.stop()


def _failed(future, table: str, record: dict) -> None:
    error = future.exception()
    if error is not None:
        log("ERROR", "decision log: publish failed", table=table, record=record, exception=repr(error)[:300])


_lock = threading.Lock()
_current: Off | PubSubLog | None = None


def from_env() -> Off | PubSubLog:
    """The process's log, made on first use from the environment (see the module's doc)."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = _make()
                if _current.enabled:
                    atexit.register(_current.flush)
    return _current


def _make() -> Off | PubSubLog:
    if os.environ.get("DECISION_LOG", "off").strip().lower() != "pubsub":
        return Off()
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise ValueError("DECISION_LOG=pubsub needs GOOGLE_CLOUD_PROJECT")
    return PubSubLog(project, os.environ.get("DECISION_LOG_TOPIC_PREFIX", ""))
