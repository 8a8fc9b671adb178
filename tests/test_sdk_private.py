"""The one place that checks every private google-cloud-firestore attribute the code relies on
(shared/platform/sdk_private.py). An SDK upgrade that removes or changes one fails here, by name."""

import pathlib
import re

from shared.platform import sdk_private


def test_snapshot_fields_are_the_snapshots_own_data(db):
    ref = db.collection("sdk_private").document("one")
    ref.set({"clicks": 3, "nested": {"shown": 2}})
    snapshot = ref.get()
    assert sdk_private.snapshot_fields(snapshot) == snapshot.to_dict() == {"clicks": 3, "nested": {"shown": 2}}


def test_nothing_outside_sdk_private_touches_private_attributes():
    root = pathlib.Path(__file__).resolve().parent.parent
    private = re.compile(r"\._data\b|_firestore_api|_rpc_metadata|_database_string")
    offenders = [
        str(path.relative_to(root))
        for folder in ("shared", "functions")
        for path in (root / folder).rglob("*.py")
        if path.name != "sdk_private.py" and private.search(path.read_text())
    ]
    assert not offenders, f"private SDK attributes used outside shared/platform/sdk_private.py: {offenders}"


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
