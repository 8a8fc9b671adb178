"""`make run`: the emulators, every function behind one local URL, and the sample data loaded;
plus the batch path: the storage emulator (inbox and results buckets), `score_upload` served by
functions-framework as deployed, the bridge that turns new inbox objects into its CloudEvents, and
the batch engine (devstack/engine.py) that runs large files' tasks as parallel local processes.
The running stack's addresses go to its state file (tools/target.py: one per port), which the
tools (`make drop`, `make report`, ...) read.

Every process it starts has a process group of its own (devstack.processes). SIGINT, SIGTERM or
SIGHUP, at any moment, startup included, stops every group within a few seconds; a watchdog does it
if this process itself dies. A part that exits, during startup or later, or does not answer during
startup, is reported on stderr and restarted on the same port, so the addresses stay valid (an
emulator comes back empty: the sample products and the buckets are created again); after
MAX_RESTARTS within RESTART_WINDOW it stops everything.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack import emulators, processes, serve
from devstack.clients import environment, example_clients, new_keys
from shared.platform.namespace import Namespace
from tools import target
from tools.load_products import load_products_file

LOCAL_PROJECT = "offer-bandits-local"
SAMPLE_PRODUCTS = "examples/company_A_products.csv"
INBOX_BUCKET = "local-inbox"
RESULTS_BUCKET = "local-results"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EMULATOR_TIMEOUT = 90
MAX_RESTARTS = 5
RESTART_WINDOW = 300


class Stopped(BaseException):
    """Raised by the first stop signal, wherever the main thread is."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)


class GaveUp(RuntimeError):
    pass


_stopping = False


def _on_stop_signal(signum, _frame) -> None:
    global _stopping
    if not _stopping:  # a second Ctrl-C must not interrupt the cleanup
        _stopping = True
        raise Stopped(signum)


@dataclass
class Service:
    """One process group of the stack, restarted by the supervisor when it exits."""

    name: str
    launch: Callable[[], subprocess.Popen]
    ready: Callable[[subprocess.Popen], None] = lambda _process: None  # waits until it answers, sets it up
    log_tail: Callable[[], str] = lambda: ""
    comeback: str = ""  # what a restart means for the user
    process: subprocess.Popen | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self) -> None:
        self.process = self.launch()
        self.ready(self.process)


def main() -> int:
    global _stopping
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)
    # Inherited by everything the stack starts: `grep -l OFFER_BANDITS_STACK /proc/*/environ` finds it all.
    os.environ.setdefault("OFFER_BANDITS_STACK", str(os.getpid()))
    port = int(os.environ.get("PORT", "8000"))
    state_file = target.state_file(port)  # local-results/ is gitignored
    wrote_state = False
    try:
        processes.watch()
        services, state = _start(port)
        state_file.parent.mkdir(parents=True, exist_ok=True)
        wrote_state = True  # before the write: a signal in between must still remove it
        written = state_file.with_suffix(".tmp")
        written.write_text(json.dumps(state, indent=2))
        written.replace(state_file)  # a tool never reads half a file
        _say(
            f"\noffer-bandits is running at {state['gateway']}\n"
            f"  Firestore emulator: {state['firestore_emulator_host']} (FIRESTORE_EMULATOR_HOST), "
            f"project {state['project']}\n"
            f"  Storage emulator: {state['storage_emulator_host']}, buckets {INBOX_BUCKET} and {RESULTS_BUCKET}; "
            f"score_upload at {state['score_upload']}, fed by the bridge\n"
            f"  sample data: products from {SAMPLE_PRODUCTS}\n"
            f"  clients (examples/clients.json), each a tenant calling with its own API key (x-api-key):\n"
            + "".join(f"    {tenant:<10} {key}\n" for tenant, key in state["api_keys"].items())
            + f"  try: curl -H 'x-api-key: {state['api_keys']['default']}' "
            f"'{state['gateway']}/sample/?click_id=1&offer_ids=3,5,7'\n"
            f"       make drop FILE=examples/company_B.csv CLIENT=company_b\n"
            "Ctrl-C stops everything; a part that exits is restarted.\n",
            sys.stdout,
        )
        _supervise(services)
    except emulators.MissingPrerequisite as missing:
        _say(str(missing))
        return 1
    except Stopped as stop:
        _say(f"\ndevstack: {stop}: stopping everything")
        return 0
    except RuntimeError as error:  # a part that does not start, or keeps exiting
        _say(f"devstack: {error}")
        return 1
    finally:
        _stopping = True
        if wrote_state:
            state_file.unlink(missing_ok=True)
        processes.stop_all()
        _say("devstack: stopped")
    return 0


