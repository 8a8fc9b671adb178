"""Reward windows: how long after a decision a reward still counts as on time. Pure, no I/O.

Settlement is lazy. A decision is counted as a trial in the commit that records it (a click in
`/sample`, an episode's `shown` in `/predict`), so its default reward (0, "not accepted") is what
the counters already hold: settling it at the end of its window needs no write at all. A
decision is settled once `now - decided_at` exceeds its product's window; a reward that arrives
after that is late, recorded as such, and applied to the counters as the correction it is.
"""

import datetime
import math
import os

MAX_WINDOW_SECONDS = 366 * 86_400  # beyond every retention default: a late reward needs its document


def window_seconds(env_name: str, default: float) -> float:
    """A reward window from the environment, in seconds; ValueError naming the variable when it
    is not a number in (0, MAX_WINDOW_SECONDS]."""
    raw = os.environ.get(env_name)
    if raw is None or not raw.strip():
        return float(default)
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{env_name}={raw!r} is not a number of seconds") from None
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_WINDOW_SECONDS):
        raise ValueError(f"{env_name}={raw!r} must be above 0 and at most {MAX_WINDOW_SECONDS} seconds")
    return seconds


def utc_now() -> datetime.datetime:
    """The stores' clock (tests pass their own, to step past a window without waiting)."""
    return datetime.datetime.now(datetime.UTC)


def is_settled(decided_at: datetime.datetime | None, now: datetime.datetime, window: float) -> bool:
    """Whether the decision's window has passed, so that it stands at its default reward and a
    reward arriving now is late. A decision with no time (none in this service) never settles."""
    return decided_at is not None and (now - decided_at).total_seconds() > window
