"""`/sample` latency through the local URL against the bare Firestore work one sample needs.

    make bench-sample            (or: python -m bench.sample_latency --requests 1000)

Starts its own Firestore emulator and gateway. The bare work is what no implementation of
`/sample` can avoid: one commit that creates the click document and adds one to a shard of the
chosen offer's counter. The candidates' statistics come from the instance's cache of rolled-up
summaries (shared/platform/stats_cache.py), refreshed in the background, so a sample reads nothing; the
bare work reads nothing either. The ratio of the two is the cost of everything else: HTTP,
validation, the cache lookup, the policy, logging. Rows at 3 and 100 candidates in the same run
show how the cost grows with K (target: K = 100 within 1.3x of K = 3); their requests alternate,
so that every row is timed in the same minutes of the emulator's life. In steady traffic each row
is served by an instance of its own, as each K's traffic would be.

Then the decision log's cost (docs/analytics.md): a second gateway on the same Firestore publishes
every decision and outcome to a Pub/Sub emulator (DECISION_LOG=pubsub), and requests alternate
between the two, so the p50 with the log records and without them come from one run (target: at
most 1 ms more). `--log-only` runs that part alone.
"""

import argparse
import json
import math
import os
import random
import socket
import statistics
import time
import urllib.parse
from collections.abc import Callable
from typing import NamedTuple

from google.cloud import firestore

from devstack import emulators, feeder
from devstack.serve import start_in_background
from shared.cpa.models import SampleRequest
from shared.cpa.policies import Choice
from shared.cpa.store import CLICKS, click_doc_id, click_document, offer_counter
from shared.platform import counters, stats_cache
from shared.web.identity import key_hash

PROJECT = "offer-bandits-bench"
LOG_PREFIX = "bench-"  # the decision log's topics in the benchmark's Pub/Sub emulator
BENCH_KEY = "bench-key"  # the default tenant's API key in the benchmark's own gateway
FEEDBACK_EVERY = 5  # steady traffic: one click in 5 gets its feedback
# Steady rows take turns in blocks of this many requests (about 5 s): long enough that the instance
# not being timed has stopped refreshing (it refreshes only copies its requests used, at most M = 2 s
# after), so one row's background roll-ups do not land on another row's timings.
STEADY_BLOCK = 500
STEADY_COUNTRIES = ("FR", "DE", "US", "BR", "IN", "GB", "ES", "IT")


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Caller:
    """One keep-alive HTTP/1.1 connection, as an ad platform's backend holds one, spoken over a
    plain socket: the request line out, the status, headers and Content-Length body back.

    A server's latency is measured with a client that costs next to nothing, as load generators
    (wrk, h2load) are written to: on these machines http.client spends about 0.3 ms of CPU a call,
    mostly parsing headers through email.parser (requests more), which would count as the
    service's own."""

    def __init__(self, url: str, key: str = BENCH_KEY):
        self.key = key  # the API key every request carries
        address = urllib.parse.urlsplit(url)
        self.address = (address.hostname, address.port)
        self.socket = None
        self.buffered = b""

    def _connect(self) -> None:
        self.socket = socket.create_connection(self.address, timeout=30)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffered = b""

    def reconnect(self) -> None:
        """A new connection now, untimed: the server closes one left idle past its keep-alive (2 s)."""
        if self.socket is not None:
            self.socket.close()
        self._connect()

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffered:
            self._receive()
        head, _, self.buffered = self.buffered.partition(marker)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffered) < size:
            self._receive()
        body, self.buffered = self.buffered[:size], self.buffered[size:]
        return body

    def _receive(self) -> None:
        chunk = self.socket.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-response")
        self.buffered += chunk

    def get(self, target: str, method: str = "GET") -> tuple[int, bytes]:
        if self.socket is None:
            self._connect()
        length = "Content-Length: 0\r\n" if method != "GET" else ""
        request = f"{method} {target} HTTP/1.1\r\nHost: {self.address[0]}\r\nx-api-key: {self.key}\r\n{length}\r\n"
        self.socket.sendall(request.encode())
        status_line, *header_lines = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)
        }
        if "content-length" not in headers:
            raise RuntimeError(f"no Content-Length in the answer to {target}: {headers}")
        body = self._read_exactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            self.socket.close()
            self.socket = None
        return int(status_line.split()[1]), body


