"""The decision log's CPA records (shared/platform/log_tables.py): a click document as a `decisions`
row, a reward event as an `outcomes` row. Pure."""

import json

from shared.cpa.context import FEATURES

PRODUCT = "cpa"


def _text(value) -> str | None:
    return None if value is None else str(value)


def decision(tenant: str, click: dict, holdout_share: float | None, time_us: int) -> dict:
    """The `decisions` row of a new click document (as /sample wrote it)."""
    shadow = click.get("shadow") if isinstance(click.get("shadow"), dict) else {}
    payouts = click.get("payouts")
    context = click.get("context") if isinstance(click.get("context"), dict) else {}  # or at the top level
    record = {
        "record_id": f"{tenant}/{PRODUCT}/{click['click_id']}",
        "tenant": tenant,
        "product": PRODUCT,
        "time": time_us,
        "decision_id": str(click["click_id"]),
        "policy": click["sampler"],
        "served_by": click.get("served_by", click["sampler"]),
        "holdout": bool(click.get("holdout")),
        "holdout_share": holdout_share,
        "candidates": str(click["candidates"]).split(","),
        "offer_id": str(click["offer_id"]),
        "probability": float(click["probability"]),
        "payouts": json.dumps(payouts) if payouts is not None else None,
        "floor": click.get("floor"),
        "shadow_policy": shadow.get("sampler"),
        "shadow_offer_id": _text(shadow.get("offer_id")),
        "shadow_probability": shadow.get("probability"),
        **{name: _text(click[name] if click.get(name) is not None else context.get(name)) for name in FEATURES},
    }
    return {name: value for name, value in record.items() if value is not None}


def outcome(tenant: str, click: dict, event_key: str, amount: float, total: float, late: bool, time_us: int) -> dict:
    """The `outcomes` row of one new reward event on a click."""
    return {
        "record_id": f"{tenant}/{PRODUCT}/{click['click_id']}/{event_key}",
        "tenant": tenant,
        "product": PRODUCT,
        "time": time_us,
        "decision_id": str(click["click_id"]),
        "event_id": event_key,
        "reward": float(amount),
        "total": float(total),
        "late": bool(late),
        "holdout": bool(click.get("holdout")),
    }
