"""score_upload end to end for files scored inside the function (one range): the deployed
CloudEvent app, real Firestore and storage emulators."""

import csv
import datetime
import json

import pytest

from shared.batch import job as batch_job
from shared.batch import score, stages, status
from shared.customer import agents, packs

from .batch_helpers import (
    ROOT_DIR,
    UNTHROTTLED,
    batch_episodes,
    deliver,
    generated,
    pack_documents,
    read_csv,
    status_of,
    upload,
)

EUROPA_BANNED = {"OFFER_4", "OFFER_5", "OFFER_6"}
SENIOR_BANNED = {"OFFER_1", "OFFER_3", "OFFER_4"}


@pytest.fixture(autouse=True)
def unthrottled(monkeypatch):
    """The emulator has no 500/50/5 ramp to respect (tests/test_batch_writer.py checks the pacing)."""
    for name, value in UNTHROTTLED.items():
        monkeypatch.setenv(name, value)


def check_offers(row: dict, customer: dict):
    offers = [row["offer_1"], row["offer_2"], row["offer_3"]]
    assert len(set(offers)) == 3 and all(offers)
    if customer["region"] == "Europa":
        assert not EUROPA_BANNED & set(offers)
    if float(customer["age"]) > 65:
        assert not SENIOR_BANNED & set(offers)


MESSY = (
    "\ufeff Region ,OFFER_3, AGE,offer_1,Customer_ID,gender,OFFER_2,offer_4,OFFER_5,OFFER_6,timestamp,extra\r\n"
    " europa ,1,40,true,c1,f,0,True,True,True,2022-05-01,x\r\n"
    "\r\n"
    "ASIA,False,70,TRUE,c2, M ,1,1,0,0,2022-05-01,y\r\n"
    "Europa,1,,1,c3,F,1,1,1,1,2022-05-01,z\r\n"  # missing age
    "Europa,1,forty,1,c4,F,1,1,1,1,2022-05-01,z\r\n"  # non-numeric age
    "Atlantis,1,40,1,c5,F,1,1,1,1,2022-05-01,z\r\n"  # unknown region
    "Europa,0,40,0,c6,F,0,1,1,1,2022-05-01,z\r\n"  # only Europa-banned offers
    "Americas,1,30,maybe,c7,F,1,1,1,1,2022-05-01,z\r\n"  # bad flag
    'Americas,1,30,1,=HYPERLINK("x"),F,1,1,1,1,2022-05-01,z\r\n'  # formula id: scored, neutralised
    "Americas,1,30,1,c9,F,1\r\n"  # short row
    ",,,,,,,,,,,\r\n"  # blank (only commas)
    "Americas,1,30,1,c10,F,1,1,1,1,2022-05-01,z\r\n"
).encode("utf-8")


