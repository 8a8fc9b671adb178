"""The contextual linear agents against the segment agent, the static agent and the oracle slate:
E7 (Company A, bench/slates.py) and E8, a richer contextual world added here.

    python -m bench.contextual [--seeds 20] [--customers 50000] [--workers 2] [--out bench/results]

E8: 20 offers (OFFER_1..OFFER_20; the static agent knows only the first 10), ages 18-90, and a
segment never seen before. Per seed, offer o's acceptance for a customer is
    logit p = base_o + slope_o z + curve_o (z² − 0.6) + region_{o,r} + gender_{o,g}
              + STATIC_WEIGHT × standardised log static score (offers 1-10) + cell_{o,segment}
with z = (age − 50) / 20: continuous age effects that change the best offer inside an age band,
region and gender effects shared by every segment, and small segment-specific residuals (cell,
sd 0.15). Customers aged 65+ in Asia (two segments) never come before customer UNSEEN_FROM
(40,000 of 50,000): a segment never seen before. Eligible: a random 3 to 20 of the 20 offers.
The customer accepts at most one offer of the slate (each with its p), the client only says
whether one was accepted. Paired: the same customers and coins (bench.rand) for every agent.

Figures: acceptance rate over the last 5,000 customers, % of the oracle slate's, the paired
difference to the segment agent (`thompson-slate`) with a 95 % CI over seeds, and, in E8, the
acceptance of the unseen segment's customers (from UNSEEN_FROM on).
"""

import argparse
import dataclasses
import multiprocessing
import os
import pathlib
import time
from collections.abc import Callable

import numpy as np

from bench import plots, rand
from bench import slates as slates_env
from bench.intervals import ci95
from bench.segment_start import segment_start
from shared.customer import agents, segments
from shared.customer.agents import linear

ENV_NUMBER = 8
OFFERS = tuple(f"OFFER_{number}" for number in range(1, 21))
STATIC_WEIGHT = 0.3
UNSEEN = ("65+", "Asia")  # age band and region of the segments that arrive late
UNSEEN_FROM = 40_000
LAST = 5_000
BATCH = 100
LINEAR_AGENTS = (agents.LINEAR_TS, agents.LINEAR_UCB)
NAMES = ("oracle", *LINEAR_AGENTS, "learning", "static")
LABELS = {"learning": "thompson-slate (segment agent)", "static": "static", "oracle": "oracle slate"}


def hidden(seed: int) -> dict[str, np.ndarray]:
    """The world of one seed: per segment the age-free part of the logit, per offer the age terms."""
    rng = np.random.default_rng([ENV_NUMBER, seed, 1])
    k = len(OFFERS)
    base = np.log(0.05 / 0.95) + 0.5 * rng.standard_normal(k)
    slope, curve = 0.5 * rng.standard_normal(k), 0.4 * rng.standard_normal(k)
    region = {r: 0.4 * rng.standard_normal(k) for r in segments.REGIONS}
    gender = {g: 0.3 * rng.standard_normal(k) for g in segments.GENDERS}
    fixed = {}
    for segment in linear.SEGMENTS:
        band, r, g = segment.split("|")
        log_score = np.log([segments.static_scores(segment)[o] for o in segments.OFFERS])
        static = np.zeros(k)
        static[: len(segments.OFFERS)] = STATIC_WEIGHT * (log_score - log_score.mean()) / log_score.std()
        fixed[segment] = base + region[r] + gender[g] + static + 0.15 * rng.standard_normal(k)
    return {"fixed": fixed, "slope": slope, "curve": curve}


def customers(seed: int, n: int):
    rng = np.random.default_rng([ENV_NUMBER, seed, 2])
    ages = rng.integers(18, 91, size=n)
    genders = rng.choice(segments.GENDERS, size=n)
    regions = rng.choice(segments.REGIONS, size=n)
    others = rng.choice([r for r in segments.REGIONS if r != UNSEEN[1]], size=n)
    sizes = rng.integers(3, len(OFFERS) + 1, size=n)
    for i in range(n):
        region = str(regions[i])
        if i < UNSEEN_FROM and segments.age_band(ages[i]) == UNSEEN[0] and region == UNSEEN[1]:
            region = str(others[i])
        eligible = [OFFERS[j] for j in sorted(rng.choice(len(OFFERS), size=int(sizes[i]), replace=False))]
        yield linear.Customer(int(ages[i]), str(genders[i]), region), eligible


def is_unseen(customer: linear.Customer) -> bool:
    return segments.age_band(customer.age) == UNSEEN[0] and customer.region == UNSEEN[1]


@dataclasses.dataclass
class World:
    """One seed of an environment, every customer drawn up front."""

    env: int
    seed: int
    offers: tuple[str, ...]
    customers: list[linear.Customer]
    segment: np.ndarray  # index into linear.SEGMENTS, per customer
    eligible: np.ndarray  # (n, offers) bool
    rates: Callable[[np.ndarray], np.ndarray]  # customer indices -> (len, offers) acceptance rates


