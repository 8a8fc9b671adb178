"""The decision log's customer records (shared/platform/log_tables.py): an episode document as a
`decisions` row, its reward as an `outcomes` row. Pure."""

from shared.customer.records import slate_of

PRODUCT = "customer"


def _inclusion(found) -> list[dict] | None:
    if not isinstance(found, dict):
        return None
    return [{"offer": str(offer), "probability": float(p)} for offer, p in sorted(found.items())]


def decision(tenant: str, episode_id: str, episode: dict, holdout_share: float | None, time_us: int) -> dict:
    """The `decisions` row of a new /predict episode document."""
    shadow = episode.get("shadow") if isinstance(episode.get("shadow"), dict) else {}
    eligible = episode.get("eligible_offers") or ""
    record = {
        "record_id": f"{tenant}/{PRODUCT}/{episode_id}",
        "tenant": tenant,
        "product": PRODUCT,
        "time": time_us,
        "decision_id": episode_id,
        "policy": episode["policy"],
        "served_by": episode.get("served_by", episode["policy"]),
        "holdout": bool(episode.get("holdout")),
        "holdout_share": holdout_share,
        "candidates": [offer for offer in eligible.split(",") if offer],
        "slate": slate_of(episode),
        "inclusion": _inclusion(episode.get("inclusion")),
        "segment": episode.get("segment"),
        "agent_version": episode.get("agent_version"),
        "shadow_policy": shadow.get("policy"),
        "shadow_slate": list(shadow["slate"]) if shadow.get("slate") else None,
        "shadow_inclusion": _inclusion(shadow.get("inclusion")),
    }
    return {name: value for name, value in record.items() if value is not None}


def outcome(tenant: str, episode_id: str, rewarded: dict, time_us: int) -> dict:
    """The `outcomes` row of an episode's reward, from the episode as rewarded (`accepted`,
    `accepted_offer`, `late`); one per episode: a replay records nothing."""
    accepted = bool(rewarded.get("accepted"))
    record = {
        "record_id": f"{tenant}/{PRODUCT}/{episode_id}/reward",
        "tenant": tenant,
        "product": PRODUCT,
        "time": time_us,
        "decision_id": episode_id,
        "reward": 1.0 if accepted else 0.0,
        "accepted_offer": rewarded.get("accepted_offer"),
        "late": bool(rewarded.get("late")),
        "holdout": bool(rewarded.get("holdout")),
    }
    return {name: value for name, value in record.items() if value is not None}