class Lane(NamedTuple):
    """One row's traffic: the gateway it is sent to and the candidates every request names."""

    url: str
    offers: tuple[int, ...]


def measure(
    url: str,
    db: firestore.Client,
    offers: tuple[int, ...],
    n: int,
    first_click: int,
    key: str = BENCH_KEY,
    steady: bool = False,
    sampler: str | None = None,
) -> tuple[list[float], list[float]]:
    """measure_lanes with one lane: its /sample latencies and the bare ones, in ms."""
    (http,), (bare,) = measure_lanes([Lane(url, offers)], db, n, first_click, key, steady, sampler)
    return http, bare


def measure_lanes(
    lanes: list[Lane],
    db: firestore.Client,
    n: int,
    first_click: int,
    key: str = BENCH_KEY,
    steady: bool = False,
    sampler: str | None = None,
    block: int = 1,
) -> tuple[list[list[float]], list[list[float]]]:
    """Per lane, its /sample latencies and those of the bare samples that followed them, in ms.

    The lanes take turns, `block` requests at a time, until each has sent n; each /sample is
    followed by one bare Firestore sample. So the emulator's warm-up, its drift and any background
    load weigh on every lane and on the bare work alike (rows timed minutes apart saw the bare
    commit's own p50 move by 1.5-1.8x between them, and the ratio of two rows with it). Blocks of a
    few seconds let each lane's instance go quiet while another lane is timed (an instance refreshes
    only the copies its requests used). `steady`: traffic as in service, each click with a context
    (served by `sampler`, or the default when None) and one in FEEDBACK_EVERY converting (untimed
    /feedback), so the candidates' statistics move at every roll-up and no decision reuses a
    remembered probability for long. The /samples take the even click ids from first_click on, in
    the order sent, each bare sample the odd one after its /sample's."""
    callers = [Caller(lane.url, key) for lane in lanes]
    rng = random.Random(first_click)
    http, bare = [[] for _ in lanes], [[] for _ in lanes]
    click = first_click
    while len(http[-1]) < n:
        for j, (lane, caller) in enumerate(zip(lanes, callers, strict=True)):
            if block > 1:  # its connection sat idle while the other lanes took their turns
                caller.reconnect()
            for _ in range(min(block, n - len(http[j]))):
                fields = {"click_id": click, "offer_ids": ",".join(map(str, lane.offers))}
                if steady:
                    fields |= {
                        "geo": rng.choice(STEADY_COUNTRIES),
                        "device": rng.choice(("desktop", "mobile", "tablet")),
                    }
                    fields |= {"os": rng.choice(("android", "ios", "windows")), "source": f"src-{rng.randrange(500)}"}
                if sampler:
                    fields["sampler"] = sampler
                http[j].append(_timed(caller, f"/sample/?{urllib.parse.urlencode(fields)}"))
                if steady and len(http[j]) % FEEDBACK_EVERY == 1:
                    reward = rng.choice((0, 400, 900, 2500))
                    _timed(caller, f"/feedback/?click_id={click}&reward={reward}", "PUT")
                bare[j].append(_bare_sample(db, lane.offers, click + 1))
                click += 2
    return http, bare


def _timed(caller: Caller, target: str, method: str = "GET") -> float:
    """One request's milliseconds; anything but a 200 stops the benchmark."""
    started = time.perf_counter()
    status, body = caller.get(target, method)
    took = (time.perf_counter() - started) * 1000
    if status != 200:
        raise RuntimeError(f"{method} {target[:60]} answered {status}: {body[:200]!r}")
    return took


