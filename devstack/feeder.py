"""`make run`'s stand-in for the deployed path from Pub/Sub to BigQuery (infra/analytics.tf): it pulls
the decision log's records from the Pub/Sub emulator and appends them to the local DuckDB file
(tools/analytics/duck.py), acknowledging each batch only after its commit.

Like a BigQuery subscription, delivery is at least once: killed between its commit and its
acknowledgement, the batch comes again and lands twice in the raw table, and the views keep one
row per record_id. A message that is not a record the table can take (not JSON, a required column
missing) goes to the `dead_letters` table, as the deployed subscriptions' dead-letter topic keeps it.

    python -m devstack.feeder --database local-results/decision-log.duckdb --prefix offer-bandits-
"""

import argparse
import contextlib
import json
import os
import pathlib
import signal
import sys
import time

from google.api_core import exceptions
from google.cloud import pubsub_v1

from shared.platform import log_tables
from tools.analytics import duck

BATCH = 500  # messages per pull and per DuckDB commit
IDLE_SLEEP = 0.2  # seconds between empty pulls
# Seconds a pulled batch may take before it is delivered again: Pub/Sub's least. Its commit takes well
# under a second; a batch pulled by a feeder that was then killed waits this long to come back (at 60 s
# the test that kills it spent 50 s waiting). A commit held up longer by a reader's lock only means
# the batch lands twice in the raw table, one row in the view, as after a kill.
ACK_DEADLINE = 10


def subscription_id(prefix: str, table: str) -> str:
    return f"{prefix}{table}-local-feeder"


def setup(project: str, prefix: str) -> None:
    """The topics and the feeder's subscriptions (the emulator starts empty), when missing."""
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    for table in log_tables.TABLES:
        topic = publisher.topic_path(project, f"{prefix}{table}")
        with contextlib.suppress(exceptions.AlreadyExists):
            publisher.create_topic(request={"name": topic})
        subscription = subscriber.subscription_path(project, subscription_id(prefix, table))
        with contextlib.suppress(exceptions.AlreadyExists):
            subscriber.create_subscription(
                request={"name": subscription, "topic": topic, "ack_deadline_seconds": ACK_DEADLINE}
            )


def _record(table: str, data: bytes) -> dict | None:
    try:
        record = json.loads(data)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    required = [column.name for column in log_tables.COLUMNS[table] if column.mode == "REQUIRED"]
    return record if all(record.get(name) is not None for name in required) else None


def feed_once(subscriber: pubsub_v1.SubscriberClient, database: pathlib.Path, subscriptions: dict[str, str]) -> int:
    """One pull from each subscription, committed to DuckDB, then acknowledged; the messages fed."""
    pulled = {}
    for table, subscription in subscriptions.items():
        try:
            answer = subscriber.pull(request={"subscription": subscription, "max_messages": BATCH}, timeout=10)
        except exceptions.DeadlineExceeded:
            continue
        if answer.received_messages:
            pulled[table] = answer.received_messages
    if not pulled:
        return 0
    connection = duck.connect(database)
    try:
        duck.create(connection)
        connection.execute("BEGIN TRANSACTION")
        for table, messages in pulled.items():
            records = [(m, _record(table, m.message.data)) for m in messages]
            duck.insert(connection, table, [record for _, record in records if record is not None])
            dead = [(subscriptions[table], m.message.data.decode(errors="replace")) for m, r in records if r is None]
            if dead:
                connection.execute("CREATE TABLE IF NOT EXISTS dead_letters (subscription VARCHAR, data VARCHAR)")
                connection.executemany("INSERT INTO dead_letters VALUES (?, ?)", dead)
        connection.execute("COMMIT")
    finally:
        connection.close()  # readers may open the file now
    for table, messages in pulled.items():
        ack_ids = [m.ack_id for m in messages]
        subscriber.acknowledge(request={"subscription": subscriptions[table], "ack_ids": ack_ids})
    return sum(len(messages) for messages in pulled.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.feeder", description=__doc__.split("\n")[0])
    parser.add_argument("--database", type=pathlib.Path, default=duck.DEFAULT_PATH)
    parser.add_argument("--prefix", default=os.environ.get("DECISION_LOG_TOPIC_PREFIX", ""))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    setup(project, args.prefix)
    args.database.parent.mkdir(parents=True, exist_ok=True)
    connection = duck.connect(args.database)
    duck.create(connection)
    connection.close()
    subscriber = pubsub_v1.SubscriberClient()
    subscriptions = {
        table: subscriber.subscription_path(project, subscription_id(args.prefix, table)) for table in log_tables.TABLES
    }
    while True:
        if not feed_once(subscriber, args.database, subscriptions):
            time.sleep(IDLE_SLEEP)


if __name__ == "__main__":
    sys.exit(main())
