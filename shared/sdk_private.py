"""Every use of google-cloud-firestore's private attributes, fenced in this one module.

Each is here because a measured speed-up needs it; tests/test_sdk_private.py fails loudly, naming
the attribute, when an SDK upgrade removes or changes one. Nowhere else may touch them.
"""

from google.cloud import firestore


def snapshot_fields(snapshot: firestore.DocumentSnapshot) -> dict:
    """The snapshot's fields without the deep copy of to_dict() (about 7 us a document).
    Read-only: the caller must not change what it gets."""
    return snapshot._data