def _bare_sample(db: firestore.Client, offers: tuple[int, ...], click: int) -> float:
    """The work no /sample can avoid, its milliseconds: one commit creating the click document and
    adding one to a shard of one candidate's counter."""
    document = click_document(SampleRequest(click_id=click, offer_ids=list(offers)), Choice(0, 1.0))
    started = time.perf_counter()
    batch = db.batch()
    batch.create(db.collection(CLICKS).document(click_doc_id(click)), document)
    counters.add(batch, db, offer_counter(random.choice(offers)), {"clicks": 1}, counters.MIN_SHARDS)
    batch.commit()
    return (time.perf_counter() - started) * 1000


def compare_log(plain: str, logged: str, offers: tuple[int, ...], n: int, first_click: int) -> tuple[list, list]:
    """Alternate one /sample without the decision log and one with it (its records published)."""
    callers = Caller(plain), Caller(logged)
    without, with_log = [], []
    for click in range(first_click, first_click + 2 * n, 2):
        for caller, into, click_id in ((callers[0], without, click), (callers[1], with_log, click + 1)):
            query = urllib.parse.urlencode({"click_id": click_id, "offer_ids": ",".join(map(str, offers))})
            target = f"/sample/?{query}"
            started = time.perf_counter()
            status, body = caller.get(target)
            into.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"/sample answered {status}: {body[:200]!r}")
    return without, with_log


def published(project: str, prefix: str) -> int:
    """How many decision records reached the emulator's subscription (drained)."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, feeder.subscription_id(prefix, "decisions"))
    count = 0
    while True:
        answer = subscriber.pull(request={"subscription": path, "max_messages": 1000}, timeout=30)
        if not answer.received_messages:
            return count
        count += len(answer.received_messages)
        subscriber.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in answer.received_messages]})


def log_rows(url: str, logged: str, requests: int, warmup: int) -> None:
    compare_log(url, logged, (3, 5, 7), warmup, 9 * 10**8)  # the publisher's connection, its first batches
    published(PROJECT, LOG_PREFIX)  # drained: only the measured requests' records are counted below
    without, with_log = compare_log(url, logged, (3, 5, 7), requests, 8 * 10**8)
    (p50, p99), (log_p50, log_p99) = percentiles(without), percentiles(with_log)
    time.sleep(1)  # the last batch
    received = published(PROJECT, LOG_PREFIX)
    print(
        f"\n/sample with and without the decision log, K = 3, {requests} requests each, alternating "
        f"(after {warmup} each not counted); {received:,} decision records reached the Pub/Sub emulator\n"
    )
    paired = statistics.median(mine - theirs for mine, theirs in zip(with_log, without, strict=True))
    print("| | p50 ms | p99 ms |\n|---|---|---|")
    print(f"| without the log | {p50:.2f} | {p99:.2f} |\n| with the log records | {log_p50:.2f} | {log_p99:.2f} |")
    print(f"| added | {log_p50 - p50:+.2f} | {log_p99 - p99:+.2f} |")
    print(
        f"\nmedian of the paired differences (a request with the log minus the one before it without): {paired:+.3f} ms"
    )
    print(f"in the process, building and handing one record to the publisher: median {emit_cost():.1f} µs")
    print("\ntarget: added p50 <= 1 ms")


def emit_cost(records: int = 5000) -> float:
    """Microseconds to build one click's decision record and hand it to the batching publisher (the
    work /sample adds), median of `records`, against the same Pub/Sub emulator."""
    from shared.cpa import log_records
    from shared.platform.decision_log import PubSubLog

    publisher = PubSubLog(PROJECT, LOG_PREFIX)
    click = {"click_id": 1, "offer_id": 5, "sampler": "thompson", "probability": 0.4, "candidates": "3,5,7"}
    took = []
    for i in range(records):
        started = time.perf_counter()
        publisher.emit("decisions", log_records.decision("default", {**click, "click_id": i}, 0.02, i))
        took.append((time.perf_counter() - started) * 1e6)
    publisher.flush()
    return statistics.median(took)


def seed_counters(db: firestore.Client, offers: tuple[int, ...]) -> None:
    """Give every candidate the counters of an offer in service (thousands of clicks, a few percent
    converting at lognormal payouts), so the policy runs the path it runs in production rather
    than its cold start. The server's first roll-up sums them into the summaries."""
    rng = random.Random(7)
    for offer in offers:
        for shard in counters.shard_refs(db, offer_counter(offer), counters.MIN_SHARDS):
            clicks = rng.randint(1000, 2000)
            payouts = [rng.lognormvariate(7.0, 0.5) for _ in range(int(clicks * rng.uniform(0.01, 0.05)))]
            logs = [math.log(payout) for payout in payouts]
            shard.set(
                {
                    counters.FIELD: {
                        counters.WRITES: clicks,
                        "clicks": clicks,
                        "conversions": len(payouts),
                        "reward": sum(payouts),
                        "reward_sq": sum(p * p for p in payouts),
                        "log_conversions": len(logs),
                        "log_reward": sum(logs),
                        "log_reward_sq": sum(v * v for v in logs),
                    }
                }
            )


