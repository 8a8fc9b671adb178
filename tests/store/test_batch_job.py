"""score_upload end to end: the deployed CloudEvent app, real Firestore and storage emulators."""

import csv
import datetime
import io
import json
import pathlib

import functions_framework
import pytest

from devstack.bridge import storage_event
from shared.batch import job as batch_job

ROOT = pathlib.Path(__file__).resolve().parents[2]
APP = functions_framework.create_app("score_upload", str(ROOT / "functions" / "main.py"), "cloudevent")
HEADER = "customer_id,timestamp,age,gender,client-since,region,last_offer," + ",".join(
    f"OFFER_{n}" for n in range(1, 11)
)
EUROPA_BANNED = {"OFFER_4", "OFFER_5", "OFFER_6"}
SENIOR_BANNED = {"OFFER_1", "OFFER_3", "OFFER_4"}


@pytest.fixture(autouse=True)
def unthrottled(monkeypatch):
    """The emulator has no 500/50/5 ramp to respect (tests/store/test_batch_writer.py checks the pacing)."""
    monkeypatch.setenv("BATCH_INITIAL_OPS_PER_SECOND", "100000")
    monkeypatch.setenv("BATCH_MAX_OPS_PER_SECOND", "100000")


def upload(buckets, name: str, data: bytes):
    blob = buckets["inbox"].blob(name)
    blob.upload_from_string(data, content_type="text/csv")
    blob.reload()
    return blob


def deliver(blob, event_id: str | None = None):
    headers, data = storage_event(blob, event_id)
    return APP.test_client().post("/", headers=headers, json=data)


def read_csv(bucket, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(bucket.blob(name).download_as_text())))


def status_of(db, blob) -> dict:
    upload_ = batch_job.Upload(blob.bucket.name, blob.name, str(blob.generation))
    return db.collection(batch_job.JOBS).document(upload_.job_id).get().to_dict()


