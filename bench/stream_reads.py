"""What reading documents costs the process, with gRPC's default channel and with streamed answers
read on the calling thread (shared/platform/sdk_private.py `read_streams_on_the_calling_thread`).

    python -m bench.stream_reads [--repeats 15]

Starts its own Firestore emulator, writes the 8 shards of 100 counters, and alternates the two
clients: the shards read raw as a roll-up reads them (`sdk_private.found_fields`, one
BatchGetDocuments of 800 documents), and 100 of them through the SDK's `get_all` (as the
statistics cache reads the summaries). Prints the median process CPU (every thread: gRPC's spin
thread included) and wall time per read.
"""

import argparse
import os
import statistics
import time

from google.cloud import firestore

from devstack import emulators
from shared.platform import sdk_private


def timed(read, repeats: int) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(repeats):
        started_cpu, started = time.process_time(), time.perf_counter()
        read()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return 1000 * statistics.median(cpu), 1000 * statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    emulator = emulators.start_firestore()
    os.environ.update(emulator.env)
    try:
        default = firestore.Client(project="stream-reads")
        refs = [default.document(f"counters/{i // 8}/shards/{i % 8}") for i in range(800)]
        for start in range(0, len(refs), 400):
            batch = default.batch()
            for n, ref in enumerate(refs[start : start + 400], start):
                batch.set(ref, {"c": {"clicks": n, "conversions": 1, "reward": 2.5, "writes": n}})
            batch.commit()
        list(default.get_all(refs[:1]))  # its channel made now, with the options as the SDK ships them
        sdk_private.read_streams_on_the_calling_thread()
        calling = firestore.Client(project="stream-reads")
        list(calling.get_all(refs[:1]))
        print(f"800 shard documents (found_fields) and 100 documents (get_all), median of {args.repeats}\n")
        print("| client | 800 raw: CPU ms | wall ms | 100 get_all: CPU ms | wall ms |\n|---|---|---|---|---|")
        rows = {"gRPC's default (a spin thread)": default, "streams on the calling thread": calling}
        results = {label: [] for label in rows}
        for _ in range(3):  # the two alternate, so both see the emulator in the same state
            for label, db in rows.items():
                raw = timed(lambda db=db: list(sdk_private.found_fields(db, refs)), args.repeats)
                snapshots = timed(lambda db=db: list(db.get_all(refs[:100])), args.repeats)
                results[label].append((*raw, *snapshots))
        for label, runs in results.items():
            figures = [statistics.median(run[i] for run in runs) for i in range(4)]
            print(f"| {label} | " + " | ".join(f"{figure:.1f}" for figure in figures) + " |")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
