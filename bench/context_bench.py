"""The benchmark of issue 24: click context and caps (bench/context_envs.py).

    python -m bench.context_bench [--envs contextual,capped,E1-context,capped-delayed] [--seeds 100] [--workers 2]
                                  [--first-seed 0] [--runs-dir reports/bench/context-runs] [--publish]
    python -m bench.context_bench --bounds [--seeds 100]   (bench/context_bounds.py)

Policies: `thompson` (today's default, context-free; on `capped` it respects the caps by leaving a
capped-out offer out, with no pacing) and `contextual` (the context's effects, and pacing on
`capped`); on `capped-delayed` also `contextual-counted`, whose pacing takes counted spend alone, as
before spend in flight was priced. Each as the service runs it: the batched core, the exploration
floor, drift restarts every DISCOUNT_BUCKET clicks when the service has them on (bench.run's DRIFT;
off by default). The contextual sampler's context counts are folded every FOLD_CLICKS clicks (the
store folds once a minute); on the capped environments the day's spend, and the day fields the
in-flight estimate reads, are seen SPEND_LAG_CLICKS late (the statistics cache's lag). Every policy
sees the same draws.

Figures: % of the oracle's revenue (the contextual oracle, or the capped linear programme's), the
paired difference to thompson with a 95 % interval over seeds, and on `capped` each cap's spend at
the day's end and the share of the day it lasted. Runs are kept in --runs-dir and reused while the
code they ran (bench's runner files and shared/cpa) is unchanged (`code_tag`).

The published figures are seeds 0 to 99. A model choice is tried on TRAINING_SEEDS onwards
(`--first-seed 1000`, never published), so the reported seeds are not the ones it was chosen on.
"""

import argparse
import json
import multiprocessing
import os
import pathlib
import pickle
import time
import warnings
import zlib
from typing import NamedTuple

import numpy as np

from bench import context_bounds
from bench.intervals import ci95

ROOT = pathlib.Path(__file__).resolve().parent.parent
REPORT = ROOT / "reports" / "bench"
PUBLISHED = ROOT / "bench" / "results" / "context"
FOLD_CLICKS = 1_000
SPEND_LAG_CLICKS = 100
CHECKPOINTS = 100
CHUNK = 1_000  # clicks whose contexts are drawn together
POLICIES = ("thompson", "contextual", "contextual-counted")
# contextual-counted: contextual pacing on counted spend alone, as before in-flight spend was priced
# (run on environments with postback delays only; elsewhere it is contextual)
PACED = ("contextual", "contextual-counted")
DAY = 86_400.0
TRAINING_SEEDS = 1000