def test_a_messy_file_splits_between_results_and_errors(batch_buckets, db):
    blob = upload(batch_buckets, "company_b/messy.csv", MESSY)
    assert deliver(blob).status_code == 200
    status_ = status_of(db, blob)
    assert status_["state"] == "done", status_
    assert (status_["rows_read"], status_["rows_scored"], status_["rejected_rows"]) == (10, 4, 6)
    results = read_csv(batch_buckets["results"], "company_b/messy.results.csv")
    errors = read_csv(batch_buckets["results"], "company_b/messy.errors.csv")
    assert [row["customer_id"] for row in results] == ["c1", "c2", '\'=HYPERLINK("x")', "c10"]
    assert {row["line"]: row["customer_id"] for row in errors} == {
        "5": "c3",
        "6": "c4",
        "7": "c5",
        "8": "c6",
        "9": "c7",
        "11": "c9",
    }
    reasons = {row["customer_id"]: row["reason"] for row in errors}
    assert reasons["c3"] == "age: missing" and "must be a number" in reasons["c4"]
    assert "region" in reasons["c5"] and "no eligible offer" in reasons["c6"] and "OFFER_1" in reasons["c7"]
    assert "fields" in reasons["c9"]
    c1, c2 = results[0], results[1]
    # c1 (Europa) flags OFFER_1, 3, 4, 5, 6: the rules leave two; c2 (70) flags 1, 2, 4: one is left
    assert {c1["offer_1"], c1["offer_2"]} == {"OFFER_1", "OFFER_3"} and c1["offer_3"] == ""
    assert (c2["offer_1"], c2["offer_2"], c2["offer_3"]) == ("OFFER_2", "", "")
    stored = batch_episodes(db)
    assert set(stored) == {row["episode_id"] for row in results}
    assert stored[c2["episode_id"]].states == {"age": 70.0, "gender": "M", "region": "Asia", "extra": "y"}
    assert stored[c2["episode_id"]].slate == ["OFFER_2"]
    (pack,) = {p["source"] for p in pack_documents(db).values()}
    assert pack == f"batch:test-inbox/company_b/messy.csv#{blob.generation}"
    assert status_["results_path"] == "gs://test-results/company_b/messy.results.csv"
    assert [b.name for b in batch_buckets["results"].list_blobs()] == [
        "company_b/messy.errors.csv",
        "company_b/messy.results.csv",
    ]


def test_company_b_file_respects_the_rules_in_a_write_per_hundred_rows(batch_buckets, db):
    blob = upload(batch_buckets, "company_b/2022-05-01.csv", (ROOT_DIR / "examples" / "company_B.csv").read_bytes())
    assert deliver(blob).status_code == 200
    status_ = status_of(db, blob)
    assert (status_["state"], status_["rows_read"], status_["rows_scored"], status_["rejected_rows"]) == (
        "done",
        10000,
        10000,
        0,
    )
    customers = {row["customer_id"]: row for row in csv.DictReader(open(ROOT_DIR / "examples" / "company_B.csv"))}
    results = read_csv(batch_buckets["results"], "company_b/2022-05-01.results.csv")
    assert len(results) == 10000 and {row["customer_id"] for row in results} == set(customers)
    for row in results:
        check_offers(row, customers[row["customer_id"]])
    assert not batch_buckets["results"].blob("company_b/2022-05-01.errors.csv").exists()
    stored = batch_episodes(db)
    assert set(stored) == {row["episode_id"] for row in results}
    for row in results:  # the result file gives each episode's packed slate
        assert [row["offer_1"], row["offer_2"], row["offer_3"]] == stored[row["episode_id"]].slate
    documents = pack_documents(db)
    assert len(documents) <= 10000 / 100 and not db.collection("episodes").limit(1).get()
    for document in documents.values():  # each customer's pack is the one its hash names
        for episode in packs._entries(document, packs.file_key(document["job"]), document["bucket"]):
            assert packs.bucket_of(episode.customer_id, status_["buckets"]) == document["bucket"]


def test_the_same_event_or_generation_twice_gives_one_output(batch_buckets, db):
    blob = upload(batch_buckets, "company_b/twice.csv", generated(30))
    assert deliver(blob, "event-1").status_code == 200
    output = batch_buckets["results"].get_blob("company_b/twice.results.csv")
    first = batch_episodes(db)
    assert deliver(blob, "event-1").status_code == 200  # the same event again
    assert deliver(blob, "event-2").status_code == 200  # another event for the same generation
    again = batch_buckets["results"].get_blob("company_b/twice.results.csv")
    assert again.generation == output.generation
    assert batch_episodes(db) == first and len(first) == 30
    assert status_of(db, blob)["attempts"] == 1 and status_of(db, blob)["event_ids"] == ["event-1", "event-2"]


