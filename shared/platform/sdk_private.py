"""Every use of google-cloud-firestore's private attributes, fenced in this one module.

Each is here because a measured speed-up needs it; tests/store/test_sdk_private.py fails loudly, naming
the attribute, when an SDK upgrade removes or changes one. Nowhere else may touch them.
"""

from collections.abc import Iterator
from typing import Any

import grpc
import grpc.experimental
from google.cloud import firestore
from google.cloud.firestore_v1 import base_client
from google.cloud.firestore_v1.types import firestore as firestore_types

# gRPC's experimental channel option: a server-streaming call (BatchGetDocuments, RunQuery) is read on
# the thread that iterates it, not handed over message by message from a channel spin thread.
STREAMS_ON_THE_CALLING_THREAD = (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1)


def snapshot_fields(snapshot: firestore.DocumentSnapshot) -> dict:
    """The snapshot's fields without the deep copy of to_dict(), which a roll-up would pay on every
    shard it sums (docs/data-model.md has the cost). Read-only: the caller must not change what it gets."""
    return snapshot._data


def read_streams_on_the_calling_thread() -> None:
    """Every Firestore client whose channel is made after this reads its streamed answers (get_all,
    a transaction's get, a query, found_fields) on the thread that iterates them: no spin thread, no
    lock hand-off per document. Reading the 800 shards of 100 counters took 16 ms of CPU instead of
    57 ms, and 100 documents through get_all 13 ms instead of 21 (`python -m bench.stream_reads`):
    a roll-up's CPU competes with requests for the interpreter. The SDK builds its channels from two module
    lists of options, one for Firestore and one for the emulator; the option is added to both. A
    call on such a channel cannot be a grpc.Future, which the SDK's reads do not use."""
    for options in (base_client._DEFAULT_CHANNEL_OPTIONS, base_client._GRPC_MSG_SIZE_OPTIONS):
        if STREAMS_ON_THE_CALLING_THREAD not in options:
            options.append(STREAMS_ON_THE_CALLING_THREAD)


def found_fields(db: firestore.Client, refs: list[firestore.DocumentReference]) -> Iterator[tuple[str, Any]]:
    """(document path, its fields as the raw protobuf map of Value messages) for every document of
    `refs` that exists, read in one BatchGetDocuments call as get_all makes it (same request, same
    retry and deadline), but without building a DocumentSnapshot: get_all decodes every field of
    every document through proto-plus, which was most of a roll-up's CPU (about 120 ms for the 800
    shards of 100 counters, against 35 ms read raw; a background roll-up competes with requests for
    the GIL). Read-only."""
    prefix = f"{db._database_string}/documents/"
    request = {"database": db._database_string, "documents": [prefix + ref.path for ref in refs]}
    for response in db._firestore_api.batch_get_documents(request=request, metadata=db._rpc_metadata):
        pb = firestore_types.BatchGetDocumentsResponse.pb(response)
        if pb.WhichOneof("result") == "found":
            yield pb.found.name[len(prefix) :], pb.found.fields


def observe_documents(db: firestore.Client, on_read, on_write) -> None:
    """Call on_read(document name) for every document a read RPC returns (found or missing; a
    query with no result counts one, as billed) and on_write(document name) for every write a
    commit or batch_write sends, whichever part of the SDK sends it. The capacity
    benchmark counts Firestore operations this way; the service never calls it."""
    api = db._firestore_api
    batch_get, commit, batch_write, run_query = api.batch_get_documents, api.commit, api.batch_write, api.run_query

    def counted_batch_get(*args, **kwargs):
        for response in batch_get(*args, **kwargs):
            pb = firestore_types.BatchGetDocumentsResponse.pb(response)
            kind = pb.WhichOneof("result")
            if kind:
                on_read(pb.found.name if kind == "found" else pb.missing)
            yield response

    def counted_query(*args, **kwargs):
        found = 0
        for response in run_query(*args, **kwargs):
            pb = firestore_types.RunQueryResponse.pb(response)
            if pb.HasField("document"):
                found += 1
                on_read(pb.document.name)
            yield response
        if not found:
            on_read("(empty query)")

    def _names(request) -> list[str]:
        writes = request.get("writes", []) if isinstance(request, dict) else request.writes
        names = []
        for write in writes:
            pb = write if hasattr(write, "WhichOneof") else type(write).pb(write)
            operation = pb.WhichOneof("operation")
            names.append(pb.update.name if operation == "update" else pb.delete if operation == "delete" else "?")
        return names

    def counted_commit(*args, request=None, **kwargs):
        for name in _names(request):
            on_write(name)
        return commit(*args, request=request, **kwargs)

    def counted_batch_write(*args, request=None, **kwargs):
        for name in _names(request):
            on_write(name)
        return batch_write(*args, request=request, **kwargs)

    api.batch_get_documents = counted_batch_get
    api.run_query = counted_query
    api.commit = counted_commit
    api.batch_write = counted_batch_write


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
