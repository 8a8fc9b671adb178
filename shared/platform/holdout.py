"""The holdout: a share of each tenant's decisions, per product, served by the product's baseline
rather than its learning policy, logged as holdout and kept out of learning, so that the lift of the
learning policy over the baseline is measured on randomised traffic (docs/analytics.md). Pure.

Assignment is a hash of (tenant, product, decision id), not a draw from the live generator: the
live decisions are the same with or without a holdout, a retried request lands on the same side,
and the baseline's uniform choice comes from further bits of the same hash. The share is the
tenant's serving config's `holdout` (0 <= share <= MAX_SHARE), default HOLDOUT_SHARE from the
environment, else DEFAULT_SHARE.
"""

import hashlib
import os

DEFAULT_SHARE = 0.02
MAX_SHARE = 0.5
PREFIX = "holdout:"  # served_by of a held-out decision: holdout:<baseline>
_SPAN = float(2**64)


def _hash(tenant: str, product: str, decision_id: str) -> bytes:
    return hashlib.sha256(f"{tenant}|{product}|{decision_id}".encode()).digest()


def assigned(share: float, tenant: str, product: str, decision_id) -> bool:
    """Whether this decision is in the holdout (probability `share`, independent of everything else)."""
    if share <= 0:
        return False
    return int.from_bytes(_hash(tenant, product, str(decision_id))[:8], "big") / _SPAN < share


def uniform_index(tenant: str, product: str, decision_id, k: int) -> int:
    """The baseline's uniformly random choice among k candidates for this decision."""
    return int.from_bytes(_hash(tenant, product, str(decision_id))[8:16], "big") % k


def share_from_env() -> float:
    raw = os.environ.get("HOLDOUT_SHARE", "").strip()
    share = float(raw) if raw else DEFAULT_SHARE
    if not 0 <= share <= MAX_SHARE:
        raise ValueError(f"HOLDOUT_SHARE={raw!r} must be between 0 and {MAX_SHARE}")
    return share


def parse_share(value, name: str, problems: list[str]) -> float | None:
    """A config section's `holdout` share (a config.Section rule); None when absent or not valid
    (then the environment's default applies: `share_or_default`)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_SHARE:
        problems.append(f"{name}: {str(value)[:60]!r} is not a share between 0 and {MAX_SHARE}")
        return None
    return float(value)


def share_or_default(share: float | None) -> float:
    """The configured share, or the environment's default where none is configured."""
    return share_from_env() if share is None else share


def learns_from(decision: dict) -> bool:
    """Whether a decision's document (a click, an episode) may move the statistics: not one held out."""
    return not decision.get("holdout")


class HoldoutShare:
    """For a product's serving settings (a dataclass with a `holdout` field): the share in force."""

    holdout: float | None

    @property
    def holdout_share(self) -> float:
        return share_or_default(self.holdout)