def test_a_new_generation_of_a_file_is_a_new_file_and_replaces_the_old_in_the_recent_files(batch_buckets, db):
    first = upload(batch_buckets, "company_b/daily.csv", generated(20))
    assert deliver(first).status_code == 200
    old = read_csv(batch_buckets["results"], "company_b/daily.results.csv")
    second = upload(batch_buckets, "company_b/daily.csv", generated(20))
    assert deliver(second).status_code == 200
    new = read_csv(batch_buckets["results"], "company_b/daily.results.csv")
    assert {r["episode_id"] for r in old}.isdisjoint(r["episode_id"] for r in new)
    assert set(batch_episodes(db)) == {r["episode_id"] for r in old + new}  # old ids still rewardable
    recent = db.document(packs.RECENT).get().to_dict()["files"]
    assert [entry["job"] for entry in recent.values()] == [job_id(second)]


def job_id(blob) -> str:
    return batch_job.Upload(blob.bucket.name, blob.name, str(blob.generation)).job_id


def crash_then_redeliver(batch_buckets, db, monkeypatch, target, method: str, name: str, after=False, rows=50):
    """Deliver with `target.method` raising once (before its work, or `after` it), then again
    without: the file must come out whole."""
    blob = upload(batch_buckets, f"company_b/{name}.csv", generated(rows))
    original = getattr(target, method)
    calls = []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1 and not after:
            raise RuntimeError("instance killed")
        result = original(*args, **kwargs)
        if len(calls) == 1:
            raise RuntimeError("instance killed")
        return result

    monkeypatch.setattr(target, method, dying)
    assert deliver(blob, "event-1").status_code == 500
    assert status_of(db, blob)["state"] != "done"
    assert deliver(blob, "event-1").status_code == 200
    status_ = status_of(db, blob)
    assert (status_["state"], status_["rows_read"], status_["rows_scored"], status_["attempts"]) == (
        "done",
        rows,
        rows,
        2,
    )
    results = read_csv(batch_buckets["results"], f"company_b/{name}.results.csv")
    assert [row["customer_id"] for row in results] == [str(100000 + i) for i in range(rows)]
    stored = batch_episodes(db)
    assert set(stored) == {row["episode_id"] for row in results}
    for row in results:
        assert [row["offer_1"], row["offer_2"], row["offer_3"]] == stored[row["episode_id"]].slate
    assert not list(batch_buckets["results"].list_blobs(prefix="_parts/"))
    return results


def test_a_crash_while_scoring_then_redelivery_completes_without_duplicates(batch_buckets, db, monkeypatch):
    monkeypatch.setattr(score, "CHUNK_ROWS", 7)
    crash_then_redeliver(batch_buckets, db, monkeypatch, score, "_score_chunk", "scoring")


def test_a_crash_after_the_packs_are_written_keeps_them(batch_buckets, db, monkeypatch):
    from shared.batch import packing

    written = {}
    create_new = packing.create_new

    def remember(db_, collection, documents, ramp):
        kept = create_new(db_, collection, documents, ramp)
        written.setdefault("first", {k: v["entries"] for k, v in documents.items()})
        written["kept"] = kept
        return kept

    monkeypatch.setattr(packing, "create_new", remember)
    crash_then_redeliver(batch_buckets, db, monkeypatch, packing, "create_new", "packed", after=True)
    assert written["kept"] == set(written["first"])  # the second run found every pack and kept it ...
    assert {k: v["entries"] for k, v in pack_documents(db).items()} == written["first"]  # ... as it was


def test_a_crash_after_the_output_is_composed_redelivers_to_the_same_output(batch_buckets, db, monkeypatch):
    from shared.batch import packing

    crash_then_redeliver(batch_buckets, db, monkeypatch, packing.packs, "publish", "late")


