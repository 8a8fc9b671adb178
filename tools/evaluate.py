"""`make evaluate`: off-policy evaluation of every CPA sampler (and of customer slates) on the
decisions the service logged: would another policy have earned more on our traffic?

Reads the tenant's decisions and their rewards of a window from the decision log, as `make report`
does (tools/analytics/warehouse.py: `--log FILE`, `--project ID`'s BigQuery dataset, the running
`make run`'s DuckDB file, GOOGLE_CLOUD_PROJECT); with `--firestore`, the click documents
(`cpa_clicks`) and episodes (`episodes`) instead (tools/target.py's rule); or a JSON-lines export
(`--export FILE`, as `--save FILE` writes it). Held-out clicks (the holdout, served at random and
never learned from) are left out of the CPA replay: the service's counters never saw them.

Prints, for every sampler of shared/cpa/policies/, its estimated revenue per click by IPS, SNIPS and
doubly robust with 95 % intervals (shared/maths/estimators.py), the logging policy's own, and, when
the documents carry them, the shadow sampler's agreement and estimate and the customer slates' per-
offer acceptance (shared/customer/evaluation.py). An estimate that rests on fewer than MIN_CLICKS
clicks prints "too few clicks" instead.

The approximation: a sampler's probabilities need the candidates' counters at decision time,
which are not logged; they are rebuilt from the log itself, replaying its clicks and rewards in
time order up to each click, less `--lag` seconds (default STATS_MAX_AGE_SECONDS / 2, the cached
statistics' typical age); shared/cpa/replay.py says what that leaves out.

    python -m tools.evaluate [--since 30d] [--max-clicks 100000] [--max-episodes 50000]
                                [--samplers thompson,klucb] [--log FILE | --project ID] [--firestore]
                                [--export FILE] [--save FILE] [--seed 0] [--lag SECONDS]
"""

import argparse
import datetime
import json
import math
import pathlib
import sys
import time

import numpy as np

from shared.cpa import replay
from shared.cpa.policies import SAMPLERS
from shared.cpa.store import CLICKS
from shared.customer import evaluation as slates
from shared.customer.segments import SLATE_SIZE
from shared.customer.store import EPISODES
from shared.maths.estimators import Estimate
from shared.platform import stats_cache
from shared.platform.namespace import ROOT, Namespace
from tools.analytics import rows, warehouse
from tools.report.data import newest

# An estimate is printed once it rests on this many clicks (or episodes), else "too few clicks":
# below it the normal-approximation interval means little, and on one click it is infinite. What it
# rests on: the logged policy and DR, the clicks replayed; IPS and SNIPS of a sampler, the
# effective sample size of its weights; a shadow, the clicks where it agreed with the live choice;
# a slate offer, the episodes that showed it.
MIN_CLICKS = 30
CLICK_FIELDS = [
    "click_id",
    "offer_id",
    "candidates",
    "sampler",
    "probability",
    "reward",
    "sampled_at",
    "feedback_at",
    "payouts",
    "floor",
    "shadow",
    "holdout",
]
EPISODE_FIELDS = [
    "created_at",
    "policy",
    "up_to_date",
    "accepted",
    "accepted_offer",
    "inclusion",
    "shadow",
    *(f"predicted_offer_{rank + 1}" for rank in range(SLATE_SIZE)),
]


# -- Reading ------------------------------------------------------------------------------------
def _seconds(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value).timestamp()
    return value.timestamp()


def click_row(doc: dict) -> dict:
    """A click document as the evaluation reads it (times in seconds since the epoch)."""
    click_id = doc.get("click_id")
    return {
        "click_id": None if click_id is None else str(click_id),
        "offer_id": doc.get("offer_id"),
        "candidates": doc.get("candidates"),
        "sampler": doc.get("sampler"),
        "probability": doc.get("probability"),
        "reward": doc.get("reward"),
        "sampled_at": _seconds(doc.get("sampled_at")),
        "feedback_at": _seconds(doc.get("feedback_at")),
        "payouts": doc.get("payouts"),
        "floor": doc.get("floor"),
        "shadow": doc.get("shadow"),
        "holdout": bool(doc.get("holdout")),
    }


def episode_row(doc: dict) -> dict:
    return {
        "created_at": _seconds(doc.get("created_at")),
        "policy": doc.get("policy"),
        "rewarded": bool(doc.get("up_to_date")),
        "accepted": bool(doc.get("accepted")),
        "accepted_offer": doc.get("accepted_offer"),
        "slate": [doc[f"predicted_offer_{r + 1}"] for r in range(SLATE_SIZE) if doc.get(f"predicted_offer_{r + 1}")],
        "inclusion": doc.get("inclusion"),
        "shadow": doc.get("shadow"),
    }