def _start(port: int) -> tuple[list[Service], dict]:
    """Start every part (each waits only for what it needs) and return them with the stack's addresses."""
    firestore_port = emulators.free_port(avoid=(port,))
    storage_port = emulators.free_port(avoid=(port, firestore_port))
    score_upload_port = emulators.free_port(avoid=(port, firestore_port, storage_port))
    engine_port = emulators.free_port(avoid=(port, firestore_port, storage_port, score_upload_port))
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", LOCAL_PROJECT)
    engine_url = f"http://127.0.0.1:{engine_port}"
    os.environ.update(
        FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{firestore_port}",
        STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{storage_port}",
        GOOGLE_CLOUD_PROJECT=project,
        INBOX_BUCKET=INBOX_BUCKET,
        RESULTS_BUCKET=RESULTS_BUCKET,
        # Files over BATCH_PARALLEL_BYTES go to the batch engine: here devstack/engine.py, which
        # answers Cloud Run's jobs.run and runs the job's tasks as local processes.
        BATCH_ENGINE_JOB=f"projects/{project}/locations/local/jobs/batch-engine",
        BATCH_ENGINE_URL=engine_url,
    )
    clients = example_clients()
    keys = new_keys(clients)
    os.environ.update(environment(clients, keys, os.environ))
    env = dict(os.environ)
    url = f"http://127.0.0.1:{port}"
    score_upload_url = f"http://127.0.0.1:{score_upload_port}/"

    firestore = _emulator_service(
        "Firestore emulator",
        lambda: emulators.launch_firestore(firestore_port),
        lambda: _load_products(clients),
        f"on 127.0.0.1:{firestore_port} with an empty database; the sample products are loaded again",
    )
    storage = _emulator_service(
        "storage emulator",
        lambda: emulators.launch_storage(storage_port),
        lambda: _create_buckets(project),
        f"on 127.0.0.1:{storage_port} with empty buckets",
    )
    gateway = Service(
        "gateway", lambda: serve.launch(port, env), lambda process: serve.wait_for(f"{url}/is-alive", process)
    )
    score_upload = Service(
        "score_upload",
        lambda: processes.spawn(_score_upload_command(score_upload_port), env=env),
        lambda process: serve.wait_for(score_upload_url, process),
    )
    engine = Service(
        "batch engine",
        lambda: processes.spawn([sys.executable, "-m", "devstack.engine", "--port", str(engine_port)], env=env),
        lambda process: serve.wait_for(engine_url, process),
        comeback="with no executions: a file it was running is finished by its next delivery or a new upload",
    )
    bridge = Service(
        "bridge",
        lambda: processes.spawn(
            [sys.executable, "-m", "devstack.bridge", "--bucket", INBOX_BUCKET, "--target", score_upload_url], env=env
        ),
    )
    # Everything boots at once; each is then waited for in the order they need each other.
    for service in (firestore, storage, gateway, score_upload, engine):
        service.process = service.launch()
    _until_ready(firestore)
    _until_ready(storage)
    _until_ready(score_upload)
    _until_ready(engine)
    bridge.start()  # it answers nothing: if it exits, the supervisor restarts it
    _until_ready(gateway)  # its /is-alive reads Firestore
    state = {
        "gateway": url,
        "project": project,
        "firestore_emulator_host": os.environ["FIRESTORE_EMULATOR_HOST"],
        "storage_emulator_host": os.environ["STORAGE_EMULATOR_HOST"],
        "inbox_bucket": INBOX_BUCKET,
        "results_bucket": RESULTS_BUCKET,
        "score_upload": score_upload_url,
        "batch_engine": engine_url,
        "pid": os.getpid(),
        "api_keys": keys,  # tenant -> its API key (x-api-key header); this file is local and gitignored
        "batch_tenants": json.loads(os.environ["BATCH_TENANTS"]),  # inbox folder -> tenant
    }
    return [firestore, storage, gateway, score_upload, engine, bridge], state


