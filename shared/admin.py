"""What an operator may do to both products' statistics: reset one offer's or one segment's counter,
its old totals archived first. The admin function (`admin_reset`) and `make reset` call this."""

from google.cloud import firestore

from shared.cpa import reset as cpa_reset
from shared.customer import reset as customer_reset
from shared.platform import counter_reset

TARGETS = {"offer": cpa_reset.counter_of, "segment": customer_reset.counter_of}


def counter_of(kind: str, key: str) -> str:
    """The counter path of `offer=<id>` or `segment=<band|region|gender>`; ValueError otherwise."""
    if kind not in TARGETS:
        raise ValueError("say offer=<id> or segment=<age band|region|gender>")
    return TARGETS[kind](key)


def reset(db: firestore.Client, kind: str, key: str, who: str, reason: str = "") -> counter_reset.Archive:
    """Archive then zero the named counter."""
    return counter_reset.reset(db, counter_of(kind, key), kind, key, who, reason)
