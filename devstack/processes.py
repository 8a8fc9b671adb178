"""The local stack's child processes: each in its own process group, so that stopping one stops
everything it spawned (gcloud starts java, gunicorn starts workers).

`spawn` records a process before SIGINT/SIGTERM can interrupt its caller; `stop` and `stop_all`
give groups `grace` seconds after SIGTERM, then SIGKILL them. After `watch()`, a watchdog process
(this file run as a script) also learns every group and stops them if this process dies without
cleaning up (SIGKILL, a crash): its stdin reaches EOF however its parent dies.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE = 3.0  # seconds between SIGTERM and SIGKILL; gunicorn's own graceful stop would wait 30 s

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_groups: list[subprocess.Popen] = []
_watchdog: subprocess.Popen | None = None


def spawn(command: list[str], **kwargs) -> subprocess.Popen:
    """Popen in a new session (process group = its pid), recorded for `stop_all`."""
    with _signals_held():
        process = subprocess.Popen(command, start_new_session=True, **kwargs)
        _groups.append(process)
        _tell_watchdog(f"{process.pid}")
    return process


def stop(process: subprocess.Popen, grace: float = GRACE) -> None:
    """Stop the process's whole group (all it spawned, even after the leader died) and reap the leader."""
    _stop_groups([process], grace)
    if process in _groups:
        _groups.remove(process)
        _tell_watchdog(f"-{process.pid}")


def stop_all(grace: float = GRACE) -> None:
    """Stop every group `spawn` started, all at once, then the watchdog."""
    global _watchdog
    _stop_groups(list(_groups), grace)
    for process in _groups:
        _tell_watchdog(f"-{process.pid}")
    _groups.clear()
    if _watchdog:
        with contextlib.suppress(OSError):
            _watchdog.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            _watchdog.wait(timeout=grace + 2)
        _watchdog = None


def watch() -> None:
    """Start the watchdog that stops every spawned group once this process is gone, however it went."""
    global _watchdog
    if _watchdog is None:
        with _signals_held():
            _watchdog = subprocess.Popen(
                [sys.executable, "-m", "devstack.processes"],
                cwd=_ROOT,
                stdin=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            for process in _groups:
                _tell_watchdog(f"{process.pid}")


def _tell_watchdog(line: str) -> None:
    if _watchdog and _watchdog.stdin and not _watchdog.stdin.closed:
        with contextlib.suppress(OSError):
            _watchdog.stdin.write(line + "\n")
            _watchdog.stdin.flush()


def _stop_groups(processes: list[subprocess.Popen], grace: float) -> None:
    for process in processes:
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(process) for process in processes):
        time.sleep(0.05)
    for process in processes:
        _signal_group(process.pid, signal.SIGKILL)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader: a zombie still counts as a member of its group
    return _signal_alive(process.pid)


@contextlib.contextmanager
def _signals_held():
    """Delay SIGINT/SIGTERM handlers until the block is done, so a spawned process is never lost
    between fork and being recorded. Only the main thread can set handlers (and only it runs them)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for signum in caught:
            signal.raise_signal(signum)


def _watchdog_main() -> None:
    """Read group ids (`-id` forgets one) until EOF, then stop the groups still listed."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # only EOF on stdin ends the watch
    groups: set[int] = set()
    for line in sys.stdin:
        pgid = int(line)
        if pgid > 0:
            groups.add(pgid)
        else:
            groups.discard(-pgid)
    alive = [pgid for pgid in groups if _signal_alive(pgid)]
    if not alive:
        return
    print(f"devstack watchdog: the stack's main process is gone; stopping {len(alive)} process groups", file=sys.stderr)
    for pgid in alive:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline and any(_signal_alive(pgid) for pgid in alive):
        time.sleep(0.05)
    for pgid in alive:
        _signal_group(pgid, signal.SIGKILL)


def _signal_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if __name__ == "__main__":
    _watchdog_main()
