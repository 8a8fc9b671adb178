"""The local stand-in for the batch engine's Cloud Run job: it answers the Cloud Run Admin API's
`jobs.run` (the one call shared/batch/engine.py makes) and runs the execution's tasks as local
processes, `python -m functions.batch_task`, the code the deployed job runs.

    python -m devstack.engine --port PORT [--parallelism N] [--max-retries N]

Like Cloud Run: each task gets CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT, CLOUD_RUN_TASK_ATTEMPT
and CLOUD_RUN_EXECUTION, and the execution's environment overrides; at most `parallelism` tasks
run at once; a task that exits non-zero (or is killed) is run again, up to `max_retries` times.
`GET /v2/{execution name}` describes an execution and its tasks (with their process ids: the
tests kill one mid-run), which the real API also answers, without the process ids.
"""

import argparse
import contextlib
import itertools
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_PARALLELISM = 2
DEFAULT_MAX_RETRIES = 3


@dataclass
class Task:
    index: int
    attempt: int = 0
    pid: int | None = None
    state: str = "PENDING"  # RUNNING, SUCCEEDED, FAILED
    exit_codes: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0  # user + system time of all its attempts
    seconds: float = 0.0  # wall time of all its attempts


@dataclass
class Execution:
    name: str
    env: dict
    tasks: list[Task]
    state: str = "RUNNING"  # SUCCEEDED or FAILED once every task has ended

    def describe(self) -> dict:
        return {
            "name": self.name,
            "state": self.state,
            "taskCount": len(self.tasks),
            "succeededCount": sum(task.state == "SUCCEEDED" for task in self.tasks),
            "failedCount": sum(task.state == "FAILED" for task in self.tasks),
            "tasks": [task.__dict__ for task in self.tasks],
        }


class Engine:
    def __init__(self, env: dict | None = None, parallelism: int = DEFAULT_PARALLELISM, max_retries: int = 3):
        self.env = dict(os.environ if env is None else env)
        self.parallelism = parallelism
        self.max_retries = max_retries
        self.executions: dict[str, Execution] = {}
        self.lock = threading.Lock()
        self.numbers = itertools.count(1)

    def run(self, job: str, overrides: dict) -> Execution:
        tasks = int(overrides.get("taskCount") or 1)
        env = {
            item["name"]: item["value"]
            for container in overrides.get("containerOverrides", [])
            for item in container.get("env", [])
        }
        with self.lock:
            name = f"{job}/executions/local-{next(self.numbers):05d}"
            execution = Execution(name, env, [Task(index) for index in range(tasks)])
            self.executions[name] = execution
        threading.Thread(target=self._run, args=(execution,), daemon=True).start()
        return execution

    def _run(self, execution: Execution) -> None:
        pending = iter(execution.tasks)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    task = next(pending, None)
                if task is None:
                    return
                self._run_task(execution, task)

        workers = [
            threading.Thread(target=worker, daemon=True) for _ in range(min(self.parallelism, len(execution.tasks)))
        ]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        execution.state = "FAILED" if any(task.state == "FAILED" for task in execution.tasks) else "SUCCEEDED"

    def _run_task(self, execution: Execution, task: Task) -> None:
        while True:
            env = {
                **self.env,
                **execution.env,
                "CLOUD_RUN_EXECUTION": execution.name.rsplit("/", 1)[-1],
                "CLOUD_RUN_TASK_INDEX": str(task.index),
                "CLOUD_RUN_TASK_COUNT": str(len(execution.tasks)),
                "CLOUD_RUN_TASK_ATTEMPT": str(task.attempt),
                "BATCH_MAX_RETRIES": str(self.max_retries),
            }
            started = time.monotonic()
            process = subprocess.Popen([sys.executable, "-m", "functions.batch_task"], cwd=ROOT, env=env)
            task.pid, task.state = process.pid, "RUNNING"
            _, status, usage = os.wait4(process.pid, 0)  # the child's own resource use, as it ends
            process.returncode = code = os.waitstatus_to_exitcode(status)
            task.exit_codes.append(code)
            task.seconds += time.monotonic() - started
            task.cpu_seconds += usage.ru_utime + usage.ru_stime
            if code == 0:
                task.state = "SUCCEEDED"
                return
            if task.attempt >= self.max_retries:
                task.state = "FAILED"
                return
            print(f"engine: task {task.index} of {execution.name} exited {code}; retrying", file=sys.stderr, flush=True)
            task.attempt += 1


def handler_for(engine: Engine):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            path = self.path.removeprefix("/v2/")
            if not path.endswith(":run"):
                return self._answer(404, {"error": {"code": 404, "message": f"no such method {self.path}"}})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            execution = engine.run(path.removesuffix(":run"), body.get("overrides") or {})
            operation = {"name": f"{execution.name}/operations/run", "metadata": {"name": execution.name}}
            return self._answer(200, operation)

        def do_GET(self):  # noqa: N802
            execution = engine.executions.get(self.path.removeprefix("/v2/"))
            if execution is None:
                return self._answer(404, {"error": {"code": 404, "message": f"no execution {self.path}"}})
            return self._answer(200, execution.describe())

        def _answer(self, code: int, document: dict) -> None:
            data = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args) -> None:
            pass

    return Handler


def start_in_background(port: int, engine: Engine) -> tuple[ThreadingHTTPServer, str]:
    """Serve `engine` on 127.0.0.1:port from a thread of this process (the tests' way)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(engine))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parallelism", type=int, default=os.cpu_count() or DEFAULT_PARALLELISM)
    parser.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES)
    args = parser.parse_args()
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), handler_for(Engine(None, args.parallelism, args.max_retries))
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
