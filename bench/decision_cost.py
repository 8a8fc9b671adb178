"""Per-decision cost of each policy: `choose(sampler, 100 candidates, ...)`, timed per call.

python -m bench.decision_cost [--candidates 100] [--calls 2000]

Two rows per sampler, and two for the default without re-tries (SamplerParams.retry_level None):
the same statistics on every call (one candidate set between two cache refreshes: thompson's
probabilities and re-try floors are remembered by posterior), and new statistics on every call (a
candidate set that rotates per click: the full computation each time). `contextual` gets a
new click context on every call (each candidate's rate shifted, its variance widened, as
shared/cpa/context_model.py makes them), so it never reuses a probability. The statistics are
read-only, as the store hands them (one Stats per set of cached copies), so thompson's posterior
is remembered on the same statistics and costs its key on new ones. Each row gives the
wall time and the CPU time of the calling thread (on a machine shared with other jobs the wall
time also counts the time the process waits for a core), and the load average while it ran.
The process sets its allocator as the service's entry points do (shared/platform/allocator.py).
"""

import argparse
import os
import time
from dataclasses import replace

import numpy as np

from shared.cpa.policies import DEFAULT_SAMPLER, SAMPLERS, OfferStats, SamplerParams, Stats, choose_batch
from shared.cpa.policies.contextual import Adjustments, ContextParams
from shared.platform import allocator


def candidates(k: int, rng: np.random.Generator) -> list[OfferStats]:
    clicks = rng.integers(50, 5000, size=k)
    conversions = rng.binomial(clicks, rng.uniform(0.005, 0.08, size=k))
    payout = rng.uniform(200, 8000, size=k)
    # fixed payouts, counters with the log-payout sums (as the store keeps them)
    return [
        OfferStats(
            int(c), int(v), float(v * p), float(v * p * p), int(v), float(v * np.log(p)), float(v * np.log(p) ** 2)
        )
        for c, v, p in zip(clicks, conversions, payout, strict=True)
    ]


def context_params(k: int, rng: np.random.Generator) -> ContextParams:
    """A click's context: each candidate's ln rate shifted by about +-0.3, with variance 0.01-0.1."""
    shift = 0.3 * rng.standard_normal((1, k))
    return ContextParams(adjust=Adjustments(shift, rng.uniform(0.01, 0.1, size=(1, k))))


def as_served(stats: list[OfferStats]) -> Stats:
    """The candidates' statistics as the store hands them to a decision: read-only arrays."""
    table = Stats.of(stats)
    for part in table:
        part.setflags(write=False)
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    allocator.keep_freed_memory_mapped()
    rng = np.random.default_rng(0)
    same = as_served(candidates(args.candidates, rng))
    rotating = [as_served(candidates(args.candidates, rng)) for _ in range(args.calls)]
    contexts = [context_params(args.candidates, rng) for _ in range(args.calls)]
    plain = SamplerParams()
    total = np.array([100_000])
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = [(DEFAULT_SAMPLER, "")] + [(s, "") for s in SAMPLERS if s != DEFAULT_SAMPLER]
    for sampler, variant in rows + [("thompson", "no re-tries")]:
        for label, sets in (("same statistics", [same] * args.calls), ("new statistics", rotating)):
            given = replace(plain, retry_level=None) if variant else plain
            params = contexts if sampler == "contextual" else [given] * args.calls
            for _ in range(50):  # warm up
                choose_batch(sampler, same, total, plain, rng)
            wall, cpu = np.empty(args.calls), np.empty(args.calls)
            for i, stats in enumerate(sets):
                started, started_cpu = time.perf_counter(), time.thread_time()
                choose_batch(sampler, stats, total, params[i], rng)
                wall[i], cpu[i] = time.perf_counter() - started, time.thread_time() - started_cpu
            mark = f" ({variant})" if variant else " (default)" if sampler == DEFAULT_SAMPLER else ""
            context = ", a new context each call" if sampler == "contextual" else ""
            print(
                f"{sampler:10s}{mark:10s} {args.candidates} candidates, {label}{context}: median "
                f"{np.median(wall) * 1e3:.3f} ms wall, {np.median(cpu) * 1e3:.3f} ms CPU; "
                f"p99 {np.percentile(wall, 99) * 1e3:.3f} ms wall",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
