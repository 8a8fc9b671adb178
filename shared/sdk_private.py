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


def bound_every_call(db: firestore.Client, timeout: float, retry_budget: float, rollback_timeout: float) -> None:
    """Bound every RPC of the client: at most `timeout` seconds from its first attempt
    (`rollback_timeout` for Rollback), and no new attempt after `retry_budget` seconds.

    The SDK's defaults (60 s to 300 s per call) live on the GAPIC transport's wrapped methods and
    the public API has no client-wide setting; transactions' begin and commit take no per-call
    timeout at all. Each method keeps its own retry predicate and backoff.
    """
    transport = db._firestore_api._transport
    long_lived = (transport.listen, transport.write)  # snapshot listeners' streams, unused here
    for method, wrapped in transport._wrapped_methods.items():
        if method in long_lived:
            continue
        rollback = method == transport.rollback
        wrapped._timeout = rollback_timeout if rollback else timeout
        if wrapped._retry is not None:
            wrapped._retry = wrapped._retry.with_timeout(rollback_timeout if rollback else retry_budget)


def call_bounds(db: firestore.Client, names: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """{RPC name: (timeout, retry budget)} of the named RPCs (`commit`, `rollback`, ...) of the client."""
    transport = db._firestore_api._transport
    bounds = {}
    for name in names:
        wrapped = transport._wrapped_methods[getattr(transport, name)]
        bounds[name] = (wrapped._timeout, wrapped._retry.timeout if wrapped._retry is not None else None)
    return bounds