def run(env_key, policy: str, seeds: int, first_seed: int = 0) -> dict:
    """One policy over `seeds` paired seeds of one environment: a key of ENVS, or a ContextEnv
    itself (bench/context_family.py's generated ones)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from bench import harness
    from bench.context_envs import ENVS, ContextWorld, capped_optimum
    from bench.harness import DISCOUNT_BUCKET
    from bench.run import project_params
    from shared.cpa import caps as caps_rules
    from shared.cpa import drift
    from shared.cpa.context_model import effect_tables
    from shared.cpa.policies import Stats, choose_batch
    from shared.cpa.policies.contextual import Adjustments, ContextParams

    started = time.perf_counter()
    env = ENVS[env_key] if isinstance(env_key, str) else env_key
    env_key = env.key
    sampler = "contextual" if policy in PACED else policy
    world = ContextWorld(env, np.arange(first_seed, first_seed + seeds))
    _, params, drift_params = project_params("thompson")
    rng = np.random.default_rng([0, env.number, 99])
    b, k = seeds, env.k
    rows = np.arange(b)
    stats = Stats.zeros(b, k)
    clicks, conversions, reward, reward_sq, log_conversions, log_reward, log_reward_sq = stats
    total_clicks = np.zeros(b)
    drift_state, rolled_totals = drift.DriftState.zeros((b, k)), np.zeros((7, b, k))
    sizes = env.cardinalities()
    context_clicks = np.zeros((b, k, sum(sizes)))
    context_conversions = np.zeros((b, k, sum(sizes)))
    shift_table = variance_table = np.zeros((b, k, sum(sizes)))
    base_rate = np.full((b, k), np.nan)
    contextual = sampler == "contextual"
    capped = env.days > 0
    delayed = capped and env.delay > 0
    counts_in_flight = delayed and policy == "contextual"
    if capped:
        day_caps = world.caps()
        time_of_day = world.time_of_day()
        day_length = world.day_length()
        spent = np.zeros((b, k))
        seen_spent = spent.copy()
        ends, lasted = [], []
        optimum = (
            np.array([capped_optimum(world.rates[r], world.payouts[r], day_caps[r], day_length) for r in range(b)])
            * env.days
        )
        exhausted = np.ones((b, k))
        seen_flying = seen_margin = 0.0
    if delayed:
        postbacks = Postbacks(world, day_length, b)
        # the store's day fields per offer, today's and yesterday's (shared/cpa/caps.py)
        weighted, delays = np.zeros((2, b, k)), np.zeros((2, b, k))
        spent_yesterday = np.zeros((b, k))
    revenue = np.zeros(b)
    oracle = np.zeros(b)
    steps = np.linspace(0, env.horizon, CHECKPOINTS + 1).astype(int)[1:]
    curve = np.zeros((b, CHECKPOINTS))
    checkpoint = 0
    for step in range(env.horizon):
        if drift_params is not None and step % DISCOUNT_BUCKET == 0 and step:
            totals = np.stack(stats)
            drift_state = drift.roll(drift_state, totals, rolled_totals, DISCOUNT_BUCKET, drift_params)
            rolled_totals = totals
        if contextual and step % FOLD_CLICKS == 0 and step:
            tables = [
                effect_tables(context_clicks[..., o : o + n], context_conversions[..., o : o + n])
                for o, n in zip(world.offsets, sizes, strict=True)
            ]
            shift_table = np.concatenate([t[0] for t in tables], axis=-1)
            variance_table = np.concatenate([t[1] for t in tables], axis=-1)
            with warnings.catch_warnings():  # no feature known yet: NaN, thompson's mean
                warnings.simplefilter("ignore", RuntimeWarning)
                base_rate = np.nanmean(np.stack([t[3] for t in tables]), axis=0)
        decided = Stats(*drift.since_arrays(np.stack(stats), drift_state.baseline))
        if step % CHUNK == 0:  # the next CHUNK clicks' contexts and rates, drawn at once
            chunk_contexts = world.contexts(step, min(CHUNK, env.horizon - step))
            chunk_rates, chunk_values = world.values(chunk_contexts)
        context, rates, values = (part[step % CHUNK] for part in (chunk_contexts, chunk_rates, chunk_values))
        columns = context + world.offsets
        step_params, mask, log_value = params, None, None
        if capped:
            within = step % day_length
            if within == 0 and step:
                ends.append(spent / np.where(np.isfinite(day_caps), day_caps, np.nan))
                lasted.append(exhausted.copy())
                if delayed:
                    spent_yesterday = spent.copy()
                    weighted, delays = weighted[::-1].copy(), delays[::-1].copy()
                    weighted[0], delays[0] = 0.0, 0.0
                spent[:], exhausted[:] = 0.0, 1.0
            if delayed:
                for got in postbacks.arriving(step):
                    at = (got.row, got.position)
                    paid = (spent[at] < day_caps[at]) & np.isfinite(day_caps[at])
                    np.add.at(revenue, got.row, np.where(paid, got.value, 0.0))
                    np.add.at(spent, at, got.converted)
                    np.add.at(delays[0], at, got.converted * got.delay)
                    _add_arrived(stats, got.row, got.position, got.converted, world.payouts[at])
                    if contextual:
                        for f in range(3):
                            np.add.at(context_conversions, (got.row, got.position, got.columns[:, f]), got.converted)
                    newly = (spent[at] >= day_caps[at]) & (exhausted[at] == 1.0)
                    exhausted[got.row[newly], got.position[newly]] = time_of_day[within]
            if within % SPEND_LAG_CLICKS == 0:
                seen_spent = spent.copy()
                if counts_in_flight:
                    seen_flying, seen_margin = _in_flight(
                        caps_rules, stats, weighted, delays, spent, spent_yesterday, time_of_day[within]
                    )
            reached = seen_spent >= day_caps
            open_ = ~reached
            mask = np.where(open_.any(axis=1, keepdims=True), open_, True)
            mask = None if mask.all() else mask  # no offer out: the unmasked core (no nan-median)
            if contextual:
                fraction = time_of_day[within]
                price = caps_rules.prices(seen_spent + seen_flying, day_caps, fraction, seen_margin)
                log_value = np.where(np.isfinite(day_caps), np.log1p(-price), 0.0)
        if contextual:
            shift = sum(shift_table[rows, :, columns[:, f]] for f in range(3))
            variance = sum(variance_table[rows, :, columns[:, f]] for f in range(3))
            step_params = ContextParams(**params.__dict__, adjust=Adjustments(shift, variance, log_value, base_rate))
        position = choose_batch(sampler, decided, total_clicks, step_params, rng, propensity=False, mask=mask).index
        converted = world.converted(step, position, rates)
        value = values[rows, position]
        if delayed:  # uncapped offers are paid at once, capped ones when their postback arrives
            revenue += np.where(np.isfinite(day_caps[rows, position]), 0.0, value)
            postbacks.take(step, position, converted, value, columns)
            weighted[0, rows, position] += np.exp(time_of_day[step % day_length] * DAY / caps_rules.RATE_SECONDS)
        elif capped:
            paid = spent[rows, position] < day_caps[rows, position]
            revenue += np.where(paid, value, 0.0)
            spent[rows, position] += converted
            newly = (spent[rows, position] >= day_caps[rows, position]) & (exhausted[rows, position] == 1.0)
            exhausted[rows[newly], position[newly]] = time_of_day[step % day_length]
        else:
            revenue += value
            oracle += values.max(axis=1)
        payout = world.payouts[rows, position] * converted
        clicks[rows, position] += 1.0
        total_clicks += 1.0
        if not delayed:  # delayed: added when the postback arrives
            harness.add_outcomes(stats, rows, position, converted, payout)
        if contextual:  # a click's context counts its click now and, as the store does, its conversion with it
            for f in range(3):  # or, delayed, when its postback arrives (above)
                context_clicks[rows, position, columns[:, f]] += 1.0
                if not delayed:
                    context_conversions[rows, position, columns[:, f]] += converted
        if step + 1 == steps[checkpoint]:
            curve[:, checkpoint] = revenue
            checkpoint += 1
    found = {"env": env_key, "sampler": policy, "steps": steps, "revenue": revenue, "curve": curve}
    if delayed:  # postbacks after the run land in a new day, under a new cap: paid
        for got in postbacks.arriving(env.horizon):
            np.add.at(revenue, got.row, np.where(np.isfinite(day_caps[got.row, got.position]), got.value, 0.0))
    if capped:
        ends.append(spent / np.where(np.isfinite(day_caps), day_caps, np.nan))
        lasted.append(exhausted.copy())
        bounded = np.isfinite(day_caps)
        found["optimum"] = optimum
        found["cap_end"] = np.array([e[bounded] for e in ends])  # (days, B x capped)
        found["lasted"] = np.array([e[bounded] for e in lasted])
    else:
        found["optimum"] = oracle
    found["seconds"] = time.perf_counter() - started
    return found


class Arrived(NamedTuple):
    row: np.ndarray  # the seeds' rows
    position: np.ndarray  # the offers clicked
    converted: np.ndarray
    value: np.ndarray  # the clicks' expected revenue
    delay: np.ndarray  # seconds since the click, as the store measures them
    columns: np.ndarray  # (n, 3) the clicks' context values, as columns of the context counts


class Postbacks:
    """Clicks waiting for their postback (bench/context_envs.py `arrivals`): what each click of each
    seed took, and which clicks' postbacks arrive at each step."""

    def __init__(self, world, day_length: int, seeds: int):
        horizon = day_length * world.env.days
        self.times = np.repeat(np.arange(world.env.days), day_length) + np.tile(world.time_of_day(), world.env.days)
        arrival = world.arrivals(self.times)
        self.order = np.argsort(arrival, axis=None, kind="stable")
        self.bounds = np.searchsorted(arrival.ravel()[self.order], np.arange(horizon + 2))
        self.seeds = seeds
        self.position = np.zeros((horizon, seeds), dtype=np.int16)
        self.converted = np.zeros((horizon, seeds), dtype=bool)
        self.value = np.zeros((horizon, seeds))
        self.columns = np.zeros((horizon, seeds, 3), dtype=np.int16)

    def take(self, step: int, position, converted, value, columns: np.ndarray) -> None:
        self.position[step], self.converted[step], self.value[step] = position, converted, value
        self.columns[step] = columns

    def arriving(self, step: int) -> list[Arrived]:
        """The clicks whose postback arrives at `step` (at the horizon: all those after the run)."""
        found = self.order[self.bounds[step] : self.bounds[step + 1]]
        if not len(found):
            return []
        at, row = np.divmod(found, self.seeds)
        delay = (self.times[min(step, len(self.times) - 1)] - self.times[at]) * DAY
        return [
            Arrived(
                row,
                self.position[at, row].astype(np.intp),
                self.converted[at, row],
                self.value[at, row],
                delay,
                self.columns[at, row].astype(np.intp),
            )
        ]


