"""Files over the one-range size on the local batch engine (devstack/engine.py): score_upload starts
a Cloud Run job execution through the same REST call as deployed, and its tasks run as parallel
local processes (`python -m functions.batch_task`), against the real emulators."""

import collections
import csv
import io
import os
import signal
import time

import pytest
import requests

from bench.batch_throughput import generate
from devstack import emulators
from devstack.engine import Engine, start_in_background
from shared.batch import job as batch_job
from shared.batch import score, stages
from shared.batch.outputs import JobFiles
from shared.batch.plan import Plan
from shared.customer import packs
from shared.platform.namespace import ROOT

from ..store.batch_helpers import UNTHROTTLED, batch_episodes, deliver, status_of, status_ref

JOB = "projects/offer-bandits-test/locations/local/jobs/batch-engine"


@pytest.fixture
def engine(batch_buckets, monkeypatch):
    """The local engine, two tasks at a time, files over 256 KiB handed to it."""
    env = {**UNTHROTTLED, "BATCH_ENGINE_JOB": JOB, "BATCH_PARALLEL_BYTES": str(256 * 1024)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    local = Engine(None, parallelism=2, max_retries=3)
    server, url = start_in_background(emulators.free_port(), local)
    monkeypatch.setenv("BATCH_ENGINE_URL", url)
    local.env["BATCH_ENGINE_URL"] = url
    yield local
    server.shutdown()
    for execution in local.executions.values():  # nothing is left running after a failed test
        for task in execution.tasks:
            if task.state == "RUNNING" and task.pid:
                os.kill(task.pid, signal.SIGKILL)


def upload_file(buckets, name: str, rows: int, tmp_path):
    path = tmp_path / "upload.csv"
    generate(str(path), rows)
    blob = buckets["inbox"].blob(name)
    blob.upload_from_filename(str(path), content_type="text/csv")
    blob.reload()
    return blob


def wait_done(db, blob, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = status_of(db, blob)
        if found.get("state") in ("done", "failed"):
            return found
        time.sleep(0.5)
    pytest.fail(f"the batch job did not finish within {timeout:.0f} s: {status_of(db, blob)}")


def results_of(buckets, name: str) -> list[dict]:
    text = buckets["results"].blob(name).download_as_text()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.slow
def test_a_million_rows_on_parallel_tasks_every_row_once_and_rewarded_once(engine, batch_buckets, db, tmp_path, api):
    rows = 1_000_000
    blob = upload_file(batch_buckets, "company_b/million.csv", rows, tmp_path)
    assert deliver(blob, "e1").status_code == 200
    started = status_of(db, blob)
    assert started["engine"] == "cloud-run" and started["execution"].startswith(JOB + "/executions/")
    final = wait_done(db, blob, 900)
    assert (final["state"], final["rows_read"], final["rows_scored"], final["rejected_rows"]) == (
        "done",
        rows,
        rows,
        0,
    ), final
    assert final["ranges"] > 1 and len(engine.executions) == 2  # the score stage, then the pack stage
    results = results_of(batch_buckets, "company_b/million.results.csv")
    assert len(results) == rows
    assert collections.Counter(r["customer_id"] for r in results) == {str(1_000_000 + i): 1 for i in range(rows)}
    assert len({r["episode_id"] for r in results}) == rows
    stored = batch_episodes(db)  # raises if an episode is packed twice
    assert len(stored) == rows and set(stored) == {r["episode_id"] for r in results}
    assert final["packs"] * 100 <= rows  # at most one Firestore write per 100 rows for the episodes

    # /rewards through the gateway: by episode id, then without one; each counted once
    named, unnamed = results[123_456], results[654_321]
    body = {"customer_id": named["customer_id"], "timestamp": "2022-05-02", "accepted": True}
    first = requests.put(f"{api}/rewards", json=body | {"episode_id": named["episode_id"]}, timeout=30)
    again = requests.put(f"{api}/rewards", json=body | {"episode_id": named["episode_id"]}, timeout=30)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert first.json()["offers"] == [named["offer_1"], named["offer_2"], named["offer_3"]]
    body = {"customer_id": unnamed["customer_id"], "timestamp": "2022-05-02", "accepted": False}
    found = requests.put(f"{api}/rewards", json=body, timeout=30)
    assert found.status_code == 200 and found.json()["episode_id"] == unnamed["episode_id"]
    assert requests.put(f"{api}/rewards", json=body, timeout=30).json() == found.json()
    assert len(list(db.collection("rewards").stream())) == 2


def test_a_killed_task_is_run_again_and_the_file_comes_out_as_an_unbroken_run_makes_it(
    engine, batch_buckets, db, tmp_path, monkeypatch
):
    monkeypatch.setenv("BATCH_RANGE_BYTES", str(1024 * 1024))
    blob = upload_file(batch_buckets, "company_b/killed.csv", 40_000, tmp_path)
    assert deliver(blob, "e1").status_code == 200
    job_id = batch_job.Upload(blob.bucket.name, blob.name, str(blob.generation)).job_id
    files = JobFiles(batch_job.get_gcs(), batch_buckets["results"], job_id, "")
    plan = Plan.loads(files.get(files.path(1, "plan")))  # kept to score the file again below
    (execution,) = engine.executions.values()
    ranges = status_ref(db, blob).collection("ranges")
    victim, deadline = None, time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:  # a task that has begun scoring its range
        for task in execution.tasks:
            record = ranges.document(f"v1-{task.index}").get()
            if task.state == "RUNNING" and record.exists and record.get("state") == "running":
                victim = task
                break
        time.sleep(0.1)
    assert victim is not None
    os.kill(victim.pid, signal.SIGKILL)
    final = wait_done(db, blob, 300)
    assert final["state"] == "done" and final["rows_read"] == final["rows_scored"] == 40_000, final
    assert victim.exit_codes[0] == -signal.SIGKILL and victim.attempt == 1 and victim.state == "SUCCEEDED"
    output = batch_buckets["results"].blob("company_b/killed.results.csv").download_as_bytes()

    # The same plan scored again here, range by range, with nothing killed: the same bytes.
    scratch = JobFiles(batch_job.get_gcs(), batch_buckets["results"], "scratch", "")
    ctx = stages.Context(
        plan=plan,
        db=db,
        gcs=batch_job.get_gcs(),
        files=scratch,
        space=ROOT,
        status_ref=db.collection("scratch").document("job"),
        engine=stages.InProcess(),
        reward_window=604800,
    )
    for index in range(plan.ranges):
        score.score_range(ctx, index)
    parts = b"".join(scratch.get(scratch.path(1, "results", n + 1)) for n in range(plan.ranges))
    assert output.split(b"\r\n", 1)[1] == parts
    assert len(batch_episodes(db)) == 40_000


def test_a_redelivered_event_starts_no_second_job(engine, batch_buckets, db, tmp_path):
    blob = upload_file(batch_buckets, "company_b/again.csv", 20_000, tmp_path)
    assert deliver(blob, "e1").status_code == 200
    assert deliver(blob, "e1").status_code == 200  # the same event, while the job runs
    assert deliver(blob, "e2").status_code == 200  # another event for the same generation
    final = wait_done(db, blob, 300)
    assert deliver(blob, "e1").status_code == 200  # and once it is done
    assert final["state"] == "done" and final["rows_read"] == 20_000
    assert len(engine.executions) == 2  # one score stage and one pack stage, nothing twice
    assert status_ref(db, blob).get().get("event_ids") == ["e1", "e2"]
    assert len(batch_episodes(db)) == 20_000
    recent = db.document(packs.RECENT).get().to_dict()["files"]
    assert len(recent) == 1
