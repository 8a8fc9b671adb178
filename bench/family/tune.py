"""Tuning on the family's training seeds only: runs policies (samplers, variants) over training
environments and tabulates them as the report does. It refuses any seed that is not a training seed.

    python -m bench.family.tune --policies thompson,klucb,VARIANT [--per-class N] [--parts cpa,lock_on]
                                [--seeds cpa/close:123,cpa/drifting:456] [--workers 1] [--out NAME]

Whatever picks a default or a parameter (bench/family/policies.py's VARIANTS, a drift threshold, the
customer agent) is chosen from what this prints; the test split (`bench.family.run`) only reports.
"""

import argparse
import pathlib
import sys
import time

from bench.family import policies, report, run, split


def training_keys(part: str, per_class: int | None, seeds: str | None, classes=None) -> list[tuple[str, int]]:
    """(class, seed) of training environments: the first `per_class` of each class, or the named ones
    ("part/class:seed,..."), each checked by split.require_training."""
    if seeds:
        keys = []
        for item in seeds.split(","):
            where, seed = item.rsplit(":", 1)
            named_part, cls = where.split("/")
            if named_part == part:
                split.require_training(part, cls, [int(seed)])
                keys.append((cls, int(seed)))
        return keys
    keys = []
    for cls in classes or split.classes(part):
        chosen = split.training_seeds(part, cls)[:per_class]
        keys += [(cls, s) for s in split.require_training(part, cls, chosen)]
    return keys


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", default=",".join(policies.SAMPLERS))
    parser.add_argument("--per-class", type=int, default=None)
    parser.add_argument("--seeds", default=None, help="part/class:seed,... (training seeds only)")
    parser.add_argument("--parts", default="cpa")
    parser.add_argument("--classes", default=None, help="only these classes")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="tune")
    parser.add_argument("--tabulate-only", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    names = args.policies.split(",")
    out = run.REPORT / "tune"
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    try:
        only = args.classes.split(",") if args.classes else None
        parts = {}
        for part in args.parts.split(","):
            classes = [c for c in only if c in split.classes(part)] if only else None
            parts[part] = training_keys(part, args.per_class, args.seeds, classes)
    except split.TestSeedError as refused:
        sys.exit(f"refused: {refused}")
    for part, keys in parts.items():
        if part == "customer":
            from bench.family import customer_run

            if not args.tabulate_only:
                customer_run.run_missing(keys, args.workers)
            kept = [customer_run.kept_path(k) for k in keys if customer_run.kept_path(k).exists()]
            import pickle

            sections.append(customer_run.tables([pickle.loads(p.read_bytes()) for p in kept], out))
            continue
        if not args.tabulate_only:
            run.run_missing(names, keys, args.workers)
        runs = run.load(names, keys)
        if runs:
            sections.append(report.cpa_section(part, runs, out))
    command = "python -m bench.family.tune " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report.header(command, time.perf_counter() - started) + "\n".join(sections)
    path = pathlib.Path(out / f"{args.out}.md")
    path.write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