def _add_arrived(stats, rows: np.ndarray, position: np.ndarray, converted: np.ndarray, payouts: np.ndarray) -> None:
    """harness.add_outcomes for postbacks: several may arrive for one (seed, offer) at once."""
    payout = payouts * converted
    log_payout = np.log(np.where(converted, payouts, 1.0))
    for total, amount in (
        (stats.conversions, converted),
        (stats.reward, payout),
        (stats.reward_sq, payout * payout),
        (stats.log_conversions, converted),
        (stats.log_reward, log_payout),
        (stats.log_reward_sq, log_payout * log_payout),
    ):
        np.add.at(total, (rows, position), amount)


def _in_flight(caps_rules, stats, weighted, delays, spent, spent_yesterday, time_of_day: float) -> tuple:
    """Each offer's conversions in flight and their margin, as the store estimates them from the day
    fields it keeps (shared/cpa/caps.py `state_of`): today's and yesterday's weighted clicks and delays."""
    seconds = time_of_day * DAY
    rate = caps_rules.rate_of(weighted[0], weighted[1], seconds, seconds + DAY)
    counted = spent + spent_yesterday
    delay = np.where(counted > 0, (delays[0] + delays[1]) / np.maximum(counted, 1.0), 0.0)
    per_click = np.where(stats.clicks > 0, stats.conversions / np.maximum(stats.clicks, 1.0), 0.0)
    flying = caps_rules.in_flight(rate, per_click, delay, DAY - seconds)
    return flying, caps_rules.margin(flying, flying)  # conversions caps: the count itself


