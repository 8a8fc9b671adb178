"""`make bench`: every policy over E1-E7, a markdown table and cumulative-regret plots in reports/bench/.

    python -m bench.run [--seeds 100] [--mab-seeds 30] [--slate-seeds 20] [--envs E1,E2] [--publish]
                        [--half-life CLICKS] [--lag-clicks N] [--runs-dir DIR]

Project policies run as the service runs them by default (SamplerParams(), exploration floor
included); the default sampler's statistics forget with BENCH_HALF_LIFE (see bench/README.md).
MABWiser peers run on E1-E6 only (E8-E10 need candidate sets per click or given payouts).

--publish also copies the table and the E1 plot into bench/results/ (committed, shown by the README).
--runs-dir keeps each finished (environment, policy) run there and reuses it when the same command
runs again (same seeds, half-life, lag and policy parameters): an interrupted run resumes, and the
other policies need not be rerun while the default changes. Empty the directory when a policy's
code or default parameters change.
"""

import argparse
import json
import multiprocessing
import os
import pathlib
import pickle
import shutil
import time
import zlib

import numpy as np

from bench.intervals import ci95
from shared.cpa import drift as restarts
from shared.cpa.policies.types import OPTIMISTIC_PAYOUT_MULTIPLE, UNSEEN_PAYOUT_SPREAD

ROOT = pathlib.Path(__file__).resolve().parent.parent
REPORT = ROOT / "reports" / "bench"
PUBLISHED = ROOT / "bench" / "results"

# Discounting (policies.discounted) the benchmark applies per policy, half-life in clicks: the
# configuration the default is proposed with (None: cumulative counters, as the store keeps today).
HALF_LIVES: dict[str, float | None] = {}
# The store's restarts on a detected market change (shared/cpa/drift.py), for the samplers that
# decide on them (the registry's `forgets`), with the benchmark's clock at one click a second (a
# half-life of 1,800 s is 1,800 clicks). DRIFT is the service's default (None: restarts off);
# RESTARTS the setting they were measured with, which a variant turns on with "drift".
DRIFT = restarts.SERVICE_DEFAULT
RESTARTS = restarts.MEASURED

# name -> (label, kind); kind "project" runs shared.cpa.policies' batched core, "mabwiser" bench.peers
POLICIES = {
    "thompson": ("thompson (project)", "project"),
    "klucb": ("klucb (project)", "project"),
    "greedy": ("course greedy, 100 warm-up (project `greedy`)", "project"),
    "epsilon": ("course eps-greedy 0.1 (project `epsilon`)", "project"),
    "ucb": ("course UCB1 (project `ucb`)", "project"),
    "mabwiser-ts": ("MABWiser ThompsonSampling", "mabwiser"),
    "mabwiser-ucb1": ("MABWiser UCB1", "mabwiser"),
    "mabwiser-eps": ("MABWiser EpsilonGreedy 0.1", "mabwiser"),
}
# Variants of a project sampler, run only when named in --policies: name -> (label, sampler, the
# SamplerParams fields that differ from the default's). Used to compare the default's options.
# Plain Thompson: the default from issue 26 until re-tries (no optimism of any kind, no re-tries);
# the variants below that add one kind of optimism start from it, so they stay what they were when
# measured.
PLAIN = {
    "samples": 1,
    "optimistic": False,
    "optimistic_payout": False,
    "unseen_payout_spread": None,
    "optimistic_payout_multiple": None,
    "retry_level": None,
}
# The default before issue 26: optimistic payouts, unseen payouts priced by the offers' spread, and
# optimism for the offers paying over 4x the median (shared/cpa/policies/types.py); no re-tries.
PAYOUT_OPTIMISM = {
    "optimistic_payout": True,
    "unseen_payout_spread": UNSEEN_PAYOUT_SPREAD,
    "optimistic_payout_multiple": OPTIMISTIC_PAYOUT_MULTIPLE,
    "retry_level": None,
}
VARIANTS = {
    "thompson-plain": ("thompson, plain (the default before re-tries)", "thompson", PLAIN),
    "thompson-payout-opt": (
        "thompson with payout optimism (the default before issue 26)",
        "thompson",
        PAYOUT_OPTIMISM,
    ),
    "thompson-previous": (
        "thompson, optimistic payouts, unseen payouts at a fixed prior spread (an earlier default)",
        "thompson",
        {"optimistic_payout": True, "retry_level": None},
    ),
    "thompson-drift": (
        "thompson with restarts on a detected market change (the default before issue 26)",
        "thompson",
        {"drift": RESTARTS, "retry_level": None},
    ),
    "thompson-no-rare-opt": (
        "thompson with payout optimism but not above 4x the median payout (an earlier default)",
        "thompson",
        {**PAYOUT_OPTIMISM, "optimistic_payout_multiple": None},
    ),
    "thompson-opt": ("thompson, optimistic (reflected draw)", "thompson", {**PLAIN, "optimistic": True}),
    "thompson-s2": ("thompson, largest of 2 draws", "thompson", {**PLAIN, "samples": 2}),
    "thompson-opt-s2": (
        "thompson, optimistic, largest of 2 draws",
        "thompson",
        {**PLAIN, "optimistic": True, "samples": 2},
    ),
}
DEFAULT_POLICIES = list(POLICIES)
POLICIES.update({name: (label, "project") for name, (label, _, _) in VARIANTS.items()})


