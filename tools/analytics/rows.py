"""The decision log's rows as the tools have always read them: a CPA decision with its reward as the
click document `make evaluate` replays (tools/evaluate.py click_row), a customer decision with its
reward as its episode row, so the estimates are computed by the same code from either source."""

import datetime
import json

from tools.analytics import queries


def _seconds(moment) -> float | None:
    return None if moment is None else moment.timestamp()


def _inclusion(entries) -> dict | None:
    return None if entries is None else {entry["offer"]: entry["probability"] for entry in entries}


def click_row(row: dict) -> dict:
    """A `clicks` row (tools/analytics/queries.py) as tools/evaluate.py's click row."""
    shadow = None
    if row.get("shadow_policy"):
        shadow = {
            "sampler": row["shadow_policy"],
            "offer_id": int(row["shadow_offer_id"]) if row.get("shadow_offer_id") is not None else None,
            "probability": row.get("shadow_probability"),
        }
    return {
        "click_id": row.get("decision_id"),
        "offer_id": int(row["offer_id"]) if row.get("offer_id") is not None else None,
        "candidates": ",".join(row.get("candidates") or []),
        "sampler": row.get("policy"),
        "probability": row.get("probability"),
        "reward": row.get("reward"),
        "sampled_at": _seconds(row.get("time")),
        "feedback_at": _seconds(row.get("rewarded_at")),
        "payouts": json.loads(row["payouts"]) if row.get("payouts") else None,
        "floor": row.get("floor"),
        "shadow": shadow,
        "holdout": bool(row.get("holdout")),
    }


def episode_row(row: dict) -> dict:
    """An `episodes` row as tools/evaluate.py's episode row."""
    shadow = None
    if row.get("shadow_policy"):
        shadow = {
            "policy": row["shadow_policy"],
            "slate": list(row.get("shadow_slate") or []),
            "inclusion": _inclusion(row.get("shadow_inclusion")),
        }
    reward = row.get("reward")
    return {
        "created_at": _seconds(row.get("time")),
        "policy": row.get("policy"),
        "rewarded": reward is not None,
        "accepted": bool(reward and reward > 0),
        "accepted_offer": row.get("accepted_offer"),
        "slate": list(row.get("slate") or []),
        "inclusion": _inclusion(row.get("inclusion")),
        "shadow": shadow,
        "holdout": bool(row.get("holdout")),
    }


def read(warehouse, tenant: str, since, max_clicks: int, max_episodes: int) -> tuple[list, list, dict]:
    """The tenant's newest clicks and episodes of the window, as evaluate's rows (oldest first), and
    which of the two the bounds cut."""
    until = datetime.datetime.now(datetime.UTC)
    clicks = [click_row(r) for r in queries.clicks(warehouse, tenant, since, until, limit=max_clicks)]
    episodes = [episode_row(r) for r in queries.episodes(warehouse, tenant, since, until, limit=max_episodes)]
    return clicks, episodes, {"clicks": len(clicks) >= max_clicks, "episodes": len(episodes) >= max_episodes}