def read_firestore(
    db, since: datetime.datetime, max_clicks: int, max_episodes: int, space: Namespace = ROOT
) -> tuple[list, list, dict]:
    """The tenant's clicks and episodes in the window (`space`: its namespace), oldest first."""
    clicks = newest(db, space.path(CLICKS), "sampled_at", since, max_clicks, CLICK_FIELDS)[::-1]
    episodes = newest(db, space.path(EPISODES), "created_at", since, max_episodes, EPISODE_FIELDS)[::-1]
    cut = {"clicks": len(clicks) >= max_clicks, "episodes": len(episodes) >= max_episodes}
    return [click_row(d) for d in clicks], [episode_row(d) for d in episodes], cut


def read_export(path: pathlib.Path) -> tuple[list, list]:
    """JSON lines, each {"collection": "cpa_clicks" | "episodes", ...}: the row as --save writes it,
    or the Firestore document's fields (times as seconds since the epoch or ISO 8601)."""
    clicks, episodes = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        collection = row.pop("collection", None)
        if collection == CLICKS:
            clicks.append(click_row(row))
        elif collection == EPISODES:  # as --save writes it, or the episode document itself
            episodes.append(
                row | {"created_at": _seconds(row.get("created_at"))} if "slate" in row else episode_row(row)
            )
        else:
            raise SystemExit(f"{path}:{number}: collection must be {CLICKS} or {EPISODES}, not {collection!r}")
    clicks.sort(key=lambda row: row["sampled_at"] or 0.0)
    episodes.sort(key=lambda row: row["created_at"] or 0.0)
    return clicks, episodes


def save_export(path: pathlib.Path, clicks: list, episodes: list) -> None:
    with path.open("w") as out:
        for collection, rows in ((CLICKS, clicks), (EPISODES, episodes)):
            for row in rows:
                out.write(json.dumps({"collection": collection, **row}) + "\n")


# -- From rows to the replay's log -------------------------------------------------------------
def to_log(rows: list[dict]) -> tuple[replay.Log, list[dict], int]:
    """The log of the well-formed clicks (oldest first), those rows, and how many were skipped
    (no candidates, an offer not among them, no time)."""
    kept, candidates, actions = [], [], []
    for row in rows:
        try:
            offers = tuple(int(o) for o in str(row["candidates"]).split(","))
            action = offers.index(int(row["offer_id"]))
        except (TypeError, ValueError):
            continue
        if row["sampled_at"] is None:
            continue
        kept.append(row)
        candidates.append(offers)
        actions.append(action)

    def number(value) -> float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan

    def payouts(row, k) -> tuple | None:
        given = row.get("payouts")
        if not isinstance(given, list) or len(given) != k:
            return None
        return tuple(number(p) for p in given)

    sampled = np.array([row["sampled_at"] for row in kept], dtype=float)
    rewarded = np.array([row["feedback_at"] or row["sampled_at"] for row in kept], dtype=float)
    log = replay.Log(
        candidates=candidates,
        action=np.array(actions, dtype=int),
        probability=np.array([number(row["probability"]) for row in kept]),
        reward=np.nan_to_num(np.array([number(row["reward"]) for row in kept])),
        sampled_at=sampled,
        rewarded_at=np.maximum(rewarded, sampled),
        payouts=[payouts(row, len(c)) for row, c in zip(kept, candidates, strict=True)],
        floor=np.array([number(row.get("floor")) for row in kept]),
    )
    return log, kept, len(rows) - len(kept)


# -- Printing -----------------------------------------------------------------------------------
def _fmt(estimate: Estimate, resting_on: float, digits: int = 2, unit: str = "clicks") -> str:
    """The estimate and its interval, or "too few <unit>" when it rests on fewer than MIN_CLICKS
    (or is not finite: nothing to weigh)."""
    if resting_on < MIN_CLICKS or not all(math.isfinite(x) for x in estimate):
        return f"too few {unit}"
    value, low, high = (float(x) for x in estimate)
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _whole(ess: float) -> int:
    """An effective sample size as printed: rounded down, as the MIN_CLICKS test reads it (an ESS of
    29.6 printed as 30 beside "too few clicks" looked like a contradiction)."""
    return math.floor(ess) if math.isfinite(ess) else 0


