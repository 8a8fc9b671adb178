"""The one place that checks every private google-cloud-firestore attribute the code relies on
(shared/sdk_private.py). An SDK upgrade that removes or changes one fails here, by name."""

import pathlib
import re

from shared import sdk_private


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
    assert not offenders, f"private SDK attributes used outside shared/sdk_private.py: {offenders}"
