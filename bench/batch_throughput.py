"""Batch scoring throughput, memory and Firestore writes: `make bench-batch` (python -m bench.batch_throughput).

Measured here (fresh Firestore and storage emulators, generated Company-B-like CSVs):
- the engine path: score_upload hands the file to the local batch engine (devstack/engine.py),
  whose tasks run as `--workers` parallel processes, as the Cloud Run job's tasks run: rows/s per
  worker (a score task's rows over its wall time and over its CPU time), each task's peak
  resident memory (os.wait4's ru_maxrss), and the Firestore writes the file cost;
- the in-function path (`--inline-rows`): a file at most BATCH_PARALLEL_BYTES long, scored inside
  score_upload in a process of its own: rows/s and peak memory (VmHWM).

`--ramp-model` prints arithmetic, not a measurement: how long 1M, 10M and 100M rows take in
production and what they cost, from a worker's rate (`--worker-rows-per-second`, measured here),
the job's parallelism, the execution start-up and Firestore's 500/50/5 ramp for the pack writes.
"""

import argparse
import datetime
import json
import math
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
JOB = f"projects/{PROJECT}/locations/local/jobs/batch-engine"
REGIONS = ("Europa", "Asia", "Americas", " europa", "ASIA")
HEADER = "customer_id,timestamp,age,gender,client-since,region,last_offer," + ",".join(
    f"OFFER_{n}" for n in range(1, 11)
)
UNTHROTTLED = {"BATCH_INITIAL_OPS_PER_SECOND": "1000000", "BATCH_MAX_OPS_PER_SECOND": "1000000"}

# Production figures the model assumes (docs/batch-scoring.md says where each comes from).
WORKER_ROWS_PER_SECOND = 9_000  # a score task on one vCPU: this machine's figure (make bench-batch)
ROW_BYTES = 101  # a generated Company B row
RANGE_BYTES = 16 * 1024 * 1024  # shared/batch/plan.py DEFAULT_RANGE_BYTES
ROWS_PER_PACK = 1000
PARALLELISM = 100  # infra/batch_engine.tf: var.batch_engine_parallelism
EXECUTION_START_SECONDS = 30  # an execution until its tasks run: scheduling, image pull, Python imports
TASK_START_SECONDS = 5  # a later task of the same execution (image cached): start and imports
PLAN_SECONDS = 3  # score_upload: header, sample, statistics snapshot, plan object
PACK_TASK_SECONDS = 10  # a pack task's reads of every spill and its compression, besides the writes
FINISH_SECONDS = 10  # compose (32 parts a call), recent files, status
VCPU_SECOND, GIB_SECOND = 0.000018, 0.000002  # Cloud Run jobs, tier 1 regions
TASK_GIB = 0.5
FIRESTORE_WRITE, FIRESTORE_READ = 0.18 / 100_000, 0.06 / 100_000
GCS_CLASS_A, GCS_CLASS_B = 0.005 / 1000, 0.0004 / 1000


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


# -- measured ------------------------------------------------------------------------------------
def child(name: str, generation: str) -> None:
    """Score one file inside this process, as score_upload does for a small file; print its figures."""
    from shared.batch import job as batch_job
    from shared.platform.firestore import get_db

    started = time.perf_counter()
    batch_job.handle("bench-event", batch_job.FINALIZED, {"bucket": INBOX, "name": name, "generation": generation})
    seconds = time.perf_counter() - started
    job_id = batch_job.Upload(INBOX, name, generation).job_id
    status = get_db().collection(batch_job.JOBS).document(job_id).get().to_dict()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    figures = {"seconds": seconds, "rows": status["rows_read"], "state": status["state"], "packs": status["packs"]}
    print(json.dumps(figures | {"peak_mib": peak_kib / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}))


