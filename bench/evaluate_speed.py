"""How long `make evaluate` takes to replay logged clicks for every sampler (shared/cpa/replay.py).

    python -m bench.evaluate_speed [--clicks 5000] [--offers 5] [--seed 0]

A synthetic log: `--clicks` clicks, one every 0.1 s, each over the same `--offers` candidates,
chosen uniformly at random (logged probability 1/K), converting at rates 1-5 % with payouts of
200-2,000 cents, rewards 30 s after the click. Prints the CPU time (process time, so other load on
the machine weighs less) of rebuilding the decision-time counters and of each sampler's
probabilities, and the wall time of the whole replay and its estimates.
"""

import argparse
import time

import numpy as np

from shared.cpa import replay
from shared.cpa.policies import SAMPLERS, SamplerParams, Stats


def synthetic_log(clicks: int, offers: int, seed: int) -> replay.Log:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.01, 0.05, offers)
    payouts = rng.uniform(200, 2000, offers).round()
    action = rng.integers(offers, size=clicks)
    reward = (rng.random(clicks) < rates[action]) * payouts[action]
    t = np.arange(clicks) * 0.1
    candidates = [tuple(range(1, offers + 1))] * clicks
    return replay.Log(
        candidates, action, np.full(clicks, 1 / offers), reward, t, t + 30.0, [None] * clicks, np.full(clicks, np.nan)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=5000)
    parser.add_argument("--offers", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    log = synthetic_log(args.clicks, args.offers, args.seed)

    started = time.process_time()
    per_click, clicks_before = replay.decision_stats(log)
    print(f"{args.clicks:,} clicks, {args.offers} offers; CPU seconds:")
    print(f"  decision-time counters: {time.process_time() - started:.2f}")
    stats = Stats(*np.moveaxis(np.stack(per_click), 2, 0))
    for name in SAMPLERS:
        started = time.process_time()
        replay.target_probabilities(name, stats, clicks_before, SamplerParams(), np.random.default_rng(args.seed))
        print(f"  {name:<10} probabilities: {time.process_time() - started:.2f}")
    wall = time.perf_counter()
    replay.estimates(replay.replay(log, list(SAMPLERS), np.random.default_rng(args.seed)))
    print(f"whole replay and estimates, every sampler: {time.perf_counter() - wall:.2f} s wall")


if __name__ == "__main__":
    main()