def report_clicks(rows: list[dict], samplers: list[str], rng: np.random.Generator, lag: float, out=print) -> None:
    held_out = sum(bool(row.get("holdout")) for row in rows)
    if held_out:
        out(f"Holdout: {held_out:,} held-out clicks left out (served at random, never in the service's counters).")
        rows = [row for row in rows if not row.get("holdout")]
    log, kept, skipped = to_log(rows)
    usable = log.usable()
    logged_by = {}
    for row in kept:
        logged_by[row["sampler"]] = logged_by.get(row["sampler"], 0) + 1
    offers = {o for c in log.candidates for o in c}
    out(
        f"CPA clicks: {len(rows):,} read, {int(usable.sum()):,} with a usable logged probability"
        f" ({len(kept) - int(usable.sum()):,} without, {skipped:,} malformed), {len(offers):,} offers;"
        f" logged by {', '.join(f'{name} {count:,}' for name, count in sorted(logged_by.items())) or 'nothing'}"
    )
    if not usable.any():
        out("  Nothing to evaluate: no click with a logged probability.")
        return
    started = time.perf_counter()
    replayed = replay.replay(log, samplers, rng, lag)
    found = replay.estimates(replayed)
    took = time.perf_counter() - started
    out(
        f"Revenue per click, cents, 95 % intervals ({len(replayed.index):,} clicks replayed with counters"
        f" {lag:g} s old, in {took:.1f} s):"
    )
    out(f"  {'policy':<10}  {'IPS':<26}  {'SNIPS':<26}  {'DR':<26}  {'ESS':>8}")
    logged, replayed_clicks = replay.logged_value(replayed), len(replayed.index)
    shown = _fmt(logged, replayed_clicks)
    out(f"  {'(logged)':<10}  {shown:<26}  {shown:<26}  {'—':<26}  {replayed_clicks:>8,}")
    for estimate in found:
        ips, snips = _fmt(estimate.ips, estimate.ess), _fmt(estimate.snips, estimate.ess)
        out(
            f"  {estimate.sampler:<10}  {ips:<26}  {snips:<26}"
            f"  {_fmt(estimate.dr, replayed_clicks):<26}  {_whole(estimate.ess):>8,}"
        )
    report_replay_check(replayed, [kept[i]["sampler"] for i in replayed.index], out)
    report_click_shadows(log, kept, out)


def report_replay_check(replayed: replay.Replayed, logged_by: list[str], out=print) -> None:
    """How well the replay reproduces the logging sampler's own probabilities: a check of the
    rebuilt decision-time counters (the logged probability is what the service computed)."""
    logged_by = np.array(logged_by, dtype=object)
    for sampler in sorted(set(logged_by) & set(replayed.targets)):
        mask = logged_by == sampler
        target = replayed.targets[sampler][mask]
        gap = np.abs(target[np.arange(int(mask.sum())), replayed.action[mask]] - replayed.probability[mask])
        out(
            f"Replay check: on the {int(mask.sum()):,} clicks logged by {sampler}, the replayed {sampler} gives"
            f" the logged offer the logged probability within 0.05 for {np.mean(gap <= 0.05):.1%}"
            f" (median difference {np.median(gap):.4f})"
        )


def report_click_shadows(log: replay.Log, kept: list[dict], out=print) -> None:
    usable = log.usable()
    by_sampler: dict[str, list[tuple[int, int]]] = {}
    for i, row in enumerate(kept):
        shadow = row.get("shadow")
        if not usable[i] or not isinstance(shadow, dict) or shadow.get("offer_id") not in log.candidates[i]:
            continue
        by_sampler.setdefault(str(shadow.get("sampler")), []).append((i, log.candidates[i].index(shadow["offer_id"])))
    if not by_sampler:
        out("Shadow: no click document carries a shadow decision (`shadow`).")
        return
    out("Shadow samplers (the click documents' `shadow`), revenue per click, cents, 95 % intervals:")
    for sampler, pairs in sorted(by_sampler.items()):
        index = np.array([i for i, _ in pairs])
        agreement, ips, snips = replay.shadow_estimates(
            log.action[index], log.probability[index], log.reward[index], np.array([a for _, a in pairs])
        )
        agreed = agreement * len(index)
        out(
            f"  {sampler:<10}  on {len(index):,} clicks: agrees with the live choice {agreement:.1%};"
            f" IPS {_fmt(ips, agreed)}, SNIPS {_fmt(snips, agreed)}"
        )


