"""What a click's context costs a decision before the policy runs: `context_model.adjustments` over K
candidates, four features at the cardinalities of `make bench-capacity`.

    python -m bench.context_columns [--candidates 100] [--calls 2000]

Each candidate has counts for 200 countries, 4 devices, 10 operating systems and the sources it
has seen of 5,000 (each source seen by an offer with a chance falling as 1 / rank, as popular
publishers reach most offers and the tail few), with effects of about +-0.3 on ln(rate) so that
every feature passes the evidence test and its columns are computed, not skipped. Three rows:

- a context asked before on the same effects: every column remembered;
- a source not asked before on the candidate set (the other three columns remembered): what a
  click from the long tail of sources costs;
- every column, the candidate set's effects just refreshed (a new effects list: nothing
  remembered, as after the context cache refreshes one of the candidates).

Each row gives the median wall time and the calling thread's CPU time per click.
"""

import argparse
import os
import time

import numpy as np

from shared.cpa import context_model

SOURCES = 5_000
VALUES = {"geo": 200, "device": 4, "os": 10}


def offer_effects(rng: np.random.Generator) -> tuple[dict, int]:
    """One offer's effects tables, from counts as its folded summary holds them, and its sources."""
    rate = rng.uniform(0.005, 0.08)
    tables = {}
    for feature, n in [*VALUES.items(), ("source", SOURCES)]:
        names = [f"{feature}-{i}" for i in range(n)]
        if feature == "source":
            names = [name for rank, name in enumerate(names, 1) if rng.random() < min(1.0, 20 / rank)]
        clicks = rng.integers(50, 5000, len(names))
        conversions = rng.binomial(clicks, np.minimum(0.5, rate * np.exp(rng.normal(0.0, 0.3, len(names)))))
        counts = {name: [int(c), int(v)] for name, c, v in zip(names, clicks, conversions, strict=True)}
        tables[feature] = context_model.feature_effects(counts)
    return tables, len(counts)


def timed(calls: int, click) -> tuple[float, float]:
    """Median wall and thread-CPU microseconds of click(i) over `calls` calls."""
    wall, cpu = [], []
    for i in range(calls):
        started, started_cpu = time.perf_counter(), time.thread_time()
        click(i)
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return 1e6 * float(np.median(wall)), 1e6 * float(np.median(cpu))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    offers, sources = zip(*(offer_effects(rng) for _ in range(args.candidates)), strict=True)
    offers, seen = list(offers), np.mean(sources)

    def context(source: int) -> dict:
        return {"geo": "geo-1", "device": "device-1", "os": "os-2", "source": f"source-{source}"}

    assert context_model.adjustments(context(1), offers) is not None  # the features have effects
    rows = (
        ("a context asked before", lambda i: context_model.adjustments(context(1), offers)),
        ("a source not asked before", lambda i: context_model.adjustments(context(2 + i % (SOURCES - 2)), offers)),
        ("every column, effects just refreshed", lambda i: context_model.adjustments(context(i), list(offers))),
    )
    print(
        f"context adjustments over {args.candidates} candidates, 4 features (200 countries, 4 devices, 10 OS, "
        f"5,000 sources; {seen:.0f} sources seen per offer on average), {args.calls} calls a row, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| click | median µs | thread CPU µs |\n|---|---|---|")
    for label, click in rows:
        wall, cpu = timed(args.calls, click)
        print(f"| {label} | {wall:.0f} | {cpu:.0f} |")


if __name__ == "__main__":
    main()
