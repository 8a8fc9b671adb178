"""Per-decision cost of each policy: `choose(sampler, 100 candidates, ...)`, timed per call.

python -m bench.decision_cost [--candidates 100] [--calls 2000]

Two rows per sampler: the same statistics on every call (one candidate set between two cache
refreshes: thompson's probabilities are remembered by posterior), and new statistics on every
call (a candidate set that rotates per click: the full computation each time).
"""

import argparse
import time

import numpy as np

from shared.cpa.policies import DEFAULT_SAMPLER, SAMPLERS, OfferStats, SamplerParams, choose


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    same = candidates(args.candidates, rng)
    rotating = [candidates(args.candidates, rng) for _ in range(args.calls)]
    params = SamplerParams()
    for sampler in [DEFAULT_SAMPLER] + [s for s in SAMPLERS if s != DEFAULT_SAMPLER]:
        for label, sets in (("same statistics", [same] * args.calls), ("new statistics", rotating)):
            for _ in range(50):  # warm up
                choose(sampler, same, 100_000, params, rng)
            times = np.empty(args.calls)
            for i, stats in enumerate(sets):
                started = time.perf_counter()
                choose(sampler, stats, 100_000, params, rng)
                times[i] = time.perf_counter() - started
            ms = times * 1e3
            mark = " (default)" if sampler == DEFAULT_SAMPLER else ""
            print(
                f"{sampler:9s}{mark:10s} {args.candidates} candidates, {label}: median {np.median(ms):.3f} ms, "
                f"p99 {np.percentile(ms, 99):.3f} ms, mean {ms.mean():.3f} ms per decision"
            )


if __name__ == "__main__":
    main()
