"""Which customer counter a statistics reset names: `segment=<band|region|gender>`
(shared/platform/counter_reset.py)."""

from shared.customer.store import segment_counter
from shared.platform.namespace import ROOT, Namespace


def counter_of(key: str, space: Namespace = ROOT) -> str:
    """The counter path of segment `key`; ValueError when it does not look like one."""
    if key.count("|") != 2 or len(key) > 100:
        raise ValueError("segment must look like 30-44|Europa|M (age band|region|gender)")
    return segment_counter(key, space)
