"""`make promote`: switch a tenant to its shadow challenger only on evidence from the decision log.

    python -m tools.promote [--tenant T] [--product cpa|customer] [--since 7d] [--dry-run]
                            [--who NAME] [--min-decisions 500] [--log FILE | --project ID]

From the tenant's decisions in the window (the decision log: tools/analytics/warehouse.py), the ones
the live policy served outside the holdout with the challenger logged beside them (`shadow`):
- the live policy's value: its mean reward on those decisions (on-policy, with a 95 % interval);
- the challenger's value: doubly robust with a 95 % interval (CPA: the challenger's own draw, which
  is independent of the live one given the statistics, as the target, and the replay's reward model
  of shared/cpa/replay.py; customer slates: the challenger's inclusion probabilities and each offer's
  acceptance per time shown, shared/customer/evaluation.py).
Promoted only when the challenger's lower bound is above the live policy's value, on at least
--min-decisions decisions: the tenant's config/serving then names the challenger as the policy
(cpa.sampler / customer.policy) and the old live policy as the shadow, and `promotions/{id}` in the
tenant's namespace records who, when, the evidence and the config before, in the same transaction. With
--dry-run it prints the decision and writes nothing. Firestore is found as every tool finds it
(tools/target.py).
"""

import argparse
import collections
import datetime
import getpass
import json
import math
import pathlib
import sys
from dataclasses import asdict, dataclass

import numpy as np
from google.cloud import firestore

from shared.cpa import replay
from shared.customer import evaluation as slates
from shared.maths import estimators, lift
from shared.maths.estimators import Estimate
from shared.platform import config, stats_cache
from shared.platform.namespace import ROOT, Namespace
from tools import evaluate, target
from tools.analytics import queries, rows, warehouse
from tools.report.__main__ import parse_since

PROMOTIONS = "promotions"  # in the tenant's namespace
FIELDS = {"cpa": ("sampler", "shadow"), "customer": ("policy", "shadow")}  # (live, shadow) config fields


@dataclass(frozen=True)
class Evidence:
    product: str
    live: str | None
    challenger: str | None
    decisions: int
    live_value: Estimate
    challenger_value: Estimate
    since: str
    until: str
    source: str

    @property
    def promote(self) -> bool:
        return (
            bool(self.challenger)
            and math.isfinite(self.challenger_value.low)
            and (self.challenger_value.low > self.live_value.value)
        )


def _most_common(values) -> str | None:
    found = collections.Counter(value for value in values if value)
    return found.most_common(1)[0][0] if found else None


def cpa_evidence(
    click_rows: list[dict], challenger: str | None, lag: float
) -> tuple[str | None, str | None, int, Estimate, Estimate]:
    """(live, challenger, decisions, live value, challenger value) from evaluate's click rows."""
    learning = [row for row in click_rows if not row.get("holdout")]
    log, kept, _ = evaluate.to_log(learning)
    live = _most_common(row["sampler"] for row in kept)
    challenger = challenger or _most_common((row.get("shadow") or {}).get("sampler") for row in kept)
    nan = lift.NAN
    usable = log.usable()
    chosen = [
        i
        for i, row in enumerate(kept)
        if usable[i]
        and row["sampler"] == live
        and (row.get("shadow") or {}).get("sampler") == challenger
        and (row.get("shadow") or {}).get("offer_id") in log.candidates[i]
    ]
    if not chosen or challenger is None:
        return live, challenger, 0, nan, nan
    replayed = replay.replay(log, [], np.random.default_rng(0), lag)  # the reward model of every usable click
    position = {int(i): n for n, i in enumerate(replayed.index)}
    index = np.array([position[i] for i in chosen])
    actions, propensities = replayed.action[index], replayed.probability[index]
    rewards, model = replayed.reward[index], replayed.model[index]
    target_matrix = np.zeros_like(model)
    shadow_index = [log.candidates[i].index(kept[i]["shadow"]["offer_id"]) for i in chosen]
    target_matrix[np.arange(len(chosen)), shadow_index] = 1.0
    challenger_value = estimators.doubly_robust(actions, propensities, rewards, target_matrix, model)
    return live, challenger, len(chosen), estimators.mean_interval(rewards), challenger_value


def customer_evidence(
    episode_rows: list[dict], challenger: str | None
) -> tuple[str | None, str | None, int, Estimate, Estimate]:
    learning = [row for row in episode_rows if not row.get("holdout") and row["rewarded"] and row["slate"]]
    live = _most_common(row["policy"] for row in learning)
    challenger = challenger or _most_common((row.get("shadow") or {}).get("policy") for row in learning)
    chosen = [
        row
        for row in learning
        if row["policy"] == live
        and isinstance(row.get("inclusion"), dict)
        and (row.get("shadow") or {}).get("policy") == challenger
        and isinstance(row["shadow"].get("inclusion"), dict)
    ]
    nan = lift.NAN
    if not chosen or challenger is None:
        return live, challenger, 0, nan, nan
    episodes = slates.Episodes.of(chosen)
    column = {offer: j for j, offer in enumerate(episodes.offers)}
    target_inclusion = np.zeros_like(episodes.inclusion)
    for i, row in enumerate(chosen):
        for offer, p in row["shadow"]["inclusion"].items():
            if offer in column:
                target_inclusion[i, column[offer]] = float(p)
    live_value = estimators.mean_interval(episodes.credit.sum(axis=1))
    value = slates.slate_doubly_robust(episodes, target_inclusion, slates.offer_model(episodes))
    return live, challenger, len(chosen), live_value, value