def report_episodes(rows: list[dict], out=print) -> None:
    rewarded = [row for row in rows if row["rewarded"] and row["slate"]]
    with_inclusion = [row for row in rewarded if isinstance(row.get("inclusion"), dict) and row["inclusion"]]
    out(
        f"Customer episodes: {len(rows):,} read, {len(rewarded):,} rewarded,"
        f" {len(with_inclusion):,} of them with `inclusion`."
    )
    if not with_inclusion:
        out("  The episodes carry no propensities (no per-offer `inclusion`): no off-policy estimate of slates.")
        return
    episodes = slates.Episodes.of(with_inclusion)
    out("  Acceptance credited to each offer were it in every slate it is eligible for (marginal IPS / SNIPS, 95 %):")
    out(f"  {'offer':<12}  {'eligible':>8}  {'shown':>7}  {'IPS':<24}  {'SNIPS':<24}")
    for found in slates.offer_acceptance(episodes):
        out(
            f"  {found.offer:<12}  {found.eligible:>8,}  {found.shown:>7,}"
            f"  {_fmt(found.ips, found.shown, 3, 'episodes'):<24}  {_fmt(found.snips, found.shown, 3, 'episodes'):<24}"
        )
    logged = slates.slate_value(episodes, episodes.inclusion)
    out(f"  Logged policy's acceptance rate: {_fmt(logged, len(with_inclusion), 3, 'episodes')}")
    shadows = {}
    for i, row in enumerate(with_inclusion):
        shadow = row.get("shadow")
        if isinstance(shadow, dict) and isinstance(shadow.get("inclusion"), dict):
            shadows.setdefault(str(shadow.get("policy")), []).append((i, shadow))
    for policy, found in sorted(shadows.items()):
        index = np.array([i for i, _ in found])
        column = {offer: j for j, offer in enumerate(episodes.offers)}
        target = np.zeros((len(index), len(episodes.offers)))
        for row, (_, shadow) in enumerate(found):
            for offer, p in shadow["inclusion"].items():
                if offer in column:
                    target[row, column[offer]] = float(p)
        subset = slates.Episodes(
            episodes.offers, episodes.shown[index], episodes.inclusion[index], episodes.credit[index]
        )
        same = np.mean([set(s.get("slate") or []) == set(with_inclusion[i]["slate"]) for i, s in found])
        out(
            f"  Shadow agent {policy} on {len(index):,} episodes: same slate {same:.1%};"
            f" acceptance (pseudo-inverse) {_fmt(slates.slate_value(subset, target), len(index), 3, 'episodes')}"
        )


# -- Entry point --------------------------------------------------------------------------------
def arguments(argv=None) -> argparse.Namespace:
    from tools.report.__main__ import parse_since

    parser = argparse.ArgumentParser(prog="python -m tools.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--since", type=parse_since, default="30d", help="window start: 24h, 30d, or an ISO date")
    parser.add_argument("--max-clicks", type=int, default=100_000, help="newest click documents read at most")
    parser.add_argument("--max-episodes", type=int, default=50_000, help="newest episodes read at most")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="comma-separated (default: all)")
    parser.add_argument("--log", type=pathlib.Path, help="read this local DuckDB decision log")
    parser.add_argument("--project", help="read this Google Cloud project (its BigQuery log; --firestore: Firestore)")
    parser.add_argument("--dataset", default=warehouse.DEFAULT_DATASET, help="the decision log's BigQuery dataset")
    parser.add_argument("--firestore", action="store_true", help="read the Firestore documents, not the decision log")
    parser.add_argument("--export", type=pathlib.Path, help="read this JSON-lines export instead")
    parser.add_argument("--save", type=pathlib.Path, help="also write what was read to this JSON-lines file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samplers' replayed draws")
    parser.add_argument("--tenant", type=Namespace, default=ROOT, help="whose logs (default: the default tenant)")
    parser.add_argument(
        "--lag",
        type=float,
        default=None,
        help="seconds: the age of the counters a replayed decision reads (default STATS_MAX_AGE_SECONDS / 2)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.samplers.split(",") if name not in SAMPLERS]
    if unknown:
        parser.error(f"--samplers: unknown {', '.join(unknown)}; known: {', '.join(SAMPLERS)}")
    for name in ("max_clicks", "max_episodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.lag is None:
        args.lag = stats_cache.max_age_from_env() / 2
    if not (math.isfinite(args.lag) and args.lag >= 0):
        parser.error("--lag must be a number of seconds, 0 or more")
    return args


def main(argv=None, out=print) -> int:
    args = arguments(argv)
    if args.export:
        clicks, episodes = read_export(args.export)
        source, cut = f"the export {args.export}", {}
    elif not args.firestore:
        log = warehouse.choose(args.log, args.project, args.dataset)
        clicks, episodes, cut = rows.read(log, args.tenant.tenant, args.since, args.max_clicks, args.max_episodes)
        source = f"{log.description}, tenant {args.tenant.tenant}, since {args.since:%Y-%m-%d %H:%M} UTC"
    else:
        from tools.report.__main__ import connect

        source = connect(args.project)
        from shared.platform.firestore import get_db  # after connect(): the client reads the environment

        clicks, episodes, cut = read_firestore(get_db(), args.since, args.max_clicks, args.max_episodes, args.tenant)
        source += f", since {args.since:%Y-%m-%d %H:%M} UTC"
    if args.save:
        save_export(args.save, clicks, episodes)
    out(f"Off-policy evaluation from {source}.")
    for what, hit in cut.items():
        if hit:
            out(f"  (the read bound cut the oldest {what} off: raise --max-{what})")
    report_clicks(clicks, args.samplers.split(","), np.random.default_rng(args.seed), args.lag, out)
    report_episodes(episodes, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