def _emulator_service(name: str, launch: Callable[[], emulators.Emulator], setup: Callable, comeback: str) -> Service:
    current: list[emulators.Emulator] = []

    def launch_process() -> subprocess.Popen:
        current[:] = [launch()]
        return current[0].process

    def ready(_process) -> None:
        current[0].wait_ready(EMULATOR_TIMEOUT)
        setup()

    return Service(name, launch_process, ready, log_tail=lambda: current[0].log_tail(5), comeback=comeback)


def _load_products(clients: dict[str, dict]) -> None:
    for client in clients.values():
        if client.get("products_file"):
            load_products_file(client["products_file"], Namespace(client["tenant"]))


def _create_buckets(project: str) -> None:
    from google.cloud import storage as gcs

    client = gcs.Client(project=project)
    for bucket in (INBOX_BUCKET, RESULTS_BUCKET):
        client.create_bucket(bucket)


def _score_upload_command(port: int) -> list[str]:
    """score_upload served by functions-framework as deployed."""
    return [
        sys.executable,
        "-m",
        "functions_framework",
        "--target",
        "score_upload",
        "--source",
        "functions/main.py",
        "--signature-type",
        "cloudevent",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def _supervise(services: list[Service]) -> None:
    while True:
        time.sleep(0.5)
        for service in services:
            if service.process.poll() is not None:
                _restart(service)


def _until_ready(service: Service) -> None:
    """Wait for a part that was launched; one that exits or does not answer during startup is
    restarted like one that exits later (the same MAX_RESTARTS within RESTART_WINDOW)."""
    try:
        service.ready(service.process)
        return
    except emulators.MissingPrerequisite:
        raise
    except RuntimeError as error:
        processes.stop(service.process)
        _say(f"devstack: {service.name} did not start: {error}")
    while not _start_again(service):
        pass


def _restart(service: Service) -> None:
    code = service.process.returncode
    processes.stop(service.process)  # what it left behind: gunicorn's worker, gcloud's java
    tail = service.log_tail().rstrip()
    _say(f"devstack: {service.name} exited ({_exit_reason(code)})" + (f"; its log ends:\n{tail}" if tail else ""))
    _start_again(service)


def _start_again(service: Service) -> bool:
    """Start a part that is down, after a back-off; True once it answers. Raises GaveUp after
    MAX_RESTARTS within RESTART_WINDOW."""
    now = time.monotonic()
    service.restarts = [moment for moment in service.restarts if now - moment < RESTART_WINDOW]
    if len(service.restarts) >= MAX_RESTARTS:
        raise GaveUp(
            f"{service.name} exited {MAX_RESTARTS + 1} times within {RESTART_WINDOW // 60} minutes; stopping everything"
        )
    delay = 2 ** len(service.restarts) - 1  # 0, 1, 3, 7, 15 s
    _say(f"devstack: restarting {service.name}" + (f" in {delay} s" if delay else ""))
    time.sleep(delay)
    service.restarts.append(time.monotonic())
    try:
        service.start()
    except emulators.MissingPrerequisite:
        raise
    except RuntimeError as error:  # did not come back: the next round tries again, or gives up
        _say(f"devstack: {service.name} did not come back: {error}")
        processes.stop(service.process)
        return False
    _say(f"devstack: {service.name} restarted" + (f" {service.comeback}" if service.comeback else ""))
    return True


def _exit_reason(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    with contextlib.suppress(ValueError):
        return f"killed by {signal.Signals(-code).name}"
    return f"killed by signal {-code}"


def _say(message: str, stream=None) -> None:
    """Print, even to a terminal that is gone (SIGHUP): a failed print must not skip the cleanup."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=stream or sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
