"""shared/batch/writer.py: create-only writes through the public BulkWriter, against the Firestore
emulator (its ramp, pure, in tests/unit/test_batch_writer.py)."""

import datetime
import time

import pytest

from shared.batch import writer
from shared.batch.writer import Ramp, create_new

FIELDS = {
    "text": "OFFER_1",
    "none": None,
    "yes": True,
    "count": 7,
    "share": 0.25,
    "at": datetime.datetime(2022, 5, 1, 12, 30, 15, 123456, tzinfo=datetime.UTC),
}
FAST = Ramp(initial=100_000, maximum=100_000)  # the emulator has no ramp to respect


def test_documents_read_back_as_written(db):
    assert create_new(db, "bulk", {"one": FIELDS, "two": {**FIELDS, "count": 8}}, FAST) == set()
    assert db.collection("bulk").document("one").get().to_dict() == FIELDS
    assert db.collection("bulk").document("two").get().to_dict()["count"] == 8


def test_an_existing_document_is_reported_and_kept_and_the_others_are_created(db):
    create_new(db, "bulk", {"taken": {"n": 1}}, FAST)
    documents = {f"fresh-{n}": {"n": n} for n in range(45)} | {"taken": {"n": 3}}
    assert create_new(db, "bulk", documents, FAST) == {"taken"}
    assert db.collection("bulk").document("taken").get().to_dict() == {"n": 1}
    assert db.collection("bulk").count().get()[0][0].value == 46


def test_fewer_documents_than_a_batch_after_a_full_one_are_still_written(db):
    ramp = Ramp(initial=100_000, maximum=100_000)
    create_new(db, "bulk", {f"a-{n}": {"n": n} for n in range(40)}, ramp)
    create_new(db, "bulk", {f"b-{n}": {"n": n} for n in range(3)}, ramp)
    assert db.collection("bulk").count().get()[0][0].value == 43


def test_a_request_the_server_refuses_raises_instead_of_being_lost(db):
    # the emulator refuses the whole BatchWrite (reserved name); the SDK swallows that error in a
    # future, so only the count of answers shows that 2 writes never happened
    with pytest.raises(writer.WriteFailed, match="2 got no answer"):
        create_new(db, "bulk", {"ok": {"n": 1}, "bad": {"__reserved__": 1}}, FAST)


def test_the_writer_keeps_to_the_rate(db):
    started = time.monotonic()
    create_new(db, "bulk", {f"d-{n}": {"n": n} for n in range(300)}, Ramp(initial=200, maximum=200))
    assert time.monotonic() - started >= 1.5  # 300 writes at 200/s
