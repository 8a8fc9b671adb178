"""A click's reward events: the pure rule /feedback applies (no I/O); its window is
shared/platform/windows.py's.

A click's reward is the sum of its reward events (`event_id` -> amount; feedback without an
event id is the event DEFAULT_EVENT). The offer's counters hold, per click, the sums of the
click's TOTAL (one conversion per click, its payout plain and in logs), so a new event moves them
by `amounts(new total) - amounts(old total)`.
"""

import datetime
import math
from dataclasses import dataclass

from shared.platform import errors
from shared.platform.windows import is_settled

CLICK_WINDOW_ENV = "CLICK_REWARD_WINDOW_SECONDS"
DEFAULT_CLICK_WINDOW_SECONDS = 86_400  # one day (docs: "Rewards and drift")

# Event ids become keys of a map on the click document: a bounded, plain charset.
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
DEFAULT_EVENT = "_"  # feedback without event_id; the pattern above cannot produce it
MAX_EVENTS_PER_CLICK = 32
CLICK_FIELDS = ("conversions", "reward", "reward_sq", "log_conversions", "log_reward", "log_reward_sq")


def click_amounts(total: float) -> dict[str, float]:
    """What a click whose rewards sum to `total` contributes to its offer's payout counters: one
    conversion when it earned anything, its payout plain and in logs (the lognormal posterior of
    `thompson`). A click that earned nothing contributes nothing (its trial is counted at /sample)."""
    if total <= 0:
        return dict.fromkeys(CLICK_FIELDS, 0)
    log_total = math.log(total)
    return {
        "conversions": 1,
        "reward": total,
        "reward_sq": total * total,
        "log_conversions": 1,
        "log_reward": log_total,
        "log_reward_sq": log_total * log_total,
    }


def click_deltas(old_total: float, new_total: float) -> dict[str, float]:
    """What the offer's counters must move by when a click's total goes from old to new."""
    old, new = click_amounts(old_total), click_amounts(new_total)
    return {field: new[field] - old[field] for field in new}


def whole(amount: float) -> int | float:
    """Cents as an int when whole, so answers read 250 rather than 250.0 and the counters' sums of
    whole cents stay integers."""
    return int(amount) if float(amount).is_integer() else amount


@dataclass(frozen=True)
class EventOutcome:
    """One reward event applied to a click: the click's events and total after it, the event's
    own record, and what the offer's counters must move by (nothing for a replay)."""

    events: dict
    total: int | float
    event: dict
    replay: bool
    deltas: dict


def events_of(click: dict) -> dict:
    """The click's reward events. A click rewarded before events existed holds its one reward as
    the default event, so it keeps answering and conflicting as it always did."""
    if click.get("events"):
        return dict(click["events"])
    if click.get("reward") is not None:
        return {DEFAULT_EVENT: {"amount": click["reward"], "total": click["reward"], "late": False, "at": None}}
    return {}


def add_event(
    click: dict, event_id: str | None, amount: float, now: datetime.datetime, window: float, max_total: float
) -> EventOutcome:
    """Apply one reward event to a click document (as read in the feedback's transaction).

    The same event id (or, without one, the default event) with the same amount is a replay: the
    answer it got first, no counter moves. With another amount it is a Conflict naming `reward`.
    A new event past MAX_EVENTS_PER_CLICK, or one taking the click's total above `max_total`, is a
    Conflict too (the same event on another click would be fine). A new event is late when the
    click's window has passed (`sampled_at` + `window` < `now`)."""
    events = events_of(click)
    key = event_id or DEFAULT_EVENT
    amount = whole(amount)
    named = f"event {event_id}" if event_id else "the reward without event_id"
    if key in events:
        recorded = events[key]
        if recorded["amount"] == amount:
            return EventOutcome(events, recorded["total"], recorded, True, {})
        raise errors.Conflict(
            f"click {click['click_id']}: {named} was already recorded with reward {recorded['amount']}, not {amount}",
            "reward",
        )
    if len(events) >= MAX_EVENTS_PER_CLICK:
        raise errors.Conflict(
            f"click {click['click_id']} already has {MAX_EVENTS_PER_CLICK} reward events, the most one click may have",
            "event_id",
        )
    old_total = click.get("reward") or 0
    total = whole(old_total + amount)
    if total > max_total:
        raise errors.Conflict(
            f"click {click['click_id']}: its rewards would sum to {total} cents, above {whole(max_total)}", "reward"
        )
    event = {"amount": amount, "total": total, "late": is_settled(click.get("sampled_at"), now, window), "at": now}
    return EventOutcome({**events, key: event}, total, event, False, click_deltas(old_total, total))