def sample_episode() -> dict:
    """One episode document as batch scoring writes it (shared/customer/store.py's new_episode)."""
    from shared.customer import agents, segments
    from shared.customer.store import new_episode

    return new_episode(
        "1000000",
        "2022-04-01",
        {"age": 40.0, "gender": "F", "region": "Asia", "client-since": "2015-01-01", "last_offer": "OFFER_2"},
        list(segments.OFFERS),
        "30-44|Asia|F",
        ["OFFER_1", "OFFER_2", "OFFER_3"],
        agents.DEFAULT_AGENT,
        "batch:bench",
        datetime.datetime.now(datetime.UTC),
    )


def ceiling(docs: int = 20_000, chunk: int = 5000, episode: dict | None = None) -> float:
    """The emulator's bare rate for creating episode documents the way the job does (through
    BulkWriter, unthrottled, a chunk at a time), with no reading, parsing or scoring; `episode`
    (default sample_episode()) is the document written."""
    import uuid

    from shared.batch.writer import Ramp, create_new
    from shared.customer.store import EPISODES
    from shared.platform.firestore import get_db

    db = get_db()
    episode = episode or sample_episode()
    ramp = Ramp(int(UNTHROTTLED["BATCH_INITIAL_OPS_PER_SECOND"]), int(UNTHROTTLED["BATCH_MAX_OPS_PER_SECOND"]))
    started = time.perf_counter()
    for _ in range(docs // chunk):
        create_new(db, EPISODES, {uuid.uuid4().hex: episode for _ in range(chunk)}, ramp)
    return docs // chunk * chunk / (time.perf_counter() - started)


def engine_run(engine, inbox, path: str, rows: int) -> dict:
    from shared.batch import job as batch_job
    from shared.batch import status as status_document
    from shared.customer import packs
    from shared.platform.firestore import get_db

    blob = inbox.blob(f"company_b/engine-{rows}.csv")
    blob.upload_from_filename(path, content_type="text/csv")
    before = len(engine.executions)
    started = time.perf_counter()
    batch_job.handle(
        "bench-event", batch_job.FINALIZED, {"bucket": INBOX, "name": blob.name, "generation": str(blob.generation)}
    )
    job_id = batch_job.Upload(INBOX, blob.name, str(blob.generation)).job_id
    ref = get_db().collection(batch_job.JOBS).document(job_id)
    while (status := ref.get().to_dict())["state"] not in ("done", "failed"):
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    executions = list(engine.executions.values())[before:]
    score_tasks, pack_tasks = executions[0].tasks, executions[-1].tasks
    ranges = status_document.tasks_of(ref, status_document.RANGES, status["plan_version"])
    rows_of = {task["index"]: task["rows_read"] for task in ranges}
    pack_documents = get_db().collection(packs.PACKS).where(filter=packs_filter(job_id)).count().get()[0][0].value
    # Besides the packs: each task's record (started, every 5 s of progress, done) and the status
    # document (claims and starts of its stages, progress about every 5 s, the end), the recent files.
    task_writes = sum(2 + int(task.seconds // 5) for task in score_tasks) + len(pack_tasks)
    status_writes = 8 + int(seconds // 5) + 1
    return {
        "state": status["state"],
        "rows": status["rows_read"],
        "seconds": seconds,
        "ranges": len(score_tasks),
        "groups": len(pack_tasks),
        "worker_rows_per_second": sorted(rows_of[t.index] / t.seconds for t in score_tasks),
        "rows_per_cpu_second": sum(rows_of.values()) / sum(t.cpu_seconds for t in score_tasks),
        # Each task's VmHWM, from its record: os.wait4's ru_maxrss would count the parent's pages
        # the child shared between fork and exec.
        "score_peak_mib": max(task["peak_mib"] for task in ranges),
        "pack_peak_mib": max(
            task["peak_mib"] for task in status_document.tasks_of(ref, status_document.GROUPS, status["plan_version"])
        ),
        "packs": pack_documents,
        "other_writes": task_writes + status_writes,
        "retries": sum(t.attempt for t in score_tasks + pack_tasks),
    }


def packs_filter(job_id: str):
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter("job", "==", job_id)


def measure(args) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind through the finally: no emulator left
    firestore, storage = emulators.start_firestore(), emulators.start_storage()
    env = {
        **firestore.env,
        **storage.env,
        **UNTHROTTLED,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "INBOX_BUCKET": INBOX,
        "RESULTS_BUCKET": RESULTS,
    }
    os.environ.update(env)
    try:
        from google.cloud import storage as gcs

        from devstack.engine import Engine, start_in_background

        client = gcs.Client(project=PROJECT)
        inbox = client.create_bucket(INBOX)
        client.create_bucket(RESULTS)
        engine = Engine(None, parallelism=args.workers, max_retries=3)
        server, url = start_in_background(emulators.free_port(), engine)
        os.environ.update(BATCH_ENGINE_JOB=JOB, BATCH_ENGINE_URL=url, BATCH_PARALLEL_BYTES=str(args.parallel_bytes))
        engine.env.update(os.environ)
        print(f"engine path: {args.workers} workers (local processes), files over {args.parallel_bytes:,} bytes")
        print(
            f"{'rows':>10} {'seconds':>8} {'rows/s':>8} {'tasks':>9} {'rows/s per worker':>22} {'rows/CPU-s':>10} "
            f"{'peak RSS score/pack':>19} {'packs':>6} {'writes/100 rows':>15}",
            flush=True,
        )
        for rows in args.rows:
            with tempfile.NamedTemporaryFile(suffix=".csv") as file:
                generate(file.name, rows)
                r = engine_run(engine, inbox, file.name, rows)
            per_worker = r["worker_rows_per_second"]
            spread = f"{per_worker[0]:,.0f}-{per_worker[-1]:,.0f} (med {per_worker[len(per_worker) // 2]:,.0f})"
            writes = (r["packs"] + r["other_writes"]) / r["rows"] * 100
            print(
                f"{r['rows']:>10,} {r['seconds']:>8.1f} {r['rows'] / r['seconds']:>8,.0f} "
                f"{r['ranges']:>4}+{r['groups']:<4} {spread:>22} "
                f"{r['rows_per_cpu_second']:>10,.0f} {r['score_peak_mib']:>4.0f}/{r['pack_peak_mib']:<4.0f}MB "
                f"{r['packs']:>6,} {writes:>15.3f}"
                f"  {r['state']}, {r['retries']} retries",
                flush=True,
            )
        server.shutdown()
        os.environ.pop("BATCH_ENGINE_JOB")
        for rows in args.inline_rows:
            with tempfile.NamedTemporaryFile(suffix=".csv") as file:
                generate(file.name, rows)
                blob = inbox.blob(f"company_b/inline-{rows}.csv")
                blob.upload_from_filename(file.name, content_type="text/csv")
            run = subprocess.run(
                [sys.executable, "-m", "bench.batch_throughput", "--child", blob.name, str(blob.generation)],
                env={**os.environ, "BATCH_PARALLEL_BYTES": str(10**12)},
                capture_output=True,
                text=True,
            )
            if run.returncode:
                print(run.stdout[-2000:], run.stderr[-4000:], file=sys.stderr)
                return 1
            r = json.loads(run.stdout.strip().splitlines()[-1])
            print(
                f"in-function path: {r['rows']:,} rows ({blob.size / 2**20:.0f} MiB) in {r['seconds']:.1f} s, "
                f"{r['rows'] / r['seconds']:,.0f} rows/s, peak RSS {r['peak_mib']:.0f} MB, "
                f"CPU {r['cpu_seconds'] / r['seconds']:.0%}, {r['packs']} packs, {r['state']}",
                flush=True,
            )
    finally:
        storage.stop()
        firestore.stop()
    return 0


# -- arithmetic ----------------------------------------------------------------------------------
def ramp_seconds(writes: int) -> float:
    """Seconds to create `writes` documents in a new key range at Firestore's 500/50/5 ramp."""
    from shared.batch.writer import INITIAL_OPS_PER_SECOND, RAMP_FACTOR, RAMP_PHASE_SECONDS

    seconds, rate, left = 0.0, INITIAL_OPS_PER_SECOND, writes
    while left > rate * RAMP_PHASE_SECONDS:
        left -= rate * RAMP_PHASE_SECONDS
        seconds += RAMP_PHASE_SECONDS
        rate *= RAMP_FACTOR
    return seconds + left / rate


def ramp_model(worker_rate: float, parallelism: int, rows_list=(1_000_000, 10_000_000, 100_000_000)) -> None:
    print(
        f"production arithmetic: {worker_rate:,.0f} rows/s per worker, parallelism {parallelism}, "
        f"{RANGE_BYTES // 2**20} MiB ranges of {ROW_BYTES}-byte rows, a pack per {ROWS_PER_PACK:,} rows, "
        f"{EXECUTION_START_SECONDS} s to start an execution"
    )
    print(
        f"{'rows':>12} {'ranges':>7} {'waves':>5} {'score':>7} {'packs':>7} {'pack':>7} {'total':>8} "
        f"{'writes/100 rows':>15} {'$ per M rows':>12}"
    )
    for rows in rows_list:
        ranges = math.ceil(rows * ROW_BYTES / RANGE_BYTES)
        rows_per_range = rows / ranges
        waves = math.ceil(ranges / parallelism)
        task_seconds = rows_per_range / worker_rate
        score = EXECUTION_START_SECONDS + task_seconds + (waves - 1) * (TASK_START_SECONDS + task_seconds)
        packs = math.ceil(rows / ROWS_PER_PACK)
        groups = min(packs, ranges)
        pack_waves = math.ceil(groups / parallelism)
        pack = EXECUTION_START_SECONDS + max(ramp_seconds(packs), pack_waves * PACK_TASK_SECONDS)
        total = PLAN_SECONDS + score + pack + FINISH_SECONDS
        writes = packs + 3 * ranges + groups + 20 + int(total // 5)
        task_seconds_total = ranges * (task_seconds + TASK_START_SECONDS) + groups * PACK_TASK_SECONDS
        compute = task_seconds_total * (VCPU_SECOND + TASK_GIB * GIB_SECOND)
        storage_ops = (4 * ranges + 2 * groups) * GCS_CLASS_A + (2 * ranges * groups + ranges) * GCS_CLASS_B
        cost = compute + writes * FIRESTORE_WRITE + (ranges + groups) * 2 * FIRESTORE_READ + storage_ops
        print(
            f"{rows:>12,} {ranges:>7,} {waves:>5} {score / 60:>5.1f} m {packs:>7,} {pack / 60:>5.1f} m "
            f"{total / 60:>6.1f} m {writes / rows * 100:>15.3f} {cost / rows * 1e6:>12.4f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000], help="files run on the local engine")
    parser.add_argument("--workers", type=int, default=2, help="the local engine's parallel tasks")
    parser.add_argument(
        "--parallel-bytes", type=int, default=256 * 1024, help="BATCH_PARALLEL_BYTES for the engine runs"
    )
    parser.add_argument("--inline-rows", type=int, nargs="*", default=[470_000], help="files scored in-function")
    parser.add_argument("--ramp-model", action="store_true", help="print the production arithmetic only")
    parser.add_argument("--worker-rows-per-second", type=float, default=WORKER_ROWS_PER_SECOND)
    parser.add_argument("--parallelism", type=int, default=PARALLELISM)
    parser.add_argument("--child", nargs=2, metavar=("NAME", "GENERATION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.ramp_model:
        ramp_model(args.worker_rows_per_second, args.parallelism)
        return 0
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