def test_a_client_without_rules_gets_a_failed_status_not_a_crash(batch_buckets, db):
    blob = upload(batch_buckets, "company_z/file.csv", generated(3))
    assert deliver(blob).status_code == 200
    status_ = status_of(db, blob)
    assert (
        status_["state"] == "failed"
        and "company_z" in status_["reason"]
        and "no eligibility rules" in status_["reason"]
    )
    assert not list(batch_buckets["results"].list_blobs())
    assert deliver(blob).status_code == 200  # acknowledged again, nothing written
    assert not batch_episodes(db)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"customer_id,age,gender\n1,30,F\n", "missing columns: region"),
        (b"customer_id,age,gender,region\n1,30,F,Asia\n", "no offer columns"),
        (b"x" * 1_000_000, "no header row: line 1 is longer than 65536 characters"),
        (b"1,30,F,Asia,True\n", "no header row"),
    ],
)
def test_a_bad_file_gets_a_failed_status_with_the_reason(batch_buckets, db, data, reason):
    blob = upload(batch_buckets, "company_b/bad.csv", data)
    assert deliver(blob).status_code == 200
    status_ = status_of(db, blob)
    assert status_["state"] == "failed" and reason in status_["reason"]


def test_a_second_delivery_while_the_first_holds_the_lease_is_refused(batch_buckets, db):
    blob = upload(batch_buckets, "company_b/busy.csv", generated(5))
    upload_ = batch_job.Upload("test-inbox", blob.name, str(blob.generation), "e1")
    other = batch_job.Job(upload_, db, batch_job.get_gcs(), "test-results")
    status.claim_launch(db, other.status_ref, upload_, "default", other.owner, other.lease)  # a live delivery
    assert deliver(blob, "e2").status_code == 500
    assert not batch_episodes(db)


def test_a_lapsed_lease_is_taken_over(batch_buckets, db):
    blob = upload(batch_buckets, "company_b/stale.csv", generated(5))
    upload_ = batch_job.Upload("test-inbox", blob.name, str(blob.generation), "e1")
    dead = batch_job.Job(upload_, db, batch_job.get_gcs(), "test-results")
    status.claim_launch(db, dead.status_ref, upload_, "default", dead.owner, dead.lease)  # a run that died
    dead.status_ref.update({"lease_expires": datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)})
    assert deliver(blob, "e2").status_code == 200
    status_ = status_of(db, blob)
    assert (status_["state"], status_["rows_scored"], status_["attempts"]) == ("done", 5, 2)


