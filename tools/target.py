"""Where an operator tool works: one rule for every tool (report, evaluate, reset, drop, traffic,
load-products), first match wins:

1. FIRESTORE_EMULATOR_HOST in the environment: that emulator (project GOOGLE_CLOUD_PROJECT, default
   offer-bandits-local);
2. `--project ID`: that Google Cloud project (application default credentials);
3. a running `make run`: its state file (`state_file()`);
4. GOOGLE_CLOUD_PROJECT in the environment: that project.

Each `make run` writes its addresses to its own state file, `local-results/.devstack-<PORT>.json`
(or DEVSTACK_STATE_FILE), so two stacks in one checkout never share one. A tool finds the stack
on PORT when PORT is set, else the only stack running; with several, it asks for PORT.
"""

import json
import os
import pathlib
import socket
from dataclasses import dataclass

STATE_DIR = pathlib.Path("local-results")
LOCAL_PROJECT = "offer-bandits-local"


def state_file(port: int | str | None = None) -> pathlib.Path:
    """The state file of the stack on `port` (DEVSTACK_STATE_FILE wins when set)."""
    if os.environ.get("DEVSTACK_STATE_FILE"):
        return pathlib.Path(os.environ["DEVSTACK_STATE_FILE"])
    return STATE_DIR / f".devstack-{port or os.environ.get('PORT', '8000')}.json"


def running_stack() -> dict | None:
    """The state of the running `make run` (see the module's doc), or None when none runs."""
    if os.environ.get("DEVSTACK_STATE_FILE") or os.environ.get("PORT"):
        path = state_file()
        return json.loads(path.read_text()) if path.exists() else None
    found = sorted(STATE_DIR.glob(".devstack-*.json"))
    if len(found) > 1:
        ports = ", ".join(path.stem.removeprefix(".devstack-") for path in found)
        raise SystemExit(f"several local stacks are running (ports {ports}): say which with PORT=<port>")
    return json.loads(found[0].read_text()) if found else None


def required_stack() -> dict:
    """The running `make run`'s state; exits with a clear message when none runs."""
    state = running_stack()
    if state is None:
        raise SystemExit(f"No running stack ({state_file()} is missing): start `make run` in another terminal first.")
    return state


@dataclass(frozen=True)
class Target:
    description: str
    stack: dict | None = None  # the local stack's state, when the target is `make run`


def connect(project: str | None, nothing: str = "start `make run`, or pass --project ID") -> Target:
    """Point the Google Cloud clients at the target (environment variables they read); `nothing`
    says what to do when there is none."""
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", LOCAL_PROJECT)
        host, name = os.environ["FIRESTORE_EMULATOR_HOST"], os.environ["GOOGLE_CLOUD_PROJECT"]
        return Target(f"Firestore emulator {host}, project {name}")
    if project:
        os.environ["GOOGLE_CLOUD_PROJECT"] = project
        return Target(f"Google Cloud project {project}")
    state = running_stack()
    if state is not None:
        host = state["firestore_emulator_host"]
        if not _answers(host):
            raise SystemExit(
                f"{state_file()} names a Firestore emulator at {host} that does not answer: is make run up?"
            )
        os.environ.update(
            FIRESTORE_EMULATOR_HOST=host,
            GOOGLE_CLOUD_PROJECT=state["project"],
            STORAGE_EMULATOR_HOST=state["storage_emulator_host"],
        )
        return Target(f"the local stack (`make run`): Firestore emulator {host}, project {state['project']}", state)
    if os.environ.get("GOOGLE_CLOUD_PROJECT"):
        return Target(f"Google Cloud project {os.environ['GOOGLE_CLOUD_PROJECT']}")
    raise SystemExit(f"Nothing to work on: {nothing}.")


def _answers(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False
