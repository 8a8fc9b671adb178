"""What an operator may do to both products' statistics: reset one offer's or one segment's counter,
its old totals archived first. The admin function (`admin_reset`) and `make reset` call this."""

from google.cloud import firestore

from shared.cpa import reset as cpa_reset
from shared.customer import reset as customer_reset
from shared.platform import counter_reset
from shared.platform.namespace import ROOT, Namespace

TARGETS = {"offer": cpa_reset.counter_of, "segment": customer_reset.counter_of}


def counter_of(kind: str, key: str, space: Namespace = ROOT) -> str:
    """The counter path of `offer=<id>` or `segment=<band|region|gender>` of the tenant in `space`;
    ValueError otherwise."""
    if kind not in TARGETS:
        raise ValueError("say offer=<id> or segment=<age band|region|gender>")
    return TARGETS[kind](key, space)


def reset(
    db: firestore.Client, kind: str, key: str, who: str, reason: str = "", space: Namespace = ROOT
) -> counter_reset.Archive:
    """Archive then zero the named counter of the tenant in `space` (its archive is the tenant's too)."""
    return counter_reset.reset(db, counter_of(kind, key, space), kind, key, who, reason)