def test_packs_carry_their_expiry_and_creation(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("EPISODE_RETENTION_DAYS", "30")
    blob = upload(batch_buckets, "company_b/ttl.csv", generated(3))
    assert deliver(blob).status_code == 200
    for document in pack_documents(db).values():
        assert document["expire_at"] - document["created_at"] == datetime.timedelta(days=30)
        assert document["policy"] == agents.DEFAULT_AGENT and document["job"] == job_id(blob)


def test_in_process_stage_never_records_an_execution(batch_buckets, db):
    """A redelivery after an in-process run died must find no execution, or it would start nothing."""
    blob = upload(batch_buckets, "company_b/inproc.csv", generated(4))
    assert deliver(blob).status_code == 200
    status_ = status_of(db, blob)
    assert status_["engine"] == stages.InProcess.name and status_["execution"] is None


def test_states_keep_the_extra_columns(batch_buckets, db):
    blob = upload(batch_buckets, "company_b/extras.csv", generated(2))
    assert deliver(blob).status_code == 200
    for episode in batch_episodes(db).values():
        assert set(episode.states) == {"age", "gender", "region", "client-since", "last_offer"}
        assert json.dumps(episode.states)


def test_a_file_in_many_ranges_gives_every_row_once_with_absolute_error_lines(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("BATCH_PARALLEL_BYTES", "1000")
    monkeypatch.setenv("BATCH_RANGE_BYTES", "20000")
    lines = generated(3000).decode().splitlines(keepends=True)
    bad = {7, 1234, 2999}  # data lines whose age is unreadable
    for number in bad:
        fields = lines[number].split(",")
        lines[number] = ",".join([*fields[:2], "forty", *fields[3:]])
    blob = upload(batch_buckets, "company_b/ranges.csv", "".join(lines).encode())
    assert deliver(blob).status_code == 200
    status_ = status_of(db, blob)
    assert status_["state"] == "done" and status_["ranges"] > 10 and status_["groups"] > 1, status_
    assert (status_["rows_read"], status_["rows_scored"], status_["rejected_rows"]) == (3000, 2997, 3)
    results = read_csv(batch_buckets["results"], "company_b/ranges.results.csv")
    errors = read_csv(batch_buckets["results"], "company_b/ranges.errors.csv")
    expected = [str(100000 + i) for i in range(3000)]
    assert [row["customer_id"] for row in results] == [c for i, c in enumerate(expected) if i + 1 not in bad]
    assert [(row["line"], row["customer_id"]) for row in errors] == [
        (str(n + 1), str(100000 + n - 1)) for n in sorted(bad)
    ]
    stored = batch_episodes(db)
    assert set(stored) == {row["episode_id"] for row in results}
    for row in results:
        assert [row["offer_1"], row["offer_2"], row["offer_3"]] == stored[row["episode_id"]].slate


def test_a_quoted_line_break_across_a_range_boundary_rescores_the_file_as_one_range(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("BATCH_PARALLEL_BYTES", "1000")
    monkeypatch.setenv("BATCH_RANGE_BYTES", "3000")
    header = "customer_id,age,gender,region,note,OFFER_1,OFFER_2,OFFER_3\n"
    rows = [f"c{i},40,F,Asia,plain,1,1,1\n" for i in range(400)]
    rows[150] = 'c150,40,F,Asia,"a note\n' + "over several lines\n" * 300 + 'end",1,1,1\n'
    blob = upload(batch_buckets, "company_b/quoted.csv", (header + "".join(rows)).encode())
    assert deliver(blob).status_code == 200
    status_ = status_of(db, blob)
    assert (status_["state"], status_["plan_version"], status_["ranges"]) == ("done", 2, 1)
    assert (status_["rows_read"], status_["rows_scored"], status_["rejected_rows"]) == (400, 400, 0)
    results = read_csv(batch_buckets["results"], "company_b/quoted.results.csv")
    assert [row["customer_id"] for row in results] == [f"c{i}" for i in range(400)]
    assert set(batch_episodes(db)) == {row["episode_id"] for row in results}


def test_the_example_file_with_errors_gives_results_and_an_errors_csv(batch_buckets, db):
    # examples/company_B_with_errors.csv, as docs/batch-scoring.md shows it with make drop
    source = ROOT_DIR / "examples" / "company_B_with_errors.csv"
    blob = upload(batch_buckets, "company_b/company_B_with_errors.csv", source.read_bytes())
    assert deliver(blob).status_code == 200
    status = status_of(db, blob)
    rows_in = len(source.read_text().splitlines()) - 1  # no blank line, no quoted newline
    assert (status["state"], status["rows_read"], status["rows_scored"], status["rejected_rows"]) == (
        "done",
        rows_in,
        rows_in - 6,
        6,
    )
    results = read_csv(batch_buckets["results"], "company_b/company_B_with_errors.results.csv")
    errors = read_csv(batch_buckets["results"], "company_b/company_B_with_errors.errors.csv")
    assert len(results) + len(errors) == rows_in
    assert [(row["line"], row["customer_id"], row["reason"]) for row in errors] == [
        ("7", "200901", "age: missing"),
        ("15", "200902", "gender 'X': must be one of F, M"),
        ("23", "200903", "region 'Atlantis': must be one of Americas, Asia, Europa"),
        ("31", "200904", "no eligible offer after the client's rules"),
        ("39", "200905", "has 4 fields, the header has 17"),
        ("45", "200906", "age 'forty-two': must be a number"),
    ]
    customers = {row["customer_id"]: row for row in csv.DictReader(source.open())}
    assert not {row["customer_id"] for row in results} & {row["customer_id"] for row in errors}
    for row in results:
        check_offers(row, customers[row["customer_id"]])
