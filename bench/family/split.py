"""The train/test split of the family's seeds, written once to split.json (committed) and read from there.

    python -m bench.family.split --write   # once: refuses to overwrite an existing split.json
    python -m bench.family.split --write-extra cpa:rotating,delayed,drifting:200   # once, split_extra.json

Per family ("cpa", "lock_on", "customer") and class, the seeds of a fixed random permutation of
0..SEED_SPACE-1: the first ones test, the next ones train. Anything that tunes a parameter or picks
a default must read seeds through `training_seeds` or check them with `require_training`, which
refuses every seed that is not a training seed (test seeds and seeds outside the split alike).
The report (`bench.family.run --split test`) reads `test_seeds`.

More test seeds (split_extra.json, `extra_test_seeds`), written once, later and apart: seeds of a
class drawn from another permutation, none of them in split.json, so a class whose 40 test
environments leave a difference unresolved can be measured on more (`bench.family.run --split
test-extra`, or `test+extra` for both). They are test seeds: no tuning step accepts them.
"""

import argparse
import json
import pathlib

import numpy as np

PATH = pathlib.Path(__file__).resolve().parent / "split.json"
EXTRA_PATH = PATH.with_name("split_extra.json")
SEED_SPACE = 100_000
SIZES = {  # family -> (classes, test seeds per class, training seeds per class)
    "cpa": (("stationary", "rotating", "arrivals", "delayed", "drifting", "close"), 40, 60),
    "lock_on": (("close",), 320, 320),
    "customer": (("segmented", "contextual", "new-products", "delayed"), 50, 50),
}


class TestSeedError(ValueError):
    """A tuning step was handed a seed that is not a training seed."""


def write(path: pathlib.Path = PATH) -> dict:
    if path.exists():
        raise FileExistsError(f"{path} exists: the split is written once")
    rng = np.random.default_rng([26, 2026])
    split: dict = {"about": __doc__.strip().splitlines()[0], "test": {}, "train": {}}
    used: dict[str, set] = {}
    for family, (classes, tests, trains) in SIZES.items():
        split["test"][family], split["train"][family] = {}, {}
        for cls in classes:
            taken = used.setdefault(cls, set())  # lock_on and cpa both draw close environments: disjoint
            order = [int(s) for s in rng.permutation(SEED_SPACE) if int(s) not in taken]
            split["test"][family][cls] = sorted(order[:tests])
            split["train"][family][cls] = sorted(order[tests : tests + trains])
            taken.update(order[: tests + trains])
    path.write_text(_compact(split))
    return split


def write_extra(family: str, per_class: dict[str, int], path: pathlib.Path = EXTRA_PATH) -> dict:
    """split_extra.json: `per_class[cls]` more test seeds of each class, none of them in split.json."""
    if path.exists():
        raise FileExistsError(f"{path} exists: the extra test seeds are written once")
    taken = every_seed()
    known = classes(family)
    rng = np.random.default_rng([26, 2026, 14])
    extra: dict = {"about": "More test seeds, written after the first test run (bench/family/split.py)", "test": {}}
    extra["test"][family] = {}
    for cls, count in per_class.items():
        if cls not in known:
            raise ValueError(f"{family} has no class {cls}")
        order = [int(s) for s in rng.permutation(SEED_SPACE) if int(s) not in taken]
        extra["test"][family][cls] = sorted(order[:count])
        taken.update(order[:count])
    path.write_text(_compact(extra | {"train": {}}))
    return extra


def every_seed() -> set[int]:
    """Every seed split.json holds, test and training, of every family and class."""
    split = load()
    return {int(seed) for part in ("test", "train") for by in split[part].values() for v in by.values() for seed in v}


def extra_test_seeds(family: str, cls: str) -> list[int]:
    if not EXTRA_PATH.exists():
        return []
    return list(json.loads(EXTRA_PATH.read_text())["test"].get(family, {}).get(cls, []))


def _compact(split: dict) -> str:
    """The split as JSON with one line per seed list."""
    parts = []
    for part in ("test", "train"):
        families = []
        for family, by_class in split[part].items():
            rows = ",\n".join(f"   {json.dumps(cls)}: {json.dumps(seeds)}" for cls, seeds in by_class.items())
            families.append(f"  {json.dumps(family)}: {{\n{rows}\n  }}")
        parts.append(f" {json.dumps(part)}: {{\n" + ",\n".join(families) + "\n }")
    return "{\n" + f' "about": {json.dumps(split["about"])},\n' + ",\n".join(parts) + "\n}\n"


def load(path: pathlib.Path = PATH) -> dict:
    return json.loads(path.read_text())


def test_seeds(family: str, cls: str) -> list[int]:
    return list(load()["test"][family][cls])


def training_seeds(family: str, cls: str) -> list[int]:
    return list(load()["train"][family][cls])


WHICH = ("test", "train", "test-extra", "test+extra")


def seeds_of(which: str, family: str, cls: str) -> list[int]:
    """The seeds of one of WHICH: the test split, the training split, the extra test seeds, or both
    kinds of test seed."""
    test = test_seeds(family, cls) if which in ("test", "test+extra") else []
    extra = extra_test_seeds(family, cls) if which in ("test-extra", "test+extra") else []
    return training_seeds(family, cls) if which == "train" else test + extra


def classes(family: str) -> list[str]:
    return list(load()["test"][family])


def require_training(family: str, cls: str, seeds) -> list[int]:
    """`seeds` as a list if every one is a training seed of (family, class); else TestSeedError."""
    allowed = set(training_seeds(family, cls))
    seeds = [int(s) for s in seeds]
    refused = sorted(set(seeds) - allowed)
    if refused:
        held_out = sorted(set(refused) & set(load()["test"][family].get(cls, [])))
        raise TestSeedError(
            f"{family}/{cls}: seeds {refused[:5]}{'...' if len(refused) > 5 else ''} are not training seeds"
            + (f" ({len(held_out)} of them held out for the test split)" if held_out else "")
        )
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write split.json (once)")
    parser.add_argument("--write-extra", metavar="FAMILY:CLASS,...:N", help="write split_extra.json (once)")
    args = parser.parse_args()
    if args.write_extra:
        family, classes_given, count = args.write_extra.split(":")
        extra = write_extra(family, {cls: int(count) for cls in classes_given.split(",")})
        print("extra test seeds", {cls: len(seeds) for cls, seeds in extra["test"][family].items()})
    if args.write:
        split = write()
        for part in ("test", "train"):
            print(part, {f: sum(len(s) for s in c.values()) for f, c in split[part].items()})


if __name__ == "__main__":
    main()
