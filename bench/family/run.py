"""`make bench-family`: the project's samplers over the generated family's test split, tables per class
and plots, in reports/family/ (--publish copies them to bench/results/family/).

    python -m bench.family.run [--split test|train|test-extra|test+extra] [--per-class N] [--sample]
                               [--policies thompson,klucb,...] [--parts cpa,lock_on,customer] [--workers 1]
                               [--publish] [--tabulate-only]

Every finished (policy, environment) run is kept in reports/family/runs/ and reused, so an interrupted
run resumes and a new variant runs alone (its key holds its parameters and RUNNER_VERSION).
--sample: the fixed small sample `make bench` runs (per class the 2 test environments cheapest to run).
Reading training seeds here is allowed for looking; tuning goes through bench.family.tune.
"""

import argparse
import multiprocessing
import os
import pathlib
import pickle
import shutil
import time

from bench.family import cpa_envs, policies, split
from bench.family.workers import single_threaded

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
REPORT = ROOT / "reports" / "family"
RUNS = REPORT / "runs"
PUBLISHED = ROOT / "bench" / "results" / "family"
MAX_ROWS = 64  # environments per lockstep batch
K_BANDS = (10, 30, 70, 200)  # environments of a batch have K within one band
SAMPLE_PER_CLASS = 2


def environments(
    part: str, which: str, per_class: int | None = None, sample: bool = False, classes: list | None = None
) -> list:
    """(class, seed) of a part of the split ("cpa", "lock_on"), `which` one of split.WHICH."""
    chosen = []
    for cls in classes or split.classes(part):
        seeds = split.seeds_of(which, part, cls)
        if sample:
            seeds = sorted(seeds, key=lambda s: _cost(cpa_envs.draw(cls, s)))[:SAMPLE_PER_CLASS]
        elif per_class is not None:
            seeds = seeds[:per_class]
        chosen += [(cls, s) for s in seeds]
    return chosen


def _cost(env) -> float:
    from bench.family.cpa_runner import block_of

    return env.horizon // block_of(env.horizon) * (1.0 + env.k / 50.0)


def batches(keys: list) -> list[list]:
    """Lockstep batches of environments: bands of K (a batch is padded to its largest K), and within a
    band environments of similar cost together, at most MAX_ROWS a batch."""
    envs = [cpa_envs.draw(cls, seed) for cls, seed in keys]
    groups: dict = {}
    for key, env in zip(keys, envs, strict=True):
        band = next(i for i, edge in enumerate(K_BANDS) if env.k <= edge)
        groups.setdefault(band, []).append((key, _cost(env)))
    out = []
    for members in groups.values():
        members.sort(key=lambda m: -m[1])
        out += [[key for key, _ in members[i : i + MAX_ROWS]] for i in range(0, len(members), MAX_ROWS)]
    return out


def kept_path(policy: policies.Policy, key: tuple) -> pathlib.Path:
    return RUNS / policy.key / f"{key[0]}-{key[1]}.pkl"


def _task(args):
    name, keys = args
    from bench.family.cpa_runner import run_batch

    policy = policies.get(name)
    started = time.perf_counter()
    envs = [cpa_envs.draw(cls, seed) for cls, seed in keys]
    runs = run_batch(envs, policy.sampler, policy.params, policy.drift, discounted=policy.discounted)
    for key, run in zip(keys, runs, strict=True):
        path = kept_path(policy, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(run))
    return name, len(keys), time.perf_counter() - started


def run_missing(names: list[str], keys: list, workers: int) -> None:
    tasks = []
    for name in names:
        policy = policies.get(name)
        missing = [key for key in keys if not kept_path(policy, key).exists()]
        tasks += [(name, batch) for batch in batches(missing)]
    if not tasks:
        return
    print(f"{len(tasks)} batches to run", flush=True)
    single_threaded()
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, maxtasksperchild=1) as pool:
        for name, size, seconds in pool.imap_unordered(_task, tasks):
            print(f"{name}: {size} environments in {seconds:.0f} s", flush=True)


def load(names: list[str], keys: list) -> dict:
    """policy -> list of EnvRun in the order of `keys` (policies with a missing run are left out)."""
    out = {}
    for name in names:
        paths = [kept_path(policies.get(name), key) for key in keys]
        if all(p.exists() for p in paths):
            out[name] = [pickle.loads(p.read_bytes()) for p in paths]
        else:
            print(f"{name}: {sum(not p.exists() for p in paths)} of {len(paths)} runs missing, left out")
    return out


def main() -> None:
    from bench.family import report

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", default="test", choices=split.WHICH)
    parser.add_argument("--per-class", type=int, default=None)
    parser.add_argument("--sample", action="store_true")
    parser.add_argument("--policies", default=",".join(policies.POLICIES))
    parser.add_argument("--parts", default="cpa,lock_on")
    parser.add_argument("--classes", default=None, help="only these classes (e.g. drifting)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--publish", action="store_true")
    parser.add_argument("--tabulate-only", action="store_true", help="tabulate the kept runs, run nothing")
    parser.add_argument(
        "--kept-only", action="store_true", help="with --tabulate-only: only the environments every policy has run"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    names = args.policies.split(",")
    parts = args.parts.split(",")
    out = REPORT / ("sample" if args.sample else args.split)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.family.run " + " ".join(
        a for a in os.sys.argv[1:] if a not in ("--publish", "--tabulate-only")
    )
    sections = []
    for part in parts:
        if part == "customer":
            from bench.family import customer_run

            sections.append(customer_run.section(args, out))
            continue
        classes = [c for c in args.classes.split(",") if c in split.classes(part)] if args.classes else None
        keys = environments(part, args.split, args.per_class, args.sample, classes)
        if not args.tabulate_only:
            run_missing(names, keys, args.workers)
        elif args.kept_only:
            every = len(keys)
            keys = [key for key in keys if all(kept_path(policies.get(n), key).exists() for n in names)]
            sections.append(f"**{part}: the kept runs only, {len(keys)} of the split's {every} environments.**\n")
            if not keys:
                continue
        runs = load(names, keys)
        if runs:
            sections.append(report.cpa_section(part, runs, out))
    text = report.header(command.strip(), time.perf_counter() - started) + "\n".join(sections)
    (out / "results.md").write_text(text)
    print(text)
    if args.publish:
        target = PUBLISHED / ("sample" if args.sample else "")
        target.mkdir(parents=True, exist_ok=True)
        for path in out.glob("*"):
            if path.suffix in (".md", ".png"):
                shutil.copy(path, target / path.name)
        print(f"published to {target}")


if __name__ == "__main__":
    main()