def gather(source, tenant: str, product: str, since, until, challenger: str | None, lag: float) -> Evidence:
    if product == "cpa":
        found = cpa_evidence([rows.click_row(r) for r in queries.clicks(source, tenant, since, until)], challenger, lag)
    else:
        found = customer_evidence(
            [rows.episode_row(r) for r in queries.episodes(source, tenant, since, until)], challenger
        )
    return Evidence(product, *found, since.isoformat(), until.isoformat(), source.description)


def apply(db, space: Namespace, evidence: Evidence, who: str) -> str:
    """Switch the tenant's serving config to the challenger and record the promotion, in one
    transaction (a change to the config made meanwhile, such as `make caps`, is read, not lost);
    returns the promotion's document id."""
    config_ref = db.document(space.path(config.SERVING_DOCUMENT))
    promotion_ref = db.collection(space.path(PROMOTIONS)).document()
    policy_field, shadow_field = FIELDS[evidence.product]

    @firestore.transactional
    def switch(transaction) -> None:
        before = config_ref.get(transaction=transaction).to_dict() or {}
        section = dict(before.get(evidence.product) or {})
        section.update({policy_field: evidence.challenger, shadow_field: evidence.live})
        transaction.set(config_ref, {**before, evidence.product: section})
        promotion = {
            "who": who,
            "at": datetime.datetime.now(datetime.UTC),
            "product": evidence.product,
            "from": evidence.live,
            "to": evidence.challenger,
            "evidence": _plain(evidence),
            "config_before": before,
        }
        transaction.create(promotion_ref, promotion)

    switch(db.transaction())
    return promotion_ref.id


def _plain(evidence: Evidence) -> dict:
    found = asdict(evidence)
    for name in ("live_value", "challenger_value"):
        found[name] = dict(
            zip(("value", "low", "high"), (None if math.isnan(x) else x for x in found[name]), strict=True)
        )
    return found


def _fmt(estimate: Estimate) -> str:
    return "—" if not math.isfinite(estimate.low) else f"{estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]"


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.promote", description=__doc__.split("\n")[0])
    parser.add_argument("--tenant", type=Namespace, default=ROOT, help="whose policy (default: the default tenant)")
    parser.add_argument("--product", choices=sorted(FIELDS), default="cpa")
    parser.add_argument("--since", type=parse_since, default="7d", help="window start: 24h, 7d, or an ISO date")
    parser.add_argument("--challenger", help="the shadow policy to weigh (default: the one most logged)")
    parser.add_argument("--min-decisions", type=int, default=500, help="fewer decisions: never promoted")
    parser.add_argument("--dry-run", action="store_true", help="print the decision, change nothing")
    parser.add_argument("--who", default=getpass.getuser(), help="recorded with the promotion (default: your login)")
    parser.add_argument("--log", type=pathlib.Path, help="read this local DuckDB decision log")
    parser.add_argument("--project", help="read this project's BigQuery log and write its Firestore")
    parser.add_argument("--dataset", default=warehouse.DEFAULT_DATASET, help="the log's BigQuery dataset")
    return parser.parse_args(argv)


def main(argv=None, out=print) -> int:
    args = arguments(argv)
    source = warehouse.choose(args.log, args.project, args.dataset)
    until = datetime.datetime.now(datetime.UTC)
    lag = stats_cache.max_age_from_env() / 2
    evidence = gather(source, args.tenant.tenant, args.product, args.since, until, args.challenger, lag)
    out(
        f"{args.product} of tenant {args.tenant.tenant}, from {evidence.source}, {evidence.since} to {evidence.until}:"
        f" live {evidence.live or '—'}, challenger {evidence.challenger or '—'} on {evidence.decisions:,} decisions"
    )
    out(f"  live policy's value: {_fmt(evidence.live_value)}")
    out(f"  challenger, doubly robust: {_fmt(evidence.challenger_value)}")
    enough = evidence.decisions >= args.min_decisions
    if not (enough and evidence.promote):
        why = (
            f"fewer than {args.min_decisions} decisions"
            if not enough
            else "its lower bound does not beat the live value"
        )
        out(f"Decision: not promoted ({why}).")
        return 0
    if args.dry_run:
        out(f"Decision: promote {evidence.challenger} over {evidence.live} (dry run: nothing changed).")
        return 0
    target.connect(args.project, "start `make run`, or pass --project ID")
    from shared.platform.firestore import get_db  # after connect(): the client reads the environment

    promotion = apply(get_db(), args.tenant, evidence, args.who)
    out(
        f"Decision: promoted {evidence.challenger} over {evidence.live} as {args.who};"
        f" evidence in {args.tenant.path(PROMOTIONS)}/{promotion}"
    )
    out(json.dumps(_plain(evidence)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
