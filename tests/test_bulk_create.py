"""bulk_create against the Firestore emulator: the same documents as the SDK's batch.create, all or nothing."""

import datetime

import pytest
from google.api_core import exceptions

from shared.batch.writer import create_documents

FIELDS = {
    "text": "OFFER_1",
    "none": None,
    "yes": True,
    "no": False,
    "count": 7,
    "share": 0.25,
    "at": datetime.datetime(2022, 5, 1, 12, 30, 15, 123456, tzinfo=datetime.UTC),
}


def test_documents_read_back_as_the_sdk_writes_them(db):
    batch = db.batch()
    batch.create(db.collection("bulk").document("by-sdk"), FIELDS)
    batch.commit()
    create_documents(db, "bulk", {"direct-1": FIELDS, "direct-2": {**FIELDS, "count": 8}})

    by_sdk = db.collection("bulk").document("by-sdk").get().to_dict()
    assert db.collection("bulk").document("direct-1").get().to_dict() == by_sdk == FIELDS
    assert db.collection("bulk").document("direct-2").get().to_dict()["count"] == 8


def test_one_existing_document_refuses_the_whole_commit(db):
    create_documents(db, "bulk", {"taken": {"n": 1}})
    with pytest.raises(exceptions.Conflict):
        create_documents(db, "bulk", {"fresh": {"n": 2}, "taken": {"n": 3}})
    assert not db.collection("bulk").document("fresh").get().exists
    assert db.collection("bulk").document("taken").get().to_dict() == {"n": 1}


@pytest.mark.parametrize("value", [{"a": 1}, ["a"], datetime.datetime(2022, 5, 1), b"x"])
def test_an_unsupported_value_names_its_field(db, value):
    with pytest.raises(TypeError, match="'odd'"):
        create_documents(db, "bulk", {"doc": {"fine": 1, "odd": value}})