def e7_world(seed: int, n: int) -> World:
    """bench/slates.py's customers and hidden rates, unchanged."""
    rates = slates_env.hidden_rates(seed)
    drawn = list(slates_env.customers(seed, n))
    table = np.array([rates[segment] for segment in linear.SEGMENTS])
    segment = np.array([SEGMENT_INDEX[s] for _, s, _ in drawn])
    eligible = np.array([[o in e for o in segments.OFFERS] for _, _, e in drawn])
    return World(7, seed, segments.OFFERS, [c for c, _, _ in drawn], segment, eligible, lambda i: table[segment[i]])


def e8_world(seed: int, n: int) -> World:
    world = hidden(seed)
    drawn = list(customers(seed, n))
    people = [c for c, _ in drawn]
    fixed = np.array([world["fixed"][s] for s in linear.SEGMENTS])
    segment = np.array([SEGMENT_INDEX[segments.segment_of(*c)] for c in people])
    z = (np.array([c.age for c in people], dtype=float) - 50.0) / 20.0
    eligible = np.array([[o in e for o in OFFERS] for _, e in drawn])

    def rates(i: np.ndarray) -> np.ndarray:
        logit = fixed[segment[i]] + np.outer(z[i], world["slope"]) + np.outer(z[i] ** 2 - 0.6, world["curve"])
        return np.clip(1.0 / (1.0 + np.exp(-logit)), 0.002, 0.6)

    return World(ENV_NUMBER, seed, OFFERS, people, segment, eligible, rates)


SEGMENT_INDEX = {segment: i for i, segment in enumerate(linear.SEGMENTS)}


def _masked_top(scores: np.ndarray, eligible: np.ndarray, policy: str = "") -> np.ndarray:
    return linear.top(np.where(eligible, scores, -np.inf), policy)


def simulate(world: World) -> dict[str, np.ndarray]:
    """Per agent, 1 where the customer accepted an offer of the slate; and `unseen` (E8).

    Customers come in batches of BATCH: an agent decides a batch with the evidence of the
    batches before (rewards arrive late in the service too), so every agent's arithmetic runs
    once per batch: the linear agents through linear.Model, the segment agent as
    segment_thompson.learning_slates does it (Beta(prior + counts) draws, per segment and offer)."""
    n, k = world.eligible.shape
    offers = list(world.offers)
    start = segment_start(offers)
    static, alpha, beta, shown, taken = start.static, start.alpha, start.beta, start.shown, start.taken
    models = {name: linear.Model() for name in LINEAR_AGENTS}
    rngs = {name: np.random.default_rng([world.env, world.seed, 10 + i]) for i, name in enumerate(NAMES)}
    out = {name: np.zeros(n, dtype=np.int8) for name in NAMES}
    for first in range(0, n, BATCH):
        i = np.arange(first, min(first + BATCH, n))
        p, eligible, seg = world.rates(i), world.eligible[i], world.segment[i]
        coins = rand.uniform(world.env, world.seed, i[:, None], np.arange(k)[None, :], 0)
        batch = [world.customers[j] for j in i]
        picked = {
            "oracle": _masked_top(p, eligible),
            "static": _masked_top(static[seg], eligible),
            "learning": _masked_top(
                rngs["learning"].beta(alpha[seg] + taken[seg], beta[seg] + shown[seg] - taken[seg]), eligible
            ),
        }
        for name, model in models.items():
            picked[name] = _masked_top(model.scores(batch, offers, rngs[name], name), eligible, name)
        rows = np.arange(len(i))[:, None]
        for name, order in picked.items():
            out[name][i] = (coins[rows, order] < p[rows, order]).any(axis=1)
        for name, model in models.items():
            model.observe_batch(batch, [[offers[c] for c in row] for row in picked[name]], out[name][i])
        # the segment agent's slate credit, as the service does it: shown and accepted to all three
        np.add.at(shown, (seg[:, None], picked["learning"]), 1.0)
        np.add.at(taken, (seg[:, None], picked["learning"]), out["learning"][i][:, None].astype(float))
    if world.env == ENV_NUMBER:
        out["unseen"] = np.array([is_unseen(c) for c in world.customers])
    return out


def _task(args):
    env, seed, n = args
    started = time.process_time()
    world = e7_world(seed, n) if env == "E7" else e8_world(seed, n)
    return env, seed, simulate(world), time.process_time() - started