def project_params(policy: str):
    """(sampler, SamplerParams, DriftParams or None) a project policy of the benchmark runs with."""
    from dataclasses import replace

    from shared.cpa.policies import SAMPLERS, SamplerParams

    sampler, changes = VARIANTS[policy][1:] if policy in VARIANTS else (policy, {})
    changes = dict(changes)
    drift = changes.pop("drift", DRIFT)
    drift_params = drift if SAMPLERS[sampler].forgets else None
    return sampler, replace(SamplerParams(), **changes), drift_params


def _run_key(task) -> str:
    """The file name of a task's kept run: everything that decides its result but the code."""
    env_key, policy, seeds, mab_seeds, half_life, lag_clicks = task
    if POLICIES[policy][1] == "project":
        sampler, params, drift_params = project_params(policy)
        detail = f"{seeds}-{half_life}-{lag_clicks}-{zlib.crc32(repr((sampler, params)).encode()):08x}"
        if drift_params is not None:
            detail += f"-drift{drift_params.half_life:g}-{drift_params.threshold:g}"
    else:
        detail = f"{mab_seeds}"
    return f"{env_key}_{policy}_{detail}.pkl"


def _task(args):
    *args, runs_dir = args
    if runs_dir:
        kept = pathlib.Path(runs_dir) / _run_key(args)
        if kept.exists():
            return pickle.loads(kept.read_bytes())
    env_key, policy, seeds, mab_seeds, half_life, lag_clicks = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from bench.envs import ENVS
    from bench.harness import World, run_project_policy
    from bench.peers import run_peer

    world = World(ENVS[env_key], np.arange(seeds))
    if POLICIES[policy][1] == "project":
        sampler, params, drift_params = project_params(policy)
        run = run_project_policy(
            world, sampler, params, half_life=half_life, lag_clicks=lag_clicks, drift_params=drift_params
        )
    else:
        run = run_peer(world, policy, seeds=mab_seeds)
    if runs_dir:
        kept.write_bytes(pickle.dumps((env_key, policy, run)))
    return env_key, policy, run


def _slate_task(args):
    seed, n = args
    from bench.slates import simulate

    started = time.perf_counter()
    accepted = simulate(seed, n)
    return seed, {k: v.astype(float) for k, v in accepted.items()}, time.perf_counter() - started


