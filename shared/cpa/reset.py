"""Which CPA counter a statistics reset names: `offer=<id>` (shared/platform/counter_reset.py)."""

from shared.cpa.store import offer_counter
from shared.platform.namespace import ROOT, Namespace


def counter_of(key: str, space: Namespace = ROOT) -> str:
    """The counter path of offer `key`; ValueError when it is not an offer id."""
    if not key.isdigit() or len(key) > 19:
        raise ValueError("offer must be a non-negative integer")
    return offer_counter(int(key), space)
