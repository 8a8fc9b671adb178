"""Company A's learning agent (shared/customer/agents/ `slates`) against the static agent and
the oracle slate, on simulated customers (bench/slates.py), every 5,000 rewards up to 50,000.

    python -m bench.agent_simulation [--seeds 4] [--customers 50000] [--out reports/bench]

Two worlds: the hidden acceptance rates partly follow the case study's static weights
(static_weight 0.5, the E7 world), or not at all (0.0: the static weights are uninformed).
Target: the learning agent >= 1.2x the static agent and >= 90 % of the oracle after 50k rewards.
"""

import argparse
import multiprocessing
import pathlib

import numpy as np

from bench.slates import simulate

WORLDS = {"static weights half right (0.5)": 0.5, "static weights uninformed (0.0)": 0.0}
EVERY = 5_000


def _one(args):
    seed, n, weight = args
    return weight, {k: v.astype(float) for k, v in simulate(seed, n, weight).items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent.parent / "reports" / "bench"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(seed, args.customers, w) for w in WORLDS.values() for seed in range(args.seeds)]
    with multiprocessing.get_context("fork").Pool() as pool:
        results = pool.map(_one, tasks)

    from bench import plots

    fig, axes = plots.subplots(1, len(WORLDS), figsize=(12, 4.5), sharey=True)
    for ax, (title, weight) in zip(axes, WORLDS.items(), strict=True):
        runs = [r for w, r in results if w == weight]
        # acceptance rate within each window of EVERY rewards, averaged over seeds
        windows = {k: np.array([r[k] for r in runs]).reshape(len(runs), -1, EVERY).mean(axis=(0, 2)) for k in runs[0]}
        print(f"\n{title}: acceptance rate per {EVERY:,} rewards ({len(runs)} seeds)")
        print("| rewards | learning | static | oracle | learning / static | learning / oracle |")
        print("|---|---|---|---|---|---|")
        for i in range(len(windows["learning"])):
            learn, s, o = (windows[k][i] for k in ("learning", "static", "oracle"))
            print(
                f"| {(i + 1) * EVERY:,} | {100 * learn:.2f} % | {100 * s:.2f} % | {100 * o:.2f} % "
                f"| {learn / s:.3f} | {100 * learn / o:.1f} % |"
            )
        learn, s, o = (windows[k][-1] for k in ("learning", "static", "oracle"))
        verdict = "meets" if learn >= 1.2 * s and learn >= 0.9 * o else "misses"
        print(
            f"after {args.customers:,}: learning {learn / s:.2f}x static (target 1.2), "
            f"{100 * learn / o:.1f} % of oracle (target 90): {verdict} the target"
        )
        for k in ("oracle", "learning", "static"):
            ax.plot((np.arange(len(windows[k])) + 1) * EVERY, 100 * windows[k], marker="o", label=k)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("rewards")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"accepted per {EVERY:,} customers (%)")
    axes[0].legend()
    fig.suptitle("Company A top-3: learning agent vs static agent vs oracle slate")
    fig.tight_layout()
    path = out / "agent_simulation.png"
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