def summarise(runs: dict, default: str) -> dict:
    """Per environment and policy: regret statistics, oracle share, paired difference to default."""
    from bench.envs import CANONICAL_RATES, ENVS, lai_robbins_constant

    out = {}
    for env_key, by_policy in runs.items():
        env = ENVS[env_key]
        base = by_policy.get(default)
        rows = {}
        for policy, run in by_policy.items():
            final = run.final
            row = {
                "seeds": len(final),
                "mean": float(final.mean()),
                "ci": ci95(final),
                "median": float(np.median(final)),
                "p90": float(np.percentile(final, 90)),
                "p99": float(np.percentile(final, 99)),
                "oracle_share": float(100 * run.oracle_share.mean()),
                "seconds": run.seconds,
            }
            if base is not None and policy != default:
                diff = final - base.final[: len(final)]  # paired: same seeds, same draws
                row["paired_diff"], row["paired_ci"] = float(diff.mean()), ci95(diff)
            if env_key == "E2":
                c = lai_robbins_constant(CANONICAL_RATES)
                half = np.searchsorted(run.steps, env.horizon // 2)
                slope = (run.regret[:, -1] - run.regret[:, half]) / np.log(env.horizon / run.steps[half])
                row["slope_over_c"] = float(slope.mean() / c)
                row["slope_over_c_ci"] = ci95(slope) / c
            rows[policy] = row
        out[env_key] = rows
    return out


def markdown(summary: dict, slates: dict | None, default: str, mab_seeds: int) -> str:
    from bench.envs import CANONICAL_RATES, ENVS, lai_robbins_constant

    lines = []
    for env_key, rows in summary.items():
        env = ENVS[env_key]
        lines += [f"### {env_key} {env.title}: {env.detail}; T = {env.horizon:,}; regret in {env.unit}", ""]
        head = (
            "| policy | seeds | regret mean ± 95 % CI | median | p90 | p99 | % of oracle revenue "
            "| paired regret − default's (95 % CI) |"
        )
        if env_key == "E2":
            c = lai_robbins_constant(CANONICAL_RATES)
            lines.insert(
                len(lines) - 1,
                f"Lai–Robbins C = {c:.2f}, C·ln T = {c * np.log(env.horizon):.1f}; slope = (R(T) − R(T/2)) / ln 2.",
            )
            lines.insert(len(lines) - 1, "")
            head = head + " slope / C |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        order = sorted(rows, key=lambda p: rows[p]["mean"])
        for policy in order:
            r = rows[policy]
            label = POLICIES[policy][0] + (" **default**" if policy == default else "")
            paired = "—" if "paired_diff" not in r else f"{r['paired_diff']:+,.1f} ± {r['paired_ci']:,.1f}"
            cells = [
                label,
                str(r["seeds"]),
                f"{r['mean']:,.1f} ± {r['ci']:,.1f}",
                f"{r['median']:,.0f}",
                f"{r['p90']:,.0f}",
                f"{r['p99']:,.0f}",
                f"{r['oracle_share']:.1f}",
                paired,
            ]
            if env_key == "E2":
                cells.append(f"{r['slope_over_c']:.2f} ± {r['slope_over_c_ci']:.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if slates:
        lines += [
            f"### E7 contextual top-3 (Company A): {slates['seeds']} seeds × {slates['n']:,} customers; "
            "acceptance rate",
            "",
            "| agent | all rewards | last 5,000 | × static (last 5,000) | % of oracle (last 5,000) |",
            "|---|---|---|---|---|",
        ]
        for name in ("oracle", "learning", "static"):
            s = slates[name]
            lines.append(
                f"| {name} | {100 * s['all']:.2f} % | {100 * s['last']:.2f} % | "
                f"{s['last'] / slates['static']['last']:.3f} | {100 * s['last'] / slates['oracle']['last']:.1f} |"
            )
        lines.append("")
    lines += [
        f"Paired column: the policy's regret minus the default's on the same seeds and draws (positive: the default "
        f"lost less). MABWiser peers ran {mab_seeds} seeds (see bench/peers.py); their difference uses those seeds."
    ]
    return "\n".join(lines) + "\n"


def plot(runs: dict, summary: dict, folder: pathlib.Path, default: str) -> list[pathlib.Path]:
    from bench import plots
    from bench.envs import ENVS

    paths = []
    for env_key, by_policy in runs.items():
        env = ENVS[env_key]
        fig, ax = plots.subplots(figsize=(8, 5))
        for policy, run in sorted(by_policy.items(), key=lambda kv: -kv[1].final.mean()):
            mean = run.regret.mean(axis=0)
            half = 1.96 * run.regret.std(axis=0, ddof=1) / np.sqrt(len(run.regret))
            width = 2.6 if policy == default else 1.3
            (line,) = ax.plot(
                run.steps,
                mean,
                lw=width,
                label=f"{POLICIES[policy][0]} ({summary[env_key][policy]['oracle_share']:.1f} % of oracle)",
            )
            ax.fill_between(run.steps, mean - half, mean + half, color=line.get_color(), alpha=0.15)
        title = f"{env_key} {env.title}: cumulative regret, mean ± 95 % CI"
        path = folder / f"regret_{env_key}.png"
        paths.append(
            plots.save(fig, ax, path, title, "clicks", f"pseudo-regret ({env.unit})", fontsize=7, loc="upper left")
        )
    return paths


def main() -> None:
    from shared.cpa.policies import DEFAULT_SAMPLER

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--mab-seeds", type=int, default=30)
    parser.add_argument("--slate-seeds", type=int, default=20)
    parser.add_argument("--slate-customers", type=int, default=50_000)
    parser.add_argument("--envs", default="E1,E2,E3,E4,E5,E6,E8,E9,E10,E7")
    parser.add_argument("--half-life", type=float, default=None, help="clicks; default: per policy (HALF_LIVES)")
    parser.add_argument("--lag-clicks", type=int, default=0, help="statistics refreshed every N clicks")
    parser.add_argument("--policies", default=",".join(DEFAULT_POLICIES), help="also: " + ", ".join(VARIANTS))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--publish", action="store_true")
    parser.add_argument("--runs-dir", default=None, help="keep finished runs here and reuse them")
    parser.add_argument("--kept-only", action="store_true", help="with --runs-dir: tabulate the kept runs, run nothing")
    args = parser.parse_args()

    started = time.perf_counter()
    REPORT.mkdir(parents=True, exist_ok=True)
    if args.runs_dir:
        pathlib.Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    envs = [e for e in args.envs.split(",") if e != "E7"]
    policies = args.policies.split(",")
    from bench.envs import ENVS

    def runs_on(env_key, policy):
        env = ENVS[env_key]
        return POLICIES[policy][1] == "project" or not (env.shown or env.joins or env.payouts_known)

    tasks = [
        (e, p, args.seeds, args.mab_seeds, args.half_life or HALF_LIVES.get(p), args.lag_clicks, args.runs_dir)
        for e in envs
        for p in policies
        if runs_on(e, p)
    ]
    if args.kept_only:
        missing = [t for t in tasks if not (pathlib.Path(args.runs_dir) / _run_key(t[:-1])).exists()]
        print("not kept, left out:", ", ".join(f"{t[0]} {t[1]}" for t in missing) or "none", flush=True)
        tasks = [t for t in tasks if t not in missing]
        left_out = ", ".join(f"{t[0]} {t[1]}" for t in missing) or "none"
    # longest first, so the two workers finish together
    weight = {"E3": 4, "E6": 1.5, "E2": 0.2, "E8": 1.5, "E9": 1.2}
    cost = {"klucb": 3, "thompson": 2, "mabwiser-ts": 1.5}
    tasks.sort(key=lambda t: -weight.get(t[0], 1) * cost.get(t[1], 1))
    slate_tasks = [(seed, args.slate_customers) for seed in range(args.slate_seeds)] if "E7" in args.envs else []
    runs: dict = {e: {} for e in envs}
    slate_runs = []
    # spawn, not fork: a forked worker inherits locks held by the parent's threads (BLAS, MABWiser's
    # joblib) and once hung forever on E3 x MABWiser TS.
    with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        slate_results = pool.imap_unordered(_slate_task, slate_tasks) if slate_tasks else []
        for env_key, policy, run in pool.imap_unordered(_task, tasks):
            runs[env_key][policy] = run
            print(
                f"{env_key} {policy:14s} regret {run.final.mean():12,.1f}  "
                f"{100 * run.oracle_share.mean():5.1f} % of oracle"
                f"  ({len(run.final)} seeds, {run.seconds:.0f} s)",
                flush=True,
            )
        for seed, accepted, seconds in slate_results:
            slate_runs.append(accepted)
            print(
                f"E7 seed {seed}: "
                + ", ".join(f"{k} {v.mean():.3f}" for k, v in accepted.items())
                + f" ({seconds:.0f} s)",
                flush=True,
            )
    runs = {e: {p: runs[e][p] for p in policies if p in runs[e]} for e in envs if runs[e]}

    summary = summarise(runs, DEFAULT_SAMPLER)
    slates = None
    if slate_runs:
        slates = {"seeds": len(slate_runs), "n": args.slate_customers}
        for name in slate_runs[0]:
            stacked = np.array([r[name] for r in slate_runs])
            slates[name] = {
                "all": float(stacked.mean()),
                "last": float(stacked[:, -5000:].mean()),
                "curve": stacked.reshape(len(slate_runs), -1, 1000).mean(axis=(0, 2)).tolist(),
            }
    table = markdown(summary, slates, DEFAULT_SAMPLER, args.mab_seeds)
    elapsed = time.perf_counter() - started
    table += f"\nDefault sampler: `{DEFAULT_SAMPLER}`. "
    if args.kept_only:
        table += f"Tabulated from the runs kept in {args.runs_dir} (--kept-only); not run, left out: {left_out}.\n"
    else:
        table += f"Wall time of this run: {elapsed / 60:.1f} min on {args.workers} workers.\n"
    (REPORT / "results.md").write_text(table)
    (REPORT / "results.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "slates": slates,
                "seconds": elapsed,
                "seeds": args.seeds,
                "lag_clicks": args.lag_clicks,
                # per seed % of oracle revenue of project policies (bench/lag.py pairs with them)
                "oracle_share": {
                    e: {p: (100 * r.oracle_share).tolist() for p, r in by.items() if POLICIES[p][1] == "project"}
                    for e, by in runs.items()
                },
            },
            indent=1,
        )
    )
    paths = plot(runs, summary, REPORT, DEFAULT_SAMPLER)
    if slates:
        paths.append(plot_slates(slates, REPORT))
    print(table)
    print(f"wrote {REPORT / 'results.md'} and {len(paths)} plots in {elapsed / 60:.1f} min")
    if args.publish:
        PUBLISHED.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPORT / "results.md", PUBLISHED / "results.md")
        if (REPORT / "regret_E1.png").exists():
            shutil.copy(REPORT / "regret_E1.png", PUBLISHED / "regret_E1.png")


def plot_slates(slates: dict, folder: pathlib.Path) -> pathlib.Path:
    from bench import plots

    fig, ax = plots.subplots(figsize=(8, 4.5))
    for name in ("oracle", "learning", "static"):
        curve = np.array(slates[name]["curve"])
        ax.plot((np.arange(len(curve)) + 1) * 1000, 100 * curve, label=name)
    ax.set_title("E7 Company A top-3: acceptance rate per 1,000 customers")
    ax.set_xlabel("rewards")
    ax.set_ylabel("accepted (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = folder / "acceptance_E7.png"
    fig.savefig(path, dpi=110)
    plots.close(fig)
    return path


if __name__ == "__main__":
    main()
