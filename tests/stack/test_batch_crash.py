"""A batch job survives a killed score_upload: served by functions-framework as deployed, fed by the
bridge (devstack/bridge.py), against the real emulators. The test plays the supervisor: it kills
the server's whole process group mid-job and starts a new one on the same address."""

import collections
import csv
import io
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import requests

from devstack import emulators
from devstack.serve import wait_for
from shared.batch import job as batch_job

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADER = "customer_id,age,gender,region," + ",".join(f"OFFER_{n}" for n in range(1, 11))
ROWS, BAD_EVERY = 2400, 100  # every 100th row has an unreadable age
FLAGS = ",".join(["True"] * 10)


@pytest.fixture(scope="module", autouse=True)
def warm_emulator(firestore_emulator):
    """A freshly started emulator can take longer than the db fixture's 10 s to answer its first
    request on a loaded machine; this module is often the first to use it."""
    url = f"http://{firestore_emulator.host_port}/emulator/v1/projects/{os.environ['GOOGLE_CLOUD_PROJECT']}"
    requests.delete(f"{url}/databases/(default)/documents", timeout=120).raise_for_status()


def csv_file() -> bytes:
    lines = [HEADER] + [
        f"c{i},{'forty' if i % BAD_EVERY == 0 else 20 + i % 50},{'FM'[i % 2]},{('Asia', 'Europa')[i % 2]},{FLAGS}"
        for i in range(ROWS)
    ]
    return ("\n".join(lines) + "\n").encode()


def start(args: list[str], env: dict, log: pathlib.Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def score_upload(port: int, env: dict, log: pathlib.Path) -> subprocess.Popen:
    """As devstack/run.py starts it (and as it is deployed: functions/main.py, target score_upload)."""
    process = start(
        [sys.executable, "-m", "functions_framework", "--target", "score_upload", "--source", "functions/main.py"]
        + ["--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(port)],
        env,
        log,
    )
    wait_for(f"http://127.0.0.1:{port}/", process)
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def test_a_killed_score_upload_is_restarted_and_the_job_completes_exactly_once(batch_buckets, db, tmp_path):
    env = {
        **os.environ,
        "GOOGLE_CLOUD_PROJECT": os.environ["GOOGLE_CLOUD_PROJECT"],
        "INBOX_BUCKET": "test-inbox",
        "RESULTS_BUCKET": "test-results",
        "BATCH_CHUNK_ROWS": "200",  # 12 chunks, about 0.4 s each at the production rate of 500 writes/s
        "BATCH_LEASE_SECONDS": "10",  # a dead run's lease lapses quickly (default 120 s)
    }
    port = emulators.free_port()
    server = score_upload(port, env, tmp_path / "score_upload.log")
    bridge = start(
        [sys.executable, "-m", "devstack.bridge", "--bucket", "test-inbox", "--target", f"http://127.0.0.1:{port}/"]
        + ["--interval", "0.2", "--retry-period", "300"],
        env,
        tmp_path / "bridge.log",
    )
    try:
        blob = batch_buckets["inbox"].blob("company_b/crash.csv")
        blob.upload_from_string(csv_file(), content_type="text/csv")
        status_ref = db.collection(batch_job.JOBS).document(
            batch_job.Upload("test-inbox", blob.name, str(blob.generation)).job_id
        )

        def status() -> dict:
            snapshot = status_ref.get()
            return snapshot.to_dict() if snapshot.exists else {}

        wait_until(lambda: status().get("chunks_done", 0) >= 2, 120, "the job to record two chunks")
        stop(server)  # the instance dies mid-job: SIGKILL, no time to record anything
        killed = status()
        assert killed["state"] == "running" and 2 <= killed["chunks_done"] < ROWS // 200, killed
        time.sleep(1)
        server = score_upload(port, env, tmp_path / "score_upload.log")  # the supervisor's restart

        final = wait_until(lambda: status().get("state") in ("done", "failed") and status(), 180, "the job to finish")
    finally:
        stop(server)
        stop(bridge)
    logs = (tmp_path / "score_upload.log").read_text() + (tmp_path / "bridge.log").read_text()
    assert final["state"] == "done", (final, logs[-3000:])
    assert final["attempts"] >= 2
    rejected = len(range(0, ROWS, BAD_EVERY))
    assert (final["rows_read"], final["rows_scored"], final["rejected_rows"]) == (ROWS, ROWS - rejected, rejected)
    assert db.collection("episodes").count().get()[0][0].value == final["rows_scored"]
    results = list(
        csv.DictReader(io.StringIO(batch_buckets["results"].blob("company_b/crash.results.csv").download_as_text()))
    )
    errors = list(
        csv.DictReader(io.StringIO(batch_buckets["results"].blob("company_b/crash.errors.csv").download_as_text()))
    )
    lines = collections.Counter(row["customer_id"] for row in results + errors)
    assert set(lines) == {f"c{i}" for i in range(ROWS)} and set(lines.values()) == {1}  # every line once
    assert len({row["episode_id"] for row in results}) == len(results) == final["rows_scored"]
    stored = {snapshot.id: snapshot.to_dict() for snapshot in db.collection("episodes").stream()}
    for row in results:  # the result file gives each episode's stored slate
        assert [row["offer_1"], row["offer_2"], row["offer_3"]] == [
            stored[row["episode_id"]][f"predicted_offer_{rank}"] for rank in (1, 2, 3)
        ]