def generated(rows: int) -> bytes:
    regions, genders = ("Europa", "Asia", "Americas"), ("F", "M")
    lines = [HEADER] + [
        f"{100000 + i},2022-04-{1 + i % 28:02d},{18 + i * 7 % 70},{genders[i % 2]},2015-01-01,{regions[i % 3]},OFFER_2,"
        + ",".join(["True"] * 10)
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def episodes(db) -> dict[str, dict]:
    return {snapshot.id: snapshot.to_dict() for snapshot in db.collection("episodes").stream()}


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
    status = status_of(db, blob)
    assert status["state"] == "done", status
    assert (status["rows_read"], status["rows_scored"], status["rejected_rows"]) == (10, 4, 6)
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
    stored = episodes(db)
    assert set(stored) == {row["episode_id"] for row in results}
    assert json.loads(stored[c2["episode_id"]]["states"]) == {
        "age": 70.0,
        "gender": "M",
        "region": "Asia",
        "extra": "y",
    }
    assert stored[c2["episode_id"]]["source"] == f"batch:test-inbox/company_b/messy.csv#{blob.generation}"
    assert status["results_path"] == "gs://test-results/company_b/messy.results.csv"
    assert [b.name for b in batch_buckets["results"].list_blobs()] == [
        "company_b/messy.errors.csv",
        "company_b/messy.results.csv",
    ]


def test_company_b_file_respects_the_rules(batch_buckets, db):
    blob = upload(batch_buckets, "company_b/2022-05-01.csv", (ROOT / "examples" / "company_B.csv").read_bytes())
    assert deliver(blob).status_code == 200
    status = status_of(db, blob)
    assert (status["state"], status["rows_read"], status["rows_scored"], status["rejected_rows"]) == (
        "done",
        10000,
        10000,
        0,
    )
    customers = {row["customer_id"]: row for row in csv.DictReader(open(ROOT / "examples" / "company_B.csv"))}
    results = read_csv(batch_buckets["results"], "company_b/2022-05-01.results.csv")
    assert len(results) == 10000 and {row["customer_id"] for row in results} == set(customers)
    for row in results:
        check_offers(row, customers[row["customer_id"]])
    assert not batch_buckets["results"].blob("company_b/2022-05-01.errors.csv").exists()
    assert db.collection("episodes").count().get()[0][0].value == 10000


def test_the_same_event_or_generation_twice_gives_one_output(batch_buckets, db):
    blob = upload(batch_buckets, "company_b/twice.csv", generated(30))
    assert deliver(blob, "event-1").status_code == 200
    output = batch_buckets["results"].get_blob("company_b/twice.results.csv")
    first = episodes(db)
    assert deliver(blob, "event-1").status_code == 200  # the same event again
    assert deliver(blob, "event-2").status_code == 200  # another event for the same generation
    again = batch_buckets["results"].get_blob("company_b/twice.results.csv")
    assert again.generation == output.generation
    assert episodes(db) == first and len(first) == 30
    assert status_of(db, blob)["attempts"] == 1


def test_a_crash_mid_file_then_redelivery_completes_without_duplicates(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("BATCH_CHUNK_ROWS", "7")
    blob = upload(batch_buckets, "company_b/crash.csv", generated(50))
    record_chunk = batch_job.Job._record_chunk

    def die_in_chunk_3(job, chunk):  # after chunk 3's episodes are written, before it is recorded
        if chunk.index == 3:
            raise RuntimeError("instance killed")
        record_chunk(job, chunk)

    monkeypatch.setattr(batch_job.Job, "_record_chunk", die_in_chunk_3)
    assert deliver(blob, "event-1").status_code == 500
    status = status_of(db, blob)
    assert (status["state"], status["chunks_done"], status["rows_read"]) == ("retrying", 3, 21)
    before = episodes(db)
    assert len(before) == 28  # chunk 3's episodes were written, the chunk was not recorded
    assert not batch_buckets["results"].blob("company_b/crash.results.csv").exists()
    rewarded = sorted(before)[0]  # a reward lands between the crash and the redelivery
    db.collection("episodes").document(rewarded).update({"up_to_date": True, "accepted": True})

    monkeypatch.setattr(batch_job.Job, "_record_chunk", record_chunk)
    assert deliver(blob, "event-1").status_code == 200
    status = status_of(db, blob)
    assert (status["state"], status["rows_read"], status["rows_scored"], status["attempts"]) == ("done", 50, 50, 2)
    results = read_csv(batch_buckets["results"], "company_b/crash.results.csv")
    assert [row["customer_id"] for row in results] == [str(100000 + i) for i in range(50)]
    after = episodes(db)
    assert len(after) == 50 and set(after) == {row["episode_id"] for row in results}
    for episode_id, episode in before.items():  # the first run's episodes were kept as they were
        assert after[episode_id]["predicted_offer_1"] == episode["predicted_offer_1"]
        assert after[episode_id]["created_at"] == episode["created_at"]
    assert after[rewarded]["up_to_date"] is True
    for row in results:
        assert [row["offer_1"], row["offer_2"], row["offer_3"]] == [
            after[row["episode_id"]][f"predicted_offer_{r}"] for r in (1, 2, 3)
        ]
    assert not list(batch_buckets["results"].list_blobs(prefix="_parts/"))


def test_a_client_without_rules_gets_a_failed_status_not_a_crash(batch_buckets, db):
    blob = upload(batch_buckets, "company_z/file.csv", generated(3))
    assert deliver(blob).status_code == 200
    status = status_of(db, blob)
    assert (
        status["state"] == "failed" and "company_z" in status["reason"] and "no eligibility rules" in status["reason"]
    )
    assert not list(batch_buckets["results"].list_blobs())
    assert deliver(blob).status_code == 200  # acknowledged again, nothing written
    assert not episodes(db)


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
    status = status_of(db, blob)
    assert status["state"] == "failed" and reason in status["reason"]


def test_a_second_delivery_while_the_first_holds_the_lease_is_refused(batch_buckets, db, monkeypatch):
    blob = upload(batch_buckets, "company_b/busy.csv", generated(5))
    other = batch_job.Job(
        batch_job.Upload("test-inbox", blob.name, str(blob.generation), "e1"), db, batch_job.get_gcs(), "test-results"
    )
    assert other._claim()["state"] == "running"  # a live delivery holds the file
    assert deliver(blob, "e2").status_code == 500
    assert not episodes(db)


def test_a_crash_after_the_output_is_composed_redelivers_to_the_same_output(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("BATCH_CHUNK_ROWS", "4")
    blob = upload(batch_buckets, "company_b/late.csv", generated(10))
    finish = batch_job.Job._finish

    def die_before_done(job, fields):
        if fields["state"] == "done":
            raise RuntimeError("instance killed before the job was marked done")
        return finish(job, fields)

    monkeypatch.setattr(batch_job.Job, "_finish", die_before_done)
    assert deliver(blob).status_code == 500
    first = read_csv(batch_buckets["results"], "company_b/late.results.csv")
    monkeypatch.setattr(batch_job.Job, "_finish", finish)
    assert deliver(blob).status_code == 200
    assert status_of(db, blob)["state"] == "done"
    assert read_csv(batch_buckets["results"], "company_b/late.results.csv") == first and len(first) == 10
    assert len(episodes(db)) == 10


def test_a_delivery_stops_at_its_time_budget_and_the_next_ones_finish_the_file(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("BATCH_CHUNK_ROWS", "6")
    monkeypatch.setenv("BATCH_TIME_BUDGET_SECONDS", "0.001")  # spent as soon as one chunk is written
    data = generated(20) + b"c-bad,forty,F,Asia,2015-01-01,Asia,OFFER_2," + b",".join([b"True"] * 10) + b"\n"
    blob = upload(batch_buckets, "company_b/long.csv", data)
    answers = []
    for _ in range(10):
        answers.append(deliver(blob, "event-1").status_code)
        status = status_of(db, blob)
        if answers[-1] == 200:
            break
        # each delivery wrote exactly one more chunk, then let the platform's retry carry on
        assert (status["state"], status["chunks_done"]) == ("retrying", len(answers)), status
        assert "OutOfTime" in status["last_error"]
        assert len(episodes(db)) == min(6 * len(answers), 20)
    assert answers == [500, 500, 500, 200]  # 21 rows in chunks of 6: the 4th delivery does the last
    assert (status["state"], status["attempts"]) == ("done", 4)
    assert (status["rows_read"], status["rows_scored"], status["rejected_rows"]) == (21, 20, 1)
    results = read_csv(batch_buckets["results"], "company_b/long.results.csv")
    errors = read_csv(batch_buckets["results"], "company_b/long.errors.csv")
    assert [row["customer_id"] for row in results] == [str(100000 + i) for i in range(20)]
    assert [(row["line"], row["customer_id"]) for row in errors] == [("22", "c-bad")]
    assert set(episodes(db)) == {row["episode_id"] for row in results}


def test_a_lapsed_lease_is_taken_over_and_the_old_run_can_no_longer_write(batch_buckets, db):
    blob = upload(batch_buckets, "company_b/stale.csv", generated(5))
    dead = batch_job.Job(
        batch_job.Upload("test-inbox", blob.name, str(blob.generation), "e1"), db, batch_job.get_gcs(), "test-results"
    )
    dead._claim()  # a run that died with the lease
    dead.status_ref.update({"lease_expires": datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)})
    assert deliver(blob, "e2").status_code == 200
    status = status_of(db, blob)
    assert (status["state"], status["rows_scored"], status["attempts"]) == ("done", 5, 2)
    with pytest.raises(batch_job.LeaseLost):
        dead._update({"chunks_done": 0})
    assert status_of(db, blob)["chunks_done"] == 1


def test_episodes_carry_their_expiry(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("EPISODE_RETENTION_DAYS", "30")
    blob = upload(batch_buckets, "company_b/ttl.csv", generated(3))
    assert deliver(blob).status_code == 200
    for episode in episodes(db).values():
        assert episode["expire_at"] - episode["created_at"] == datetime.timedelta(days=30)
