"""`make run` as a user runs it: stopped by SIGINT (Ctrl-C: the terminal signals make's whole
process group) or SIGTERM (`kill <make>`: make passes it on) during startup, idle and mid-batch, it
leaves no process behind; a killed score_upload or Firestore emulator is restarted, during startup
as later.

Every process of a stack is found by the OFFER_BANDITS_STACK value it inherits from make.
"""

import contextlib
import csv
import io
import json
import os
import pathlib
import signal
import subprocess
import time
import uuid

import pytest
import requests

from devstack import emulators

ROOT = pathlib.Path(__file__).resolve().parent.parent
STOPPED_WITHIN = 10  # seconds from the signal until no process is left ("within a few seconds")


def stack_processes(tag: str) -> dict[int, str]:
    """pid -> command line of every live process (not a zombie) that carries this stack's tag."""
    found = {}
    marker = f"OFFER_BANDITS_STACK={tag}".encode() + b"\0"
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes():
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
    return found


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.1)


class Stack:
    """`make run` on a free port, in a session of its own, with its own state file."""

    def __init__(self, tmp_path: pathlib.Path):
        self.tag = uuid.uuid4().hex
        self.port = emulators.free_port()
        self.state_file = tmp_path / "devstack.json"
        self.log_path = tmp_path / "run.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith(("MAKE", "MFLAGS"))}
        for key in ("FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
            env.pop(key, None)  # a user's shell, not the suite's emulators
        env.update(OFFER_BANDITS_STACK=self.tag, DEVSTACK_STATE_FILE=str(self.state_file))
        with open(self.log_path, "wb") as log:
            self.make = subprocess.Popen(
                ["make", "--no-print-directory", "run", f"PORT={self.port}"],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def processes(self) -> dict[int, str]:
        return stack_processes(self.tag)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, predicate, timeout: float, what: str):
        try:
            return wait_until(predicate, timeout, what)
        except AssertionError as error:
            raise AssertionError(f"{error}; make run's output:\n{self.log()}") from None

    def state(self, timeout: float = 150) -> dict:
        self.wait(lambda: self.state_file.exists() or self.make.poll() is not None, timeout, "the stack is up")
        assert self.make.poll() is None, f"make run exited with {self.make.returncode}:\n{self.log()}"
        return json.loads(self.state_file.read_text())

    def find(self, *words: str) -> dict[int, str]:
        return {pid: command for pid, command in self.processes().items() if all(word in command for word in words)}

    def send(self, sig: int) -> None:
        if sig == signal.SIGINT:
            os.killpg(self.make.pid, sig)  # Ctrl-C: the terminal signals the foreground process group
        else:
            os.kill(self.make.pid, sig)  # `kill <pid of make>`

    def assert_stops_after(self, sig: int) -> None:
        self.send(sig)
        self.assert_nothing_left(time.monotonic(), f"after {sig.name}")
        assert not self.state_file.exists()

    def assert_nothing_left(self, since: float, what: str) -> None:
        self.make.wait(timeout=STOPPED_WITHIN + 20)
        while self.processes() and time.monotonic() - since < STOPPED_WITHIN:
            time.sleep(0.1)
        left, elapsed = self.processes(), time.monotonic() - since
        assert not left, f"left running {elapsed:.1f} s {what}: {left}\n{self.log()}"
        print(f"nothing left {elapsed:.1f} s {what}")  # the figure, with pytest -s

    def kill_everything(self) -> None:
        """Whatever a failed test left: SIGKILL every process group of this stack."""
        for _ in range(3):
            for pid in self.processes():
                with contextlib.suppress(OSError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
            time.sleep(0.2)
        if self.make.poll() is None:
            self.make.kill()
        self.make.wait(timeout=10)


@pytest.fixture
def stack(tmp_path):
    started = Stack(tmp_path)
    yield started
    started.kill_everything()


@pytest.fixture
def clients(monkeypatch):
    """Storage and Firestore clients for a running stack's emulators."""

    def connect(state: dict):
        from google.cloud import firestore, storage

        monkeypatch.setenv("STORAGE_EMULATOR_HOST", state["storage_emulator_host"])
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", state["firestore_emulator_host"])
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", state["project"])
        return storage.Client(project=state["project"]), firestore.Client(project=state["project"])

    return connect


def company_b_rows(copies: int) -> bytes:
    """examples/company_B.csv repeated `copies` times under new customer ids."""
    with open(ROOT / "examples" / "company_B.csv", newline="") as file:
        header, *rows = list(csv.reader(file))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for copy in range(copies):
        for row in rows:
            writer.writerow([str(int(row[0]) + copy * 1_000_000), *row[1:]])
    return out.getvalue().encode()


def drop(state: dict, gcs, name: str, data: bytes):
    blob = gcs.bucket(state["inbox_bucket"]).blob(name)
    blob.upload_from_string(data, content_type="text/csv")
    return blob


def job_status(state: dict, db, blob) -> dict:
    from shared.batch import job as batch_job
    from shared.platform.namespace import Namespace

    upload = batch_job.Upload(state["inbox_bucket"], blob.name, str(blob.generation))
    tenant = Namespace(state["batch_tenants"][blob.name.partition("/")[0]])  # the folder's client's
    snapshot = db.collection(tenant.path(batch_job.JOBS)).document(upload.job_id).get()
    return snapshot.to_dict() if snapshot.exists else {}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopped_during_startup_leaves_nothing(stack, sig):
    # The Firestore emulator's java (gcloud's child) has started but the stack does not answer yet.
    stack.wait(lambda: stack.find("java", "CloudFirestore"), 90, "the Firestore emulator's java started")
    assert not stack.state_file.exists()
    stack.assert_stops_after(sig)


def test_parts_killed_during_startup_are_restarted_and_the_stack_comes_up(stack):
    # While the Firestore emulator's java boots (it answers seconds later), the emulator and the
    # gateway (waited for last) both die: each is restarted as if it had died later.
    stack.wait(lambda: stack.find("java", "CloudFirestore"), 90, "the Firestore emulator's java started")
    (gateway,) = [pid for pid in stack.find("-m devstack.serve") if os.getpgid(pid) == pid]
    os.killpg(gateway, signal.SIGKILL)
    for java in stack.find("java", "CloudFirestore"):
        os.kill(java, signal.SIGKILL)
    assert not stack.state_file.exists(), "the stack was up before the parts were killed"
    state = stack.state()
    log = stack.log()
    assert "devstack: Firestore emulator did not start" in log and "Firestore emulator restarted" in log, log
    assert "devstack: gateway did not start" in log and "gateway restarted" in log, log
    assert _sample(state) == 200, log
    stack.assert_stops_after(signal.SIGTERM)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopped_when_idle_leaves_nothing(stack, sig):
    state = stack.state()
    assert requests.get(f"{state['gateway']}/is-alive", timeout=30).status_code == 200
    assert stack.find("java") and stack.find("gcp_storage_emulator") and stack.find("functions_framework")
    stack.assert_stops_after(sig)
    assert "stopping everything" in stack.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopped_mid_batch_leaves_nothing(stack, clients, sig):
    state = stack.state()
    gcs, db = clients(state)
    blob = drop(state, gcs, "company_b/big.csv", company_b_rows(4))
    stack.wait(lambda: job_status(state, db, blob).get("state") == "running", 60, "the job is running")
    stack.assert_stops_after(sig)


def test_killed_parts_are_restarted(stack, clients):
    state = stack.state()
    gcs, db = clients(state)
    blob = drop(state, gcs, "company_b/big.csv", company_b_rows(4))
    stack.wait(lambda: job_status(state, db, blob).get("state") == "running", 60, "the job is running")
    # score_upload's gunicorn master dies mid-job: its worker must not go on writing, and it comes back.
    (master,) = [pid for pid in stack.find("functions_framework") if os.getpgid(pid) == pid]
    workers = [pid for pid in stack.find("functions_framework") if pid != master]
    os.kill(master, signal.SIGKILL)
    stack.wait(lambda: "score_upload restarted" in stack.log(), 60, "score_upload restarted")
    assert "score_upload exited (killed by SIGKILL)" in stack.log()
    assert not set(workers) & set(stack.processes()), "the dead master's worker is still running"
    # A new file is scored by the restarted process. The bridge delivers it, and retries as Eventarc
    # does while a delivery is refused: the platform's retry, not the test, owns that (a direct
    # delivery raced the bridge's for the file's lease).
    later = drop(state, gcs, "company_b/later.csv", company_b_rows(1))
    stack.wait(lambda: job_status(state, db, later).get("state") in ("done", "failed"), 300, "later.csv is handled")
    done = job_status(state, db, later)
    assert done["state"] == "done" and done["rows_read"] == done["rows_scored"] + done["rejected_rows"] > 0

    # The Firestore emulator dies: said so, restarted on the same port, and the API works again.
    (java,) = stack.find("java")
    os.kill(java, signal.SIGKILL)
    stack.wait(lambda: "Firestore emulator restarted" in stack.log(), 90, "emulator restarted")
    assert "Firestore emulator exited" in stack.log()
    port = state["firestore_emulator_host"].rsplit(":", 1)[1]
    assert stack.find("java", f"--port={port}"), "not restarted on the same port"
    stack.wait(lambda: _sample(state) == 200, 90, "/sample answers 200 again")
    stack.assert_stops_after(signal.SIGTERM)


def _sample(state: dict) -> int:
    try:
        return requests.get(f"{state['gateway']}/sample/?click_id=1&offer_ids=3,5,7", timeout=20).status_code
    except requests.RequestException:
        return 0


def test_main_process_killed_leaves_nothing(stack):
    # SIGKILL allows no cleanup: the watchdog, whose stdin closes with the main process, stops the rest.
    stack.wait(lambda: stack.find("java", "CloudFirestore"), 90, "the Firestore emulator's java started")
    (main,) = stack.find("-m devstack.run")
    os.kill(main, signal.SIGKILL)
    stack.assert_nothing_left(time.monotonic(), "after SIGKILL of the main process")
    assert "watchdog: the stack's main process is gone" in stack.log()