def summarise(runs: list[dict], n: int) -> dict:
    """Per agent: mean acceptance (all, last LAST), % of oracle, paired difference to the segment
    agent over the last LAST with its CI, and, when present, the unseen segment's acceptance."""
    out = {}
    last = {name: np.array([r[name][-LAST:].mean() for r in runs]) for name in NAMES}
    for name in NAMES:
        row = {
            "all": float(np.mean([r[name].mean() for r in runs])),
            "last": float(last[name].mean()),
            "oracle_share": float(100 * last[name].mean() / last["oracle"].mean()),
            "vs_segment": float((last[name] - last["learning"]).mean()),
            "vs_segment_ci": ci95(last[name] - last["learning"]),
            "curve": np.mean([r[name].reshape(-1, 1000).mean(axis=1) for r in runs], axis=0).tolist(),
        }
        if "unseen" in runs[0]:
            unseen = np.array([r[name][r["unseen"]].mean() for r in runs])
            seg = np.array([r["learning"][r["unseen"]].mean() for r in runs])
            row |= {
                "unseen": float(unseen.mean()),
                "unseen_vs_segment": float((unseen - seg).mean()),
                "unseen_vs_segment_ci": ci95(unseen - seg),
                "unseen_customers": float(np.mean([r["unseen"].sum() for r in runs])),
            }
        out[name] = row
    return out


def markdown(summaries: dict, seeds: int, n: int, command: str) -> str:
    lines = [
        "# Contextual linear agent: E7 and E8",
        "",
        f"`{command}` — {seeds} seeds × {n:,} customers, paired (the same customers and coins for every agent).",
        "Acceptance = share of customers who accepted one offer of the slate. Paired difference: the agent's "
        f"acceptance minus the segment agent's over the last {LAST:,} customers, mean ± 95 % CI over seeds.",
        "",
    ]
    titles = {
        "E7": "E7 Company A: 10 offers, 24 segments, rates per (segment, offer) half from the static weights",
        "E8": f"E8 contextual: 20 offers, continuous age effects, 65+ in Asia unseen before customer {UNSEEN_FROM:,}",
    }
    for env, summary in summaries.items():
        unseen = "unseen" in summary["oracle"]
        lines += [f"## {titles[env]}", ""]
        header = "| agent | all customers | last 5,000 | % of oracle (last 5,000) | − segment agent (last 5,000) |"
        rule = "|---|---|---|---|---|"
        if unseen:
            header += " unseen segment (from 40,000) | − segment agent (unseen) |"
            rule += "---|---|"
        lines += [header, rule]
        for name in NAMES:
            s = summary[name]
            diff = "—" if name == "learning" else f"{100 * s['vs_segment']:+.2f} ± {100 * s['vs_segment_ci']:.2f} pts"
            cells = [
                LABELS.get(name, name),
                f"{100 * s['all']:.2f} %",
                f"{100 * s['last']:.2f} %",
                f"{s['oracle_share']:.1f}",
                diff,
            ]
            if unseen:
                udiff = (
                    "—"
                    if name == "learning"
                    else f"{100 * s['unseen_vs_segment']:+.2f} ± {100 * s['unseen_vs_segment_ci']:.2f} pts"
                )
                cells += [f"{100 * s['unseen']:.2f} %", udiff]
            lines.append("| " + " | ".join(cells) + " |")
        if unseen:
            lines.append(
                f"\nUnseen segment: {summary['oracle']['unseen_customers']:,.0f} customers per seed on average."
            )
        lines.append("")
    return "\n".join(lines)


def plot(summaries: dict, out: pathlib.Path) -> list[pathlib.Path]:
    paths = []
    for env, summary in summaries.items():
        fig, ax = plots.subplots(figsize=(8, 4.5))
        for name in NAMES:
            curve = np.array(summary[name]["curve"])
            ax.plot((np.arange(len(curve)) + 1) * 1000, 100 * curve, label=LABELS.get(name, name))
        if env == "E8":
            ax.axvline(UNSEEN_FROM, color="grey", linestyle=":", label="unseen segment arrives")
        title = f"{env}: acceptance rate per 1,000 customers (mean over seeds)"
        path = out / f"contextual_{env}.png"
        paths.append(plots.save(fig, ax, path, title, "customers", "accepted (%)", fontsize=8))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--envs", default="E7,E8")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).resolve().parent / "results"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    envs = args.envs.split(",")
    # One BLAS thread per worker: the workers are the parallelism, and on a shared machine
    # OpenBLAS threads spinning for a core cost more than the small matrices gain.
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"
    tasks = [(env, seed, args.customers) for seed in range(args.seeds) for env in envs]
    runs: dict[str, list] = {env: [] for env in envs}
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for env, seed, result, seconds in pool.imap_unordered(_task, tasks):
            runs[env].append(result)
            last = {k: f"{100 * v[-LAST:].mean():.1f}" for k, v in result.items() if k != "unseen"}
            print(f"{env} seed {seed}: last {LAST:,} accepted (%) {last} ({seconds:.0f} s)", flush=True)
    summaries = {env: summarise(runs[env], args.customers) for env in envs}
    command = f"python -m bench.contextual --seeds {args.seeds} --customers {args.customers}"
    text = markdown(summaries, args.seeds, args.customers, command)
    text += f"\nWall time: {(time.perf_counter() - started) / 60:.1f} min on {args.workers} workers.\n"
    print(text)
    (out / "contextual.md").write_text(text)
    for path in plot(summaries, out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