def code_tag() -> str:
    """A hash of the code a run depends on, so a kept run of other code is not reused."""
    files = [ROOT / "bench" / name for name in ("context_bench.py", "context_envs.py", "harness.py", "run.py")]
    files += sorted((ROOT / "shared" / "cpa").glob("**/*.py"))
    return f"{zlib.crc32(b''.join(path.read_bytes() for path in files)):08x}"


def kept_run(runs_dir, name: str, compute) -> dict:
    """compute(), kept in runs_dir under `name` and this code's tag, and reused from there (no
    runs_dir: computed every time)."""
    kept = pathlib.Path(runs_dir) / f"{name}_{code_tag()}.pkl" if runs_dir else None
    if kept is not None and kept.exists():
        return pickle.loads(kept.read_bytes())
    found = compute()
    if kept is not None:
        kept.write_bytes(pickle.dumps(found))
    return found


def _task(args):
    env_key, sampler, seeds, first_seed, runs_dir = args
    name = f"{env_key}_{sampler}_{seeds}" + (f"_from{first_seed}" if first_seed else "")
    return kept_run(runs_dir, name, lambda: run(env_key, sampler, seeds, first_seed))


def table(results: dict) -> str:
    lines = []
    for env_key, by_policy in results.items():
        from bench.context_envs import ENVS

        env = ENVS[env_key]
        base = by_policy.get("thompson")
        lines += [f"### {env_key}: {env.detail}; T = {env.horizon:,}", ""]
        of = "the capped optimum (linear programme)" if env.days else "the contextual oracle"
        head = f"| policy | seeds | % of {of} ± 95 % CI | paired − thompson, points (95 % CI) |"
        if env.days:
            head += " cap spent at day's end: max | caps lasting past 90 % of the day | earliest cap end |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for policy, r in by_policy.items():
            share = 100 * r["revenue"] / r["optimum"]
            paired = "—"
            if base is not None and policy != "thompson":
                diff = share - 100 * base["revenue"] / base["optimum"]
                paired = f"{diff.mean():+.2f} ± {ci95(diff):.2f}"
            cells = [policy, str(len(share)), f"{share.mean():.2f} ± {ci95(share):.2f}", paired]
            if env.days:
                cells += [
                    f"{100 * np.nanmax(r['cap_end']):.1f} %",
                    f"{100 * np.mean(r['lasted'] >= 0.9):.1f} %",
                    f"{100 * np.min(r['lasted']):.1f} % of the day",
                ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if "contextual" in by_policy and "contextual-counted" in by_policy:
            lines += [_in_flight_line(by_policy["contextual"], by_policy["contextual-counted"]), ""]
    return "\n".join(lines)


def _in_flight_line(priced: dict, counted: dict) -> str:
    """What pricing the spend in flight changes, paired over seeds: revenue and the caps' day ends."""
    diff = 100 * (priced["revenue"] / priced["optimum"] - counted["revenue"] / counted["optimum"])
    over = [100 * np.mean(r["cap_end"] > 1.01) for r in (priced, counted)]
    end = 100 * (np.nanmean(priced["cap_end"], axis=0) - np.nanmean(counted["cap_end"], axis=0))
    return (
        f"contextual (in flight priced) − contextual-counted, paired: {diff.mean():+.2f} ± {ci95(diff):.2f} points "
        f"of the optimum; each cap's spend at the day's end {end.mean():+.2f} ± {ci95(end):.2f} points of its cap; "
        f"cap-days above 101 %: {over[0]:.1f} % against {over[1]:.1f} %."
    )


def plot(results: dict, folder: pathlib.Path) -> list[pathlib.Path]:
    return [plot_revenue(env_key, by_policy, folder) for env_key, by_policy in results.items()]


def plot_revenue(env_key: str, by_policy: dict, folder: pathlib.Path) -> pathlib.Path:
    """Each policy's revenue so far as % of the optimum's pace, mean and 95 % band over seeds."""
    from bench import plots

    fig, ax = plots.subplots(figsize=(8, 5))
    for policy, r in by_policy.items():
        share = 100 * r["curve"] / (r["optimum"][:, None] * r["steps"][None, :] / r["steps"][-1])
        mean, half = share.mean(axis=0), 1.96 * share.std(axis=0, ddof=1) / np.sqrt(len(share))
        (line,) = ax.plot(r["steps"], mean, label=policy)
        ax.fill_between(r["steps"], mean - half, mean + half, color=line.get_color(), alpha=0.15)
    title = f"{env_key}: revenue so far, % of the optimum's pace (mean ± 95 % CI)"
    return plots.save(fig, ax, folder / f"revenue_{env_key}.png", title, "clicks", "% of optimum", loc="lower right")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default="contextual,capped,E1-context,capped-delayed")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0, help=f"{TRAINING_SEEDS} onwards: trying a model")
    parser.add_argument("--runs-dir", default=str(REPORT / "context-runs"))
    parser.add_argument("--publish", action="store_true")
    parser.add_argument(
        "--bounds", action="store_true", help="what the true context, or full information, earns; then stop"
    )
    args = parser.parse_args()
    if args.bounds:
        context_bounds.main(args.seeds)
        return
    started = time.perf_counter()
    REPORT.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    if args.publish and args.first_seed:
        parser.error("--publish reports seeds 0 to 99 only")
    from bench.context_envs import ENVS

    tasks = [
        (e, p, args.seeds, args.first_seed, args.runs_dir)
        for e in args.envs.split(",")
        for p in args.policies.split(",")
        if p != "contextual-counted" or ENVS[e].delay > 0  # without delays it is contextual
    ]
    results: dict = {e: {} for e in args.envs.split(",")}
    with multiprocessing.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        for found in pool.imap_unordered(_task, tasks):
            results[found["env"]][found["sampler"]] = found
            share = 100 * np.mean(found["revenue"] / found["optimum"])
            print(f"{found['env']} {found['sampler']}: {share:.2f} % ({found['seconds']:.0f} s)", flush=True)
    results = {e: {p: by[p] for p in args.policies.split(",") if p in by} for e, by in results.items()}
    text = table(results) + f"\nWall time: {(time.perf_counter() - started) / 60:.1f} min ({args.seeds} seeds).\n"
    (REPORT / "context_results.md").write_text(text)
    summary = {e: {p: float(np.mean(r["revenue"] / r["optimum"])) for p, r in by.items()} for e, by in results.items()}
    (REPORT / "context_results.json").write_text(json.dumps(summary, indent=1))
    paths = plot(results, REPORT)
    print(text)
    if args.publish:
        PUBLISHED.mkdir(parents=True, exist_ok=True)
        (PUBLISHED / "context_results.md").write_text(text)
        for path in paths:
            (PUBLISHED / path.name).write_bytes(path.read_bytes())


if __name__ == "__main__":
    main()
