"""Where a steady instance's CPU goes, per thread: the K = 3 and K = 100 rows of `make bench-sample`'s
steady traffic, each served by an instance of its own, as there.

    python -m bench.instance_threads [--seconds 20]

Starts its own Firestore emulator and two gateways, sends both the steady traffic of
bench.sample_latency (every click with a context, one in five with its feedback) for 40 s, then
times each instance alone for --seconds and prints, per thread of its worker process, the CPU
seconds it used (from /proc, Linux) per /sample sent, and the emulator's. Threads are named when
`py-spy` is on the PATH (`py-spy dump`); otherwise by thread id, the request threads being the two
busiest. What it showed in session 22: docs/benchmarks.md#sample-latency.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import time

from google.cloud import firestore

from bench.sample_latency import BENCH_KEY, PROJECT, Lane, measure_lanes
from devstack import emulators
from devstack.serve import start_in_background
from shared.web.identity import key_hash

ROWS = (3, 100)


def thread_ticks(pid: int) -> dict[int, int]:
    """CPU clock ticks (user + system) of each thread of a process."""
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        ticks[int(tid)] = int(fields[11]) + int(fields[12])
    return ticks


def process_ticks(pids: list[int]) -> int:
    return sum(sum(thread_ticks(pid).values()) for pid in pids)


def thread_names(pid: int) -> dict[int, str]:
    if not shutil.which("py-spy"):
        return {}
    dump = subprocess.run(["py-spy", "dump", "-p", str(pid)], capture_output=True, text=True).stdout
    return {int(tid): name for tid, name in re.findall(r'^Thread (\d+) \([^)]*\): "([^"]+)"', dump, re.M)}


def worker_of(process: subprocess.Popen) -> int:
    """The gateway's gunicorn worker (the process that serves the requests)."""
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    return int(children[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    emulator = emulators.start_firestore()
    env = {**os.environ, **emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT}
    env["API_KEY_TENANTS"] = json.dumps({key_hash(BENCH_KEY): "default"})
    os.environ.update(env)
    gateways = []
    try:
        lanes = []
        for row, k in enumerate(ROWS):
            process, url = start_in_background(emulators.free_port(), env, log=open(os.devnull, "w"))
            gateways.append(process)
            lanes.append(Lane(url, tuple(range(100_000 * (row + 1), 100_000 * (row + 1) + k))))
        db = firestore.Client(project=PROJECT)
        click = 11 * 10**7
        started = time.monotonic()
        while time.monotonic() - started < 40:
            measure_lanes(lanes, db, 50, click, steady=True)
            click += 2 * 50 * len(lanes)
        emulator_pids = [
            int(p) for p in subprocess.run(["pgrep", "-f", "firestore"], capture_output=True, text=True).stdout.split()
        ]
        hz = os.sysconf("SC_CLK_TCK")
        for k, lane, gateway in zip(ROWS, lanes, gateways, strict=True):
            worker = worker_of(gateway)
            names = thread_names(worker)
            before, emulator_before = thread_ticks(worker), process_ticks(emulator_pids)
            sent, started = 0, time.monotonic()
            while time.monotonic() - started < args.seconds:
                measure_lanes([lane], db, 100, click, steady=True)
                click, sent = click + 200, sent + 100
            after, emulator_after = thread_ticks(worker), process_ticks(emulator_pids)
            used = {tid: (after[tid] - before.get(tid, 0)) / hz for tid in after}
            total = sum(used.values())
            emulator_used = (emulator_after - emulator_before) / hz
            print(
                f"\nK = {k}: {sent} /sample in {args.seconds:g} s (and their feedback); the instance's CPU "
                f"{1000 * total / sent:.2f} ms per /sample, the emulator's {1000 * emulator_used / sent:.2f} ms\n"
            )
            print("| thread | CPU ms per /sample |\n|---|---|")
            for tid, seconds in sorted(used.items(), key=lambda item: -item[1])[:6]:
                print(f"| {names.get(tid, tid)} | {1000 * seconds / sent:.2f} |")
    finally:
        for process in gateways:
            process.terminate()
            process.wait(timeout=10)
        emulator.stop()


if __name__ == "__main__":
    main()
