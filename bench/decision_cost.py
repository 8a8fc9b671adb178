"""Per-decision cost of the default policy: `choose(DEFAULT_SAMPLER, 100 candidates, ...)`, timed per call.

python -m bench.decision_cost [--candidates 100] [--calls 2000]
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
    stats = candidates(args.candidates, rng)
    params = SamplerParams()
    for sampler in [DEFAULT_SAMPLER] + [s for s in SAMPLERS if s != DEFAULT_SAMPLER]:
        for _ in range(50):  # warm up
            choose(sampler, stats, 100_000, params, rng)
        times = np.empty(args.calls)
        for i in range(args.calls):
            started = time.perf_counter()
            choose(sampler, stats, 100_000, params, rng)
            times[i] = time.perf_counter() - started
        ms = times * 1e3
        mark = " (default)" if sampler == DEFAULT_SAMPLER else ""
        print(
            f"{sampler:9s}{mark:10s} {args.candidates} candidates: median {np.median(ms):.3f} ms, "
            f"p99 {np.percentile(ms, 99):.3f} ms, mean {ms.mean():.3f} ms per decision"
        )


if __name__ == "__main__":
    main()
