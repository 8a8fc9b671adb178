"""The one place that checks every private google-cloud-firestore attribute the code relies on
(shared/platform/sdk_private.py). An SDK upgrade that removes or changes one fails here, by name."""

from shared.platform import sdk_private


def test_snapshot_fields_are_the_snapshots_own_data(db):
    ref = db.collection("sdk_private").document("one")
    ref.set({"clicks": 3, "nested": {"shown": 2}})
    snapshot = ref.get()
    assert sdk_private.snapshot_fields(snapshot) == snapshot.to_dict() == {"clicks": 3, "nested": {"shown": 2}}


def test_every_call_of_the_request_client_is_bounded(db):
    from shared.platform.firestore import CALL_TIMEOUT_S, RETRY_BUDGET_S, ROLLBACK_TIMEOUT_S, get_request_db

    get_request_db.cache_clear()
    names = ["get_document", "batch_get_documents", "run_query", "begin_transaction", "commit", "rollback"]
    bounds = sdk_private.call_bounds(get_request_db(), names)
    get_request_db.cache_clear()
    assert bounds.pop("rollback") == (ROLLBACK_TIMEOUT_S, ROLLBACK_TIMEOUT_S)
    assert set(bounds.values()) == {(CALL_TIMEOUT_S, RETRY_BUDGET_S)}


def test_observe_documents_sees_the_clients_reads_and_writes(db):
    reads, writes = [], []
    sdk_private.observe_documents(db, reads.append, writes.append)
    ref = db.collection("sdk_private").document("observed")
    ref.set({"value": 1})
    ref.get()
    assert [name.rsplit("/", 2)[-2:] for name in writes] == [["sdk_private", "observed"]]
    assert [name.rsplit("/", 2)[-2:] for name in reads] == [["sdk_private", "observed"]]


def test_found_fields_are_the_raw_fields_of_the_documents_that_exist(db):
    here, gone = db.collection("sdk_private").document("found"), db.collection("sdk_private").document("gone")
    here.set({"c": {"clicks": 3, "reward": 2.5}})
    gone.delete()
    found = dict(sdk_private.found_fields(db, [here, gone]))
    assert list(found) == [here.path]
    counted = found[here.path]["c"].map_value.fields
    assert (counted["clicks"].integer_value, counted["reward"].double_value) == (3, 2.5)


def test_a_client_made_after_read_streams_on_the_calling_thread_starts_no_thread_to_read(db, monkeypatch):
    """Without the option gRPC starts a spin thread to hand a streamed answer over; with it, get_all
    and a query are read on the calling thread. Fails if the SDK stops building its channels from the
    option lists, or gRPC drops the option."""
    import threading

    from google.cloud import firestore
    from google.cloud.firestore_v1 import base_client

    for name in ("_DEFAULT_CHANNEL_OPTIONS", "_GRPC_MSG_SIZE_OPTIONS"):  # as the SDK ships them
        shipped = [
            option for option in getattr(base_client, name) if option != sdk_private.STREAMS_ON_THE_CALLING_THREAD
        ]
        monkeypatch.setattr(base_client, name, shipped)
    refs = [db.collection("sdk_private").document(f"stream-{i}") for i in range(3)]
    for i, ref in enumerate(refs):
        ref.set({"i": i})

    def threads_started_by(read) -> tuple[int, object]:
        started = []
        original = threading.Thread.start
        monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self) or original(self))
        try:
            result = read()
            return len(started), result
        finally:
            monkeypatch.setattr(threading.Thread, "start", original)

    plain = firestore.Client(project=db.project)
    assert threads_started_by(lambda: list(plain.get_all(refs)))[0] >= 1  # the check can fail
    sdk_private.read_streams_on_the_calling_thread()
    client = firestore.Client(project=db.project)
    count, got = threads_started_by(lambda: sorted(s.get("i") for s in client.get_all(refs)))
    assert count == 0 and got == [0, 1, 2]
    count, got = threads_started_by(lambda: [s.id for s in client.collection("sdk_private").limit(2).stream()])
    assert count == 0 and len(got) == 2
