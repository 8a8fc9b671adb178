"""A generated family of click-context environments, to choose the default sampler for clicks that
carry a context on environments no setting was tuned on (issue 24: `contextual` becomes the default
only where the benchmark shows it no worse than today's).

    python -m bench.context_family [--split test] [--envs 40] [--seeds 20] [--workers 2]

Environment i (`environment`) is bench/context_envs.py's `ContextEnv` with its parameters drawn from
a generator seeded (FAMILY_SALT, i), fixed before any policy ran on the family:
- k offers: 10, 20 or 30 (E1's CPA-10 offers repeated), base rates x exp(jitter Z), jitter 0.3 or 0.6;
- with probability UNINFORMATIVE_SHARE no effect at all (context that says nothing), else the sd of
  the country, device and source effects on ln(rate) each one of 0, 0.1, 0.2, 0.3 and 0.5;
- countries 10, 30 or 100 (Zipf 1.1), sources 20, 200 or 1,000 (Zipf 1), a share of the sources
  (0, 0.25 or 0.5) first seen half-way;
- HORIZON clicks (shorter than `contextual`'s 200,000, for time: the context has less time to pay).

The split is written here and nowhere else: odd i are the test environments, even i are kept for
tuning the contextual sampler later. A default is chosen on the test split only.

Both policies run on every environment's paired seeds (the same contexts and conversions), through
bench.context_bench.run; finished runs are kept in --runs-dir and reused when the code is the same.
Printed: per environment, the revenue of `thompson` (today's default) and `contextual` as % of the
contextual oracle and their paired difference; then the mean of the environments' differences,
the informative and the uninformative ones apart, with 95 % intervals over environments.
"""

import argparse
import multiprocessing
import pathlib
import time

import numpy as np

from bench.context_bench import REPORT, kept_run, run
from bench.context_envs import ContextEnv
from bench.intervals import ci95

FAMILY_SALT = 5000
HORIZON = 50_000
UNINFORMATIVE_SHARE = 0.25
POLICIES = ("thompson", "contextual")


def environment(index: int) -> ContextEnv:
    """The family's environment `index` (the draws, in this order, define it)."""
    rng = np.random.default_rng([FAMILY_SALT, index])
    k = int(rng.choice([10, 20, 30]))
    if rng.random() < UNINFORMATIVE_SHARE:
        sigmas = (0.0, 0.0, 0.0)
    else:
        sigmas = tuple(float(rng.choice([0.0, 0.1, 0.2, 0.3, 0.5])) for _ in range(3))
    countries = int(rng.choice([10, 30, 100]))
    sources = int(rng.choice([20, 200, 1000]))
    late_share = float(rng.choice([0.0, 0.25, 0.5]))
    jitter = float(rng.choice([0.3, 0.6]))
    detail = (
        f"K = {k}, effect sd {sigmas[0]:g} / {sigmas[1]:g} / {sigmas[2]:g}, {countries} countries, "
        f"{sources} sources ({late_share:.0%} new half-way), jitter {jitter:g}"
    )
    key = f"C{index}"
    number = FAMILY_SALT + index
    return ContextEnv(key, number, key, HORIZON, k, sigmas, countries, sources, late_share, jitter, detail=detail)


def split(index: int) -> str:
    return "test" if index % 2 else "train"


def _task(args) -> dict:
    index, policy, seeds, runs_dir = args
    return kept_run(
        runs_dir, f"C{index}_{policy}_{seeds}", lambda: run(environment(index), policy, seeds) | {"index": index}
    )


def table(results: dict[int, dict]) -> str:
    """Per environment and pooled over environments: contextual − thompson, points of the oracle."""
    lines = [
        "| env | parameters | thompson % | contextual % | contextual − thompson (95 % CI over seeds) |",
        "|---|---|---|---|---|",
    ]
    differences = {"informative": [], "uninformative": []}
    for index, by_policy in sorted(results.items()):
        env = environment(index)
        shares = {p: 100 * r["revenue"] / r["optimum"] for p, r in by_policy.items()}
        diff = shares["contextual"] - shares["thompson"]
        differences["informative" if any(env.sigmas) else "uninformative"].append(diff.mean())
        lines.append(
            f"| {env.key} | {env.detail} | {shares['thompson'].mean():.2f} | {shares['contextual'].mean():.2f} "
            f"| {diff.mean():+.2f} ± {ci95(diff):.2f} |"
        )
    lines += ["", "| environments | count | mean of contextual − thompson (95 % CI over environments) | worst |"]
    lines.append("|---|---|---|---|")
    for kind, found in differences.items():
        if found:
            lines.append(f"| {kind} | {len(found)} | {np.mean(found):+.2f} ± {ci95(found):.2f} | {min(found):+.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--envs", type=int, default=40, help="environments generated (both splits)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs-dir", default=str(REPORT / "context-family-runs"))
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated; the table needs both")
    args = parser.parse_args()
    started = time.perf_counter()
    pathlib.Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    indices = [i for i in range(args.envs) if split(i) == args.split]
    policies = args.policies.split(",")
    tasks = [(i, p, args.seeds, args.runs_dir) for i in indices for p in policies]
    results: dict[int, dict] = {i: {} for i in indices}
    with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        for found in pool.imap_unordered(_task, tasks):
            results[found["index"]][found["sampler"]] = found
            share = 100 * np.mean(found["revenue"] / found["optimum"])
            print(f"C{found['index']} {found['sampler']}: {share:.2f} % ({found['seconds']:.0f} s)", flush=True)
    minutes = (time.perf_counter() - started) / 60
    if set(policies) != set(POLICIES):
        return
    footer = f"{args.split} split, {args.seeds} seeds, T = {HORIZON:,}; wall time {minutes:.1f} min."
    text = f"{table(results)}\n\n{footer}\n"
    REPORT.mkdir(parents=True, exist_ok=True)
    (REPORT / f"context_family_{args.split}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
