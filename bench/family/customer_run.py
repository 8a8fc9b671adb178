"""The customer part of `python -m bench.family.run --parts customer`: every agent over the customer
worlds of the split, kept per world in reports/family/customer-runs/ (keyed on CUSTOMER_VERSION and
the agents' versions), tabulated per class and overall with paired intervals.
"""

import multiprocessing
import pathlib
import pickle
import time
import zlib

import numpy as np

from bench.family import customer_envs, split
from bench.family.report import _mean_ci, _table, target_line
from shared.customer import agents

CUSTOMER_VERSION = 1  # bump when customer_envs or customer_runner change what a run measures
ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
RUNS = ROOT / "reports" / "family" / "customer-runs"
SAMPLE_PER_CLASS = 2


def _tag() -> str:
    from bench.family.customer_runner import AGENTS

    detail = repr((CUSTOMER_VERSION, [(a, agents.version_of(a)) for a in AGENTS]))
    return f"{zlib.crc32(detail.encode()):08x}"


def kept_path(key: tuple) -> pathlib.Path:
    return RUNS / _tag() / f"{key[0]}-{key[1]}.pkl"


def worlds(which: str, per_class: int | None = None, sample: bool = False) -> list:
    chosen = []
    for cls in split.classes("customer"):
        seeds = split.seeds_of(which, "customer", cls)
        if sample:
            seeds = sorted(seeds, key=lambda s: np.prod(customer_envs.sizes(cls, s)))[:SAMPLE_PER_CLASS]
        elif per_class is not None:
            seeds = seeds[:per_class]
        chosen += [(cls, s) for s in seeds]
    return chosen


def _task(key):
    from bench.family.customer_runner import simulate

    started = time.perf_counter()
    run = simulate(customer_envs.draw(*key))
    path = kept_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(run))
    return key, time.perf_counter() - started


def run_missing(keys: list, workers: int) -> None:
    missing = [k for k in keys if not kept_path(k).exists()]
    if not missing:
        return
    print(f"{len(missing)} customer worlds to run", flush=True)
    from bench.family.workers import single_threaded

    single_threaded()
    with multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=20) as pool:
        for key, seconds in pool.imap_unordered(_task, missing):
            print(f"customer {key[0]}-{key[1]}: {seconds:.0f} s", flush=True)


def section(args, out: pathlib.Path) -> str:
    keys = worlds(args.split, args.per_class, args.sample)
    if not args.tabulate_only:
        run_missing(keys, args.workers)
    kept = [kept_path(k) for k in keys if kept_path(k).exists()]
    if not kept:
        return "## customer: no kept runs\n"
    runs = [pickle.loads(p.read_bytes()) for p in kept]
    return tables(runs, out)


def _label(name: str) -> str:
    return name + (" **default**" if name == agents.DEFAULT_AGENT else "")


def tables(runs: list, out: pathlib.Path) -> str:
    from bench.family.customer_runner import AGENTS

    classes = list(dict.fromkeys(r.cls for r in runs))
    members = {cls: np.array([r.cls == cls for r in runs]) for cls in classes}
    members["overall"] = np.ones(len(runs), dtype=bool)
    groups = [*classes, "overall"]
    lost = {name: np.array([r.lost_points(name) for r in runs]) for name in AGENTS}
    counts = ", ".join(f"{cls} {members[cls].sum()}" for cls in classes)
    lines = [
        f"## customer agents: {len(runs)} worlds ({counts}), {sum(r.customers for r in runs):,} customers",
        "",
        "% of the oracle slate's expected acceptances, mean ± 95 % CI over worlds:",
        "",
    ]
    lines += _table(groups, AGENTS, lambda n, g: _mean_ci(100.0 - lost[n][members[g]]), _label, "agent")
    default = agents.DEFAULT_AGENT
    lines += [
        f"Paired: `{default}` − agent, points of the oracle's acceptances (positive: the default did better):",
        "",
    ]
    others = [n for n in AGENTS if n != default]
    lines += _table(groups, others, lambda n, g: _mean_ci((lost[n] - lost[default])[members[g]], "+"), _label, "agent")
    lines += target_line(lost, default, others, members, classes, "customer agent")
    unseen = [r for r in runs if not np.isnan(r.unseen["oracle"])]
    if unseen:
        lines += [
            f"Customers of a segment never seen before ({len(unseen)} contextual worlds): expected acceptance, "
            "% of the oracle slate's:",
            "",
            "| " + " | ".join(AGENTS) + " |",
            "|" + "---|" * len(AGENTS),
            "| "
            + " | ".join(_mean_ci(np.array([100 * r.unseen[n] / r.unseen["oracle"] for r in unseen])) for n in AGENTS)
            + " |",
            "",
        ]
    path = plot(runs, classes, out / "regret_customer.png")
    lines += [f"![customer agents: mean regret against customers per class]({path.name})", ""]
    return "\n".join(lines)


def plot(runs: list, classes: list[str], path: pathlib.Path) -> pathlib.Path:
    from bench import plots
    from bench.family.customer_runner import AGENTS, GRID

    fig, axes = plots.subplots(1, len(classes), figsize=(4.2 * len(classes), 4.2), squeeze=False)
    for ax, cls in zip(axes[0], classes, strict=True):
        chosen = [r for r in runs if r.cls == cls]
        for name in AGENTS:
            share = np.full((len(chosen), len(GRID)), np.nan)
            for j, run in enumerate(chosen):
                at = np.searchsorted(GRID, run.clicks)
                ok = (at < len(GRID)) & (GRID[np.minimum(at, len(GRID) - 1)] == run.clicks)
                share[j, at[ok]] = 100.0 * run.regret[name][ok] / run.oracle[ok]
            reached = (~np.isnan(share)).sum(axis=0)
            mean = np.where(reached > 0, np.nansum(share, axis=0) / np.maximum(reached, 1), np.nan)
            ax.plot(GRID, mean, lw=2.4 if name == agents.DEFAULT_AGENT else 1.2, label=name)
        ax.set_xscale("log")
        ax.set_title(f"{cls} ({len(chosen)} worlds)", fontsize=10)
        ax.set_xlabel("customers")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("regret so far, % of the oracle's acceptances")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Customer agents: mean regret against customers per class (worlds that reach each count)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plots.close(fig)
    return path
