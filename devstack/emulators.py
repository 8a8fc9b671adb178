"""Start the real Firestore and Cloud Storage emulators on free loopback ports, and stop them.

Used by `make run` and by the test suite alike, so both talk to the same servers over the network.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from devstack import processes

FIRESTORE_JAR = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
PUBSUB_EMULATOR = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator"


class MissingPrerequisite(RuntimeError):
    pass


def free_port(avoid: tuple[int, ...] = ()) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port


@dataclass
class Emulator:
    name: str
    host_port: str
    process: subprocess.Popen
    log_path: str
    ready_url: str = ""
    env: dict = field(default_factory=dict)

    def stop(self) -> None:
        """Stop its whole process group: gcloud's java child too."""
        processes.stop(self.process)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"the {self.name} emulator exited with {code}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1):
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"the {self.name} emulator did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        with open(self.log_path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])


def firestore_command(port: int) -> list[str]:
    gcloud = shutil.which("gcloud")
    if gcloud and os.path.exists(FIRESTORE_JAR):
        return [gcloud, "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}", "--quiet"]
    raise MissingPrerequisite(
        "The Firestore emulator is missing. Install the Google Cloud CLI and its emulator:\n"
        "  gcloud components install cloud-firestore-emulator\n"
        "  (or apt-get install google-cloud-cli-firestore-emulator)\n"
        "It needs Java 11+ on PATH (apt-get install default-jre-headless)."
    )


def pubsub_command(port: int) -> list[str]:
    gcloud = shutil.which("gcloud")
    if gcloud and os.path.exists(PUBSUB_EMULATOR):
        return [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}", "--quiet"]
    raise MissingPrerequisite(
        "The Pub/Sub emulator is missing (the decision log's local path, docs/analytics.md):\n"
        "  gcloud components install pubsub-emulator beta\n"
        "  (or apt-get install google-cloud-cli-pubsub-emulator)\n"
        "It needs Java 11+ on PATH (apt-get install default-jre-headless)."
    )


def _launch(name: str, command: list[str], port: int, ready_path: str) -> Emulator:
    """Spawn the emulator in its own process group (recorded by devstack.processes); not yet answering."""
    if name in ("firestore", "pubsub") and not shutil.which("java"):
        raise MissingPrerequisite(
            f"Java is missing: the {name} emulator needs Java 11+ (apt-get install default-jre-headless)."
        )
    log = tempfile.NamedTemporaryFile(prefix=f"{name}-emulator-", suffix=".log", delete=False)
    process = processes.spawn(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Emulator(name, f"127.0.0.1:{port}", process, log.name, ready_url=f"http://127.0.0.1:{port}{ready_path}")


def _started(emulator: Emulator, timeout: float) -> Emulator:
    try:
        emulator.wait_ready(timeout)
    except BaseException:  # including an interrupt while waiting: never leave it running
        emulator.stop()
        raise
    return emulator


def launch_firestore(port: int) -> Emulator:
    emulator = _launch("firestore", firestore_command(port), port, "/")
    emulator.env = {"FIRESTORE_EMULATOR_HOST": emulator.host_port}
    return emulator


def launch_storage(port: int) -> Emulator:
    command = [
        sys.executable,
        "-m",
        "gcp_storage_emulator",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--in-memory",
        "--quiet",
    ]
    emulator = _launch("storage", command, port, "/storage/v1/b")
    emulator.env = {"STORAGE_EMULATOR_HOST": f"http://{emulator.host_port}"}
    return emulator


def launch_pubsub(port: int) -> Emulator:
    emulator = _launch("pubsub", pubsub_command(port), port, "/")
    emulator.env = {"PUBSUB_EMULATOR_HOST": emulator.host_port}
    return emulator


def start_pubsub(port: int | None = None, timeout: float = 90) -> Emulator:
    return _started(launch_pubsub(port or free_port()), timeout)


def start_firestore(port: int | None = None, timeout: float = 90) -> Emulator:
    return _started(launch_firestore(port or free_port()), timeout)


def start_storage(port: int | None = None, timeout: float = 60) -> Emulator:
    return _started(launch_storage(port or free_port()), timeout)


def clear_firestore(host_port: str, project: str, patience: float = 90) -> None:
    """Delete every document. The emulator refuses (409) while a transaction holds locks, e.g. one
    left open by a process that was killed mid-request, until its lock times out, and a freshly
    started one on a busy machine may take longer than a request's timeout to answer: keep asking."""
    url = f"http://{host_port}/emulator/v1/projects/{project}/databases/(default)/documents"
    deadline = time.monotonic() + patience
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10).read()
            return
        except urllib.error.HTTPError as error:
            if error.code != 409 or time.monotonic() > deadline:
                raise
            time.sleep(1)
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
