"""Batch scoring throughput and peak memory: `make bench-batch` (or python -m bench.batch_throughput).

Starts fresh Firestore and storage emulators, generates Company-B-like CSVs (10k and 1M rows by
default), uploads each to the inbox and runs the score_upload job on it in its own process, so
that process's peak RSS (VmHWM) is the job's alone. Prints rows/s (upload excluded, everything
from the CloudEvent to the final status included), peak RSS, the job process's CPU share, and
the emulator's bare episode-write rate, which bounds the job. Targets: ≥ 5,000 rows/s and
≤ 256 MB at 1M rows.
"""

import argparse
import datetime
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

from devstack import emulators

PROJECT = "offer-bandits-bench"
INBOX, RESULTS = "bench-inbox", "bench-results"
REGIONS = ("Europa", "Asia", "Americas", " europa", "ASIA")
HEADER = "customer_id,timestamp,age,gender,client-since,region,last_offer," + ",".join(
    f"OFFER_{n}" for n in range(1, 11)
)


def generate(path: str, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    flags = ",".join(["True"] * 10)
    with open(path, "w", newline="") as file:
        file.write(HEADER + "\r\n")
        for i in range(rows):
            file.write(
                f"{1_000_000 + i},2022-04-{rng.randint(1, 28):02d},{rng.randint(18, 90)},{rng.choice('FM')},"
                f"20{rng.randint(10, 21)}-01-01,{rng.choice(REGIONS)},OFFER_{rng.randint(1, 10)},{flags}\r\n"
            )


def child(name: str, generation: str) -> None:
    """Run one job in this process and print its figures as JSON."""
    from shared.batch import job as batch_job
    from shared.firestore_client import get_db

    started = time.perf_counter()
    batch_job.handle("bench-event", batch_job.FINALIZED, {"bucket": INBOX, "name": name, "generation": generation})
    seconds = time.perf_counter() - started
    status = (
        get_db().collection(batch_job.JOBS).document(batch_job.Upload(INBOX, name, generation).job_id).get().to_dict()
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "state": status["state"],
                "rows_read": status["rows_read"],
                "rows_scored": status["rows_scored"],
                "peak_mib": peak_kib / 1024,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
            }
        )
    )


def ceiling(docs: int = 20_000) -> float:
    """The emulator's bare rate for creating episode documents the way the job does (batches of
    500, COMMIT_THREADS in parallel), with no reading, parsing or scoring: the job's upper bound."""
    import concurrent.futures
    import uuid

    from shared.batch import job as batch_job
    from shared.batch.writer import create_documents
    from shared.customer import agent
    from shared.customer.store import EPISODES, new_episode
    from shared.firestore_client import get_db

    db = get_db()
    episode = new_episode(
        "1000000",
        "2022-04-01",
        {"age": 40.0, "gender": "F", "region": "Asia", "client-since": "2015-01-01", "last_offer": "OFFER_2"},
        list(agent.OFFERS),
        "30-44|Asia|F",
        ["OFFER_1", "OFFER_2", "OFFER_3"],
        agent.LEARNING,
        "batch:bench",
        datetime.datetime.now(datetime.UTC),
    )

    def commit(_):
        create_documents(db, EPISODES, {uuid.uuid4().hex: episode for _ in range(batch_job.BATCH_WRITES)})

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(batch_job.COMMIT_THREADS) as pool:
        list(pool.map(commit, range(docs // batch_job.BATCH_WRITES)))
    return docs / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 1_000_000])
    parser.add_argument("--child", nargs=2, metavar=("NAME", "GENERATION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    firestore, storage = emulators.start_firestore(), emulators.start_storage()
    env = {
        **os.environ,
        **firestore.env,
        **storage.env,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "INBOX_BUCKET": INBOX,
        "RESULTS_BUCKET": RESULTS,
    }
    os.environ.update(env)
    try:
        from google.cloud import storage as gcs

        client = gcs.Client(project=PROJECT)
        inbox = client.create_bucket(INBOX)
        client.create_bucket(RESULTS)
        print(f"{'rows':>9} {'seconds':>8} {'rows/s':>8} {'peak RSS':>9} {'job CPU':>8}  state", flush=True)
        for rows in args.rows:
            with tempfile.NamedTemporaryFile(suffix=".csv") as file:
                generate(file.name, rows)
                blob = inbox.blob(f"company_b/bench-{rows}.csv")
                blob.upload_from_filename(file.name, content_type="text/csv")
            run = subprocess.run(
                [sys.executable, "-m", "bench.batch_throughput", "--child", blob.name, str(blob.generation)],
                env=env,
                capture_output=True,
                text=True,
            )
            if run.returncode:
                print(run.stdout[-2000:], run.stderr[-4000:], file=sys.stderr)
                return 1
            result = json.loads(run.stdout.strip().splitlines()[-1])
            print(
                f"{result['rows_read']:>9,} {result['seconds']:>8.1f} {result['rows_read'] / result['seconds']:>8,.0f} "
                f"{result['peak_mib']:>6.0f} MB {result['cpu_seconds'] / result['seconds']:>7.0%}  "
                f"{result['state']}, {result['rows_scored']:,} scored",
                flush=True,
            )
        print(
            f"reference: this emulator creates {ceiling():,.0f} episode documents/s on its own "
            "(batched and parallel as the job does, nothing else running)"
        )
    finally:
        storage.stop()
        firestore.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