def time_loopback(url: str, n: int) -> float:
    """An HTTP round trip through the gateway that touches no function (a 404)."""
    caller = Caller(url)
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        caller.get("/no-such-path")
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


def steady(start_gateway: Callable[[], str], db: firestore.Client, args) -> None:
    """The same rows in steady traffic: each row's traffic served by an instance of its own (its
    background refreshes are its own K's), fresh offers per row, each click with a context and one
    in FEEDBACK_EVERY converting, --steady-seconds of it before the rows are timed (the statistics
    then move at every roll-up; `--steady-sampler contextual` has a new context on every click).
    The rows take turns (request by request while warming up, then --steady-block requests at a
    time while timed), so they share the emulator's state and each instance is quiet while the other is timed."""
    print(
        f"\nSteady traffic: one instance per row, fresh offers per row, {args.steady_seconds:g} s of traffic on them "
        f"first, then {args.requests} timed, the rows taking turns {args.steady_block} requests at a time; every click "
        "with a context, served by "
        f"{args.steady_sampler or 'the default sampler'}, one in {FEEDBACK_EVERY} with its feedback (untimed)\n"
    )
    lanes = [
        Lane(start_gateway(), tuple(range(100_000 * (row + 1), 100_000 * (row + 1) + k)))
        for row, k in enumerate(args.candidates)
    ]
    first = 11 * 10**7
    started = time.perf_counter()
    while time.perf_counter() - started < args.steady_seconds:
        measure_lanes(lanes, db, 50, first, steady=True, sampler=args.steady_sampler)
        first += 2 * 50 * len(lanes)
    http, bare = measure_lanes(
        lanes, db, args.requests, first, steady=True, sampler=args.steady_sampler, block=args.steady_block
    )
    print("| candidates | /sample p50 ms | /sample p99 ms | bare p50 ms | ratio p50 |")
    print("|---|---|---|---|---|")
    p50s = table_rows(args.candidates, http, bare, with_p99_ratio=False)
    ratio = p50s[max(p50s)] / p50s[min(p50s)]
    print(f"\nsteady traffic: /sample p50 at K = {max(p50s)} / at K = {min(p50s)}: {ratio:.2f} (target <= 1.3)")


