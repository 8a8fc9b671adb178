"""Batch scoring throughput and peak memory: `make bench-batch` (or python -m bench.batch_throughput).

Starts fresh Firestore and storage emulators, generates Company-B-like CSVs, uploads each to the
inbox and runs the score_upload job on it in its own process, so that process's peak RSS (VmHWM)
is the job's alone. A delivery that stops at its time budget is delivered again at once, as the
platform's retry would (without its backoff), until the job is done. Prints rows/s (upload
excluded, everything from the first CloudEvent to the final status included), deliveries, peak
RSS, the job process's CPU share, and the emulator's bare episode-write rate through the same writer.

Two write rates:
- `unthrottled` (--rows, default 10k and 1M): the writer's ramp lifted (the emulator has none), so
  the figure is what the code itself costs on this machine;
- `production` (--production-rows, default 10k): BulkWriter's 500/50/5 ramp as deployed, which is
  what production Firestore allows on a new key range; `--production-rows 1000000` takes ~30 min.
Target: ≤ 256 MB at 1M rows.
"""

import argparse
import datetime
import json
import os
import random
import resource
import signal
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


UNTHROTTLED = {"BATCH_INITIAL_OPS_PER_SECOND": "1000000", "BATCH_MAX_OPS_PER_SECOND": "1000000"}


def child(name: str, generation: str) -> None:
    """Run one job in this process, delivering again while a delivery stops at its time budget,
    and print its figures as JSON."""
    from shared.batch import job as batch_job
    from shared.platform.firestore import get_db

    started = time.perf_counter()
    deliveries = 0
    while True:
        deliveries += 1
        try:
            batch_job.handle(
                "bench-event", batch_job.FINALIZED, {"bucket": INBOX, "name": name, "generation": generation}
            )
            break
        except batch_job.OutOfTime:
            continue
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
                "deliveries": deliveries,
                "state": status["state"],
                "rows_read": status["rows_read"],
                "rows_scored": status["rows_scored"],
                "peak_mib": peak_kib / 1024,
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
            }
        )
    )


def ceiling(docs: int = 20_000, chunk: int = 5000) -> float:
    """The emulator's bare rate for creating episode documents the way the job does (through
    BulkWriter, unthrottled, a chunk at a time), with no reading, parsing or scoring."""
    import uuid

    from shared.batch.writer import Ramp, create_new
    from shared.customer import agents, segments
    from shared.customer.store import EPISODES, new_episode
    from shared.platform.firestore import get_db

    db = get_db()
    episode = new_episode(
        "1000000",
        "2022-04-01",
        {"age": 40.0, "gender": "F", "region": "Asia", "client-since": "2015-01-01", "last_offer": "OFFER_2"},
        list(segments.OFFERS),
        "30-44|Asia|F",
        ["OFFER_1", "OFFER_2", "OFFER_3"],
        agents.LEARNING,
        "batch:bench",
        datetime.datetime.now(datetime.UTC),
    )

    ramp = Ramp(int(UNTHROTTLED["BATCH_INITIAL_OPS_PER_SECOND"]), int(UNTHROTTLED["BATCH_MAX_OPS_PER_SECOND"]))
    started = time.perf_counter()
    for _ in range(docs // chunk):
        create_new(db, EPISODES, {uuid.uuid4().hex: episode for _ in range(chunk)}, ramp)
    return docs / (time.perf_counter() - started)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def ramp_model(rows_list=(1_000_000, 3_000_000, 10_000_000), chunk: int = 5000) -> None:
    """Arithmetic, not a measurement: how long the writes of a file take at production Firestore's
    ramp (shared/batch/writer.py's Ramp, as deployed), in one run and resumed across deliveries
    with the default time budget and the platform's retry backoff (10 s doubling to 600 s)."""
    from shared.batch.job import DEFAULT_TIME_BUDGET_SECONDS
    from shared.batch.writer import Ramp

    def deliveries(rows: int, budget: float | None) -> list[tuple[float, int]]:
        left, runs = rows, []
        while left:
            clock = Clock()
            ramp, done = Ramp(clock=clock), 0
            while left and (budget is None or clock.now < budget):
                size = min(chunk, left)
                clock.now += size / ramp.rate()
                left, done = left - size, done + size
            runs.append((clock.now, done))
        return runs

    print(f"{'rows':>11} {'one run':>8} {'deliveries':>10} {'resumed':>8}  rows per delivery")
    for rows in rows_list:
        one = deliveries(rows, None)[0][0]
        runs = deliveries(rows, DEFAULT_TIME_BUDGET_SECONDS)
        backoff = sum(min(10 * 2**n, 600) for n in range(len(runs) - 1))
        total = sum(seconds for seconds, _ in runs) + backoff
        shown = ", ".join(f"{done:,}" for _, done in runs[:4]) + (", ..." if len(runs) > 4 else "")
        print(f"{rows:>11,} {one / 60:>6.0f} m {len(runs):>10} {total / 60:>6.0f} m  {shown}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 1_000_000], help="files run unthrottled")
    parser.add_argument("--production-rows", type=int, nargs="*", default=[10_000], help="files run at the ramp")
    parser.add_argument("--ramp-model", action="store_true", help="print the production-ramp arithmetic only")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "GENERATION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.ramp_model:
        ramp_model()
        return 0
    # a SIGTERM (e.g. from `timeout`) unwinds through the finally below, so no emulator is left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
        print(
            f"{'writes':>11} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'deliveries':>10} {'peak RSS':>9} "
            f"{'job CPU':>8}  state",
            flush=True,
        )
        runs = [("unthrottled", rows) for rows in args.rows] + [("production", rows) for rows in args.production_rows]
        for mode, rows in runs:
            with tempfile.NamedTemporaryFile(suffix=".csv") as file:
                generate(file.name, rows)
                blob = inbox.blob(f"company_b/bench-{mode}-{rows}.csv")
                blob.upload_from_filename(file.name, content_type="text/csv")
            run = subprocess.run(
                [sys.executable, "-m", "bench.batch_throughput", "--child", blob.name, str(blob.generation)],
                env={**env, **(UNTHROTTLED if mode == "unthrottled" else {})},
                capture_output=True,
                text=True,
            )
            if run.returncode:
                print(run.stdout[-2000:], run.stderr[-4000:], file=sys.stderr)
                return 1
            result = json.loads(run.stdout.strip().splitlines()[-1])
            print(
                f"{mode:>11} {result['rows_read']:>9,} {result['seconds']:>8.1f} "
                f"{result['rows_read'] / result['seconds']:>8,.0f} {result['deliveries']:>10} "
                f"{result['peak_mib']:>6.0f} MB {result['cpu_seconds'] / result['seconds']:>7.0%}  "
                f"{result['state']}, {result['rows_scored']:,} scored",
                flush=True,
            )
        print(
            f"reference: this emulator creates {ceiling():,.0f} episode documents/s on its own "
            "(through BulkWriter unthrottled, a chunk at a time as the job does, nothing else running)"
        )
    finally:
        storage.stop()
        firestore.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
