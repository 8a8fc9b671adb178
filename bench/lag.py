"""The default sampler with fresh statistics vs statistics that lag as the per-instance cache
serves them (shared/platform/stats_cache.py): decisions read a snapshot refreshed when it is too old.

    python -m bench.lag [--seeds 100] [--lags 4000] [--envs E1,E2,E3,E4,E5,E6] [--fresh-json FILE]

At the declared rate, 2,000 clicks/s on the hottest offer:
- "cache": the cache's rule (stats_cache.age_limit): a snapshot is used for at most 10 % of the
  statistics' life (STATS_LAG_FRACTION), at least 0.1 s (STATS_MIN_AGE_SECONDS = 200 clicks) and
  at most M = 2 s (STATS_MAX_AGE_SECONDS = 4,000 clicks). This is the design.
- "lag N": a flat bound of N clicks whatever the age (--lags; 4,000 = M alone, the rule before
  young counters were read fresh), for comparison.

--fresh-json: take the fresh runs' per-seed shares from `make bench`'s reports/bench/results.json
(same seeds, same policy random stream, so the same runs) instead of running them again.
Prints % of oracle revenue fresh and lagged per environment, with the paired difference in points
(95 % CI, same seeds and draws). Target: within 1 point.
"""

import argparse
import json
import multiprocessing
import os
import pathlib
import time

import numpy as np

RATE = 2_000  # clicks/s on the hottest offer
CACHE = "cache"


def _task(args):
    env_key, seeds, lag = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from bench.envs import ENVS
    from bench.harness import World, run_project_policy
    from bench.run import HALF_LIVES
    from shared.cpa.policies import DEFAULT_SAMPLER, SamplerParams
    from shared.platform import stats_cache

    if lag == CACHE:
        rule = {
            "lag_clicks": int(RATE * stats_cache.DEFAULT_MAX_AGE),
            "lag_fraction": stats_cache.DEFAULT_LAG_FRACTION,
            "lag_min": int(RATE * stats_cache.DEFAULT_MIN_AGE),
        }
    else:
        rule = {"lag_clicks": lag}
    world = World(ENVS[env_key], np.arange(seeds))
    run = run_project_policy(world, DEFAULT_SAMPLER, SamplerParams(), half_life=HALF_LIVES.get(DEFAULT_SAMPLER), **rule)
    return env_key, lag, 100 * run.oracle_share


def _name(lag) -> str:
    return "cache rule" if lag == CACHE else f"lag {lag:,} clicks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--lags", default="4000")
    parser.add_argument("--envs", default="E1,E2,E3,E4,E5,E6")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--fresh-json", default=None)
    args = parser.parse_args()
    from shared.cpa.policies import DEFAULT_SAMPLER

    started, started_at = time.perf_counter(), time.time()
    lags = [0, CACHE] + [int(x) for x in args.lags.split(",") if x]
    envs = args.envs.split(",")
    shares = {}
    tasks = [(e, args.seeds, lag) for e in envs for lag in lags if not (args.fresh_json and lag == 0)]
    with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        for env_key, lag, share in pool.imap_unordered(_task, tasks):
            shares[env_key, lag] = share
            print(f"{env_key} {_name(lag)}: {share.mean():.2f} % of oracle", flush=True)
    if args.fresh_json:  # written by a `make bench` that may still be running: wait for it
        path = pathlib.Path(args.fresh_json)
        while not path.exists() or path.stat().st_mtime < started_at:
            time.sleep(30)
        saved = json.loads(path.read_text())
        assert saved["seeds"] == args.seeds and not saved.get("lag_clicks"), "fresh runs of another setting"
        for e in envs:
            shares[e, 0] = np.array(saved["oracle_share"][e][DEFAULT_SAMPLER])
    print(
        f"\n`{DEFAULT_SAMPLER}` (default), {args.seeds} seeds, % of oracle revenue; "
        "lagged − fresh in points (95 % CI)\n"
    )
    print("| env | fresh | " + " | ".join(f"{_name(lag)} | lagged − fresh" for lag in lags[1:]) + " |")
    print("|---|---|" + "---|---|" * (len(lags) - 1))
    for env_key in envs:
        fresh = shares[env_key, 0]
        cells = [f"{fresh.mean():.2f}"]
        for lag in lags[1:]:
            diff = shares[env_key, lag] - fresh
            half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff))
            cells += [f"{shares[env_key, lag].mean():.2f}", f"{diff.mean():+.2f} ± {half:.2f}"]
        print(f"| {env_key} | " + " | ".join(cells) + " |")
    print(f"\nWall time: {(time.perf_counter() - started) / 60:.1f} min on {args.workers} workers.")


if __name__ == "__main__":
    main()
