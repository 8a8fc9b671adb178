"""`/sample` latency through the local URL against the bare Firestore work one sample needs.

    make bench-sample            (or: python -m bench.sample_latency --requests 1000)

Starts its own Firestore emulator and gateway. The bare work is what no implementation of
`/sample` can avoid: one get_all of the click document and the candidates' counter shards, and
one commit that creates the click and adds to two counters. The ratio of the two is the cost of
everything else: HTTP, validation, the policy, logging.
"""
import argparse
import os
import random
import statistics
import time

import requests
from google.cloud import firestore

from devstack import emulators
from devstack.serve import start_in_background
from shared import counters
from shared.cpa_store import CLICKS, GLOBAL_CLICKS, offer_counter

PROJECT = "offer-bandits-bench"
OFFERS = (3, 5, 7)


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def time_http(url: str, n: int, first_click: int) -> list[float]:
    session = requests.Session()
    latencies = []
    for click in range(first_click, first_click + n):
        started = time.perf_counter()
        answer = session.get(f"{url}/sample/", params={"click_id": click, "offer_ids": ",".join(map(str, OFFERS))}, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return latencies


def time_bare_firestore(db: firestore.Client, n: int, first_click: int) -> list[float]:
    latencies = []
    shard_refs = counters.shard_refs(db, GLOBAL_CLICKS) + [ref for o in OFFERS for ref in counters.shard_refs(db, offer_counter(o))]
    for click in range(first_click, first_click + n):
        started = time.perf_counter()
        click_ref = db.collection(CLICKS).document(str(click))
        list(db.get_all([click_ref, *shard_refs]))
        batch = db.batch()
        batch.create(click_ref, {"click_id": click, "offer_id": OFFERS[0]})
        batch.set(counters.random_shard(db, offer_counter(random.choice(OFFERS))), {"clicks": firestore.Increment(1)}, merge=True)
        batch.set(counters.random_shard(db, GLOBAL_CLICKS), {"clicks": firestore.Increment(1)}, merge=True)
        batch.commit()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, so drift hits both sides alike")
    args = parser.parse_args()

    firestore_emulator = emulators.start_firestore()
    env = {**os.environ, **firestore_emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT}
    os.environ.update(env)
    gateway = None
    try:
        gateway, url = start_in_background(emulators.free_port(), env, log=open(os.devnull, "w"))
        db = firestore.Client(project=PROJECT)
        time_http(url, 100, 10_000_000)  # warm-up: connections, imports, JIT of the emulator
        time_bare_firestore(db, 100, 20_000_000)
        http, bare = [], []
        per_round = args.requests // args.rounds
        for round_index in range(args.rounds):
            http += time_http(url, per_round, round_index * per_round)
            bare += time_bare_firestore(db, per_round, 30_000_000 + round_index * per_round)
        (http_p50, http_p99), (bare_p50, bare_p99) = percentiles(http), percentiles(bare)
        print(f"/sample latency over {len(http)} sequential requests, {len(OFFERS)} candidates, {counters.SHARDS} shards per counter\n")
        print("| what | p50 ms | p99 ms |")
        print("|---|---|---|")
        print(f"| GET /sample through the local URL | {http_p50:.2f} | {http_p99:.2f} |")
        print(f"| bare Firestore work (get_all + commit) | {bare_p50:.2f} | {bare_p99:.2f} |")
        print(f"| ratio | {http_p50 / bare_p50:.2f} | {http_p99 / bare_p99:.2f} |")
        print(f"\ntarget: p50 ratio <= 1.3 -> {'met' if http_p50 / bare_p50 <= 1.3 else 'NOT met'}")
    finally:
        if gateway:
            gateway.terminate()
            gateway.wait(timeout=10)
        firestore_emulator.stop()


if __name__ == "__main__":
    main()