def table_rows(candidates: list[int], http: list[list[float]], bare: list[list[float]], with_p99_ratio=True) -> dict:
    """Print one table row per K; returns the /sample p50 of each."""
    p50s = {}
    for k, mine, theirs in zip(candidates, http, bare, strict=True):
        (http_p50, http_p99), (bare_p50, bare_p99) = percentiles(mine), percentiles(theirs)
        p50s[k] = http_p50
        if with_p99_ratio:
            row = f"{bare_p50:.2f} | {bare_p99:.2f} | {http_p50 / bare_p50:.2f} | {http_p99 / bare_p99:.2f}"
        else:
            row = f"{bare_p50:.2f} | {http_p50 / bare_p50:.2f}"
        print(f"| {k} | {http_p50:.2f} | {http_p99:.2f} | {row} |", flush=True)
    return p50s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument(
        "--candidates", type=int, nargs="+", default=[3, 10, 30, 100], help="offers per request, one row each"
    )
    parser.add_argument("--warmup", type=int, default=1000, help="pairs of requests not counted")
    parser.add_argument("--log-only", action="store_true", help="only the rows with and without the decision log")
    parser.add_argument(
        "--steady-seconds", type=float, default=30.0, help="steady traffic on each row's offers before it is timed"
    )
    parser.add_argument(
        "--steady-block",
        type=int,
        default=STEADY_BLOCK,
        help="steady rows take turns this many requests at a time (1: request by request)",
    )
    parser.add_argument(
        "--steady-sampler", default=None, help="the sampler steady traffic names (default: none, as most clients)"
    )
    args = parser.parse_args()

    firestore_emulator = emulators.start_firestore()
    pubsub_emulator = emulators.start_pubsub()
    tenants = json.dumps({key_hash(BENCH_KEY): "default"})
    env = {**os.environ, **firestore_emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT, "API_KEY_TENANTS": tenants}
    env |= pubsub_emulator.env
    os.environ.update(env)
    gateway = logged_gateway = None
    processes = []  # the steady rows' own instances

    def start_row_gateway() -> str:
        process, row_url = start_in_background(emulators.free_port(), env, log=open(os.devnull, "w"))
        processes.append(process)
        return row_url

    try:
        feeder.setup(PROJECT, LOG_PREFIX)  # the topics, and a subscription that counts what arrives
        gateway, url = start_in_background(emulators.free_port(), env, log=open(os.devnull, "w"))
        logged_env = {**env, "DECISION_LOG": "pubsub", "DECISION_LOG_TOPIC_PREFIX": LOG_PREFIX}
        logged_gateway, logged = start_in_background(emulators.free_port(), logged_env, log=open(os.devnull, "w"))
        db = firestore.Client(project=PROJECT)
        seed_counters(db, tuple(sorted({3, 5, 7, *range(1, max(args.candidates) + 1)})))
        measure(url, db, (3, 5, 7), args.warmup, 10**9)  # connections, imports, the emulator's JIT
        if args.log_only:
            log_rows(url, logged, args.requests, args.warmup)
            return
        loopback = time_loopback(url, args.requests)
        print(
            f"/sample latency, {args.requests} sequential requests per row (after {args.warmup} not counted), "
            f"statistics from the instance's cache (STATS_MAX_AGE_SECONDS={stats_cache.max_age_from_env():g}); "
            f"HTTP round trip alone on this machine: p50 {loopback:.2f} ms\n"
        )
        print("| candidates | /sample p50 ms | /sample p99 ms | bare p50 ms | bare p99 ms | ratio p50 | ratio p99 |")
        print("|---|---|---|---|---|---|---|")
        lanes = [Lane(url, tuple(range(1, k + 1)) if k != 3 else (3, 5, 7)) for k in args.candidates]
        http, bare = measure_lanes(lanes, db, args.requests, 10**7)
        p50s = table_rows(args.candidates, http, bare)
        print("\ntarget: p50 ratio <= 1.3")
        if len(p50s) > 1:
            print(
                f"/sample p50 at K = {max(p50s)} / at K = {min(p50s)}: {p50s[max(p50s)] / p50s[min(p50s)]:.2f} "
                "(target <= 1.3)"
            )
        steady(start_row_gateway, db, args)
        log_rows(url, logged, args.requests, args.warmup)
    finally:
        for process in (gateway, logged_gateway, *processes):
            if process:
                process.terminate()
                process.wait(timeout=10)
        pubsub_emulator.stop()
        firestore_emulator.stop()


if __name__ == "__main__":
    main()
