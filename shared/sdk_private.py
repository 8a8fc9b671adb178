"""Every use of google-cloud-firestore's private attributes, fenced in this one module.

Each is here because a measured speed-up needs it; tests/test_sdk_private.py fails loudly, naming
the attribute, when an SDK upgrade removes or changes one. Nowhere else may touch them.
"""

from google.cloud import firestore
from google.cloud.firestore_v1.types import firestore as firestore_types

CommitRequest = firestore_types.CommitRequest.pb()


def snapshot_fields(snapshot: firestore.DocumentSnapshot) -> dict:
    """The snapshot's fields without the deep copy of to_dict() (about 7 us a document).
    Read-only: the caller must not change what it gets."""
    return snapshot._data


def database_path(db: firestore.Client) -> str:
    """projects/<p>/databases/<d>, as write protobufs name their documents."""
    return db._database_string


def commit_raw(db: firestore.Client, request) -> None:
    """Send a CommitRequest protobuf built by hand through the client's own transport, with its
    metadata (the emulator's credentials included). Building the protobuf directly costs a few us
    a document; the SDK's WriteBatch costs about 100 us (proto-plus wrapping of every field)."""
    db._firestore_api.commit(request=firestore_types.CommitRequest.wrap(request), metadata=db._rpc_metadata)
