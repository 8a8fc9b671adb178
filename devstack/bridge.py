"""The local stand-in for Eventarc: each new object generation in the emulator's inbox bucket
becomes the CloudEvent the deployed trigger delivers to `score_upload`.

    python -m devstack.bridge --bucket local-inbox --target http://127.0.0.1:PORT/

gcp-storage-emulator delivers no events, so the bridge polls the bucket. Like Eventarc with the
trigger's retry policy it delivers at least once: a delivery the function fails (an error status,
or no answer because its process died) is retried with the same event id, with backoff capped at
MAX_DELAY, until the function accepts it or RETRY_PERIOD has passed. The period outlives a dead
run's lease (shared/batch/job.py), so the next retry takes a file over from a run that died and
carries on from the tasks it recorded. Each event is delivered on its own thread, so one long file
holds up no other.
"""

import argparse
import contextlib
import datetime
import sys
import threading
import time
import uuid

import requests
from google.cloud import storage

FINALIZED = "google.cloud.storage.object.v1.finalized"
FIRST_DELAY = 1.0  # seconds before the first retry; doubled each time ...
MAX_DELAY = 30.0  # ... up to this
RETRY_PERIOD = 30 * 60.0  # seconds of retrying before an event is given up (Eventarc: days)


def storage_event(blob: storage.Blob, event_id: str | None = None) -> tuple[dict, dict]:
    """(headers, JSON data) of a binary-mode CloudEvent for a finalized object, as Eventarc sends it."""
    bucket = blob.bucket.name
    headers = {
        "ce-id": event_id or uuid.uuid4().hex,
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "ce-type": FINALIZED,
        "ce-specversion": "1.0",
        "ce-subject": f"objects/{blob.name}",
        "ce-time": _iso(blob.updated),
        "Content-Type": "application/json",
    }
    data = {
        "bucket": bucket,
        "name": blob.name,
        "generation": str(blob.generation),
        "metageneration": str(blob.metageneration),
        "timeCreated": _iso(blob.time_created),
        "updated": _iso(blob.updated),
        "size": str(blob.size),
        "contentType": blob.content_type,
    }
    return headers, data


def _iso(moment: datetime.datetime | None) -> str:
    moment = moment or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def deliver(
    target: str,
    headers: dict,
    data: dict,
    period: float = RETRY_PERIOD,
    first_delay: float = FIRST_DELAY,
    max_delay: float = MAX_DELAY,
) -> bool:
    """POST the event until the function accepts it (2xx); False once `period` seconds have passed."""
    give_up = time.monotonic() + period
    delay = first_delay
    while True:
        try:
            answer = requests.post(target, headers=headers, json=data, timeout=period)
            if answer.ok:
                return True
            problem = f"HTTP {answer.status_code}"
        except requests.RequestException as error:
            problem = type(error).__name__
        if time.monotonic() + delay > give_up:
            print(f"bridge: gave up delivering {data['name']} ({problem})", file=sys.stderr, flush=True)
            return False
        print(
            f"bridge: delivery of {data['name']} failed ({problem}); retrying in {delay:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(delay)
        delay = min(delay * 2, max_delay)


def run(bucket_name: str, target: str, interval: float = 0.5, period: float = RETRY_PERIOD) -> None:
    client = storage.Client(project="offer-bandits-local")
    seen: set[tuple[str, int]] = set()
    while True:
        try:
            blobs = list(client.list_blobs(bucket_name))
        except Exception as error:  # the emulator may still be starting, or briefly busy
            print(f"bridge: cannot list {bucket_name}: {error}", file=sys.stderr, flush=True)
            blobs = []
        for blob in blobs:
            key = (blob.name, blob.generation)
            if key not in seen:
                seen.add(key)
                headers, data = storage_event(blob)
                print(
                    f"bridge: gs://{bucket_name}/{blob.name} generation {blob.generation} -> score_upload", flush=True
                )
                threading.Thread(target=deliver, args=(target, headers, data, period), daemon=True).start()
        time.sleep(interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--retry-period", type=float, default=RETRY_PERIOD, help="seconds before an event is given up")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        run(args.bucket, args.target, args.interval, args.retry_period)


if __name__ == "__main__":
    main()
