"""Starting a stage of a batch file on the Cloud Run job (infra/batch_engine.tf), through the Cloud
Run Admin API's `jobs.run` with overrides: the stage's task count, and the file, tenant, plan
version and phase as environment variables of this one execution. Each task runs
`functions/batch_task.py`; Cloud Run gives it CLOUD_RUN_TASK_INDEX, _COUNT and _ATTEMPT and
retries it when it fails.

The REST call goes through google-auth's AuthorizedSession (google-auth comes with every
google-cloud package): no client library of its own. BATCH_ENGINE_URL replaces the API's address:
`make run` and the tests point it at devstack/engine.py, which runs the tasks as local processes.
"""

import os

import google.auth
import requests
from google.auth.transport.requests import AuthorizedSession

API = "https://run.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TIMEOUT_SECONDS = 60
ENGINE_JOB_ENV = "BATCH_ENGINE_JOB"  # projects/{project}/locations/{region}/jobs/{job}
ENGINE_URL_ENV = "BATCH_ENGINE_URL"


class EngineError(RuntimeError):
    """The engine refused to start an execution (the delivery or task fails and is retried)."""


def configured() -> bool:
    return bool(os.environ.get(ENGINE_JOB_ENV))


class CloudRunJob:
    name = "cloud-run"

    def __init__(self, job: str | None = None, url: str | None = None, session=None):
        self.job = job or os.environ[ENGINE_JOB_ENV]
        self.url = (url or os.environ.get(ENGINE_URL_ENV) or API).rstrip("/")
        self._session = session

    def session(self):
        if self._session is None:
            if self.url == API:
                credentials, _ = google.auth.default(scopes=[SCOPE])
                self._session = AuthorizedSession(credentials)
            else:  # the local stand-in takes no credentials
                self._session = requests.Session()
        return self._session

    def start(self, ctx, phase: str, tasks: int) -> str:
        """Start an execution of `tasks` tasks for the stage; returns its name."""
        plan = ctx.plan
        env = {
            "BATCH_JOB_ID": plan.job_id,
            "BATCH_TENANT": plan.tenant,
            "BATCH_PLAN_VERSION": str(plan.version),
            "BATCH_PHASE": phase,
        }
        body = {
            "overrides": {
                "containerOverrides": [{"env": [{"name": k, "value": v} for k, v in env.items()]}],
                "taskCount": tasks,
            }
        }
        answer = self.session().post(f"{self.url}/v2/{self.job}:run", json=body, timeout=TIMEOUT_SECONDS)
        if answer.status_code >= 300:
            raise EngineError(f"starting {self.job} failed: HTTP {answer.status_code} {answer.text[:500]}")
        operation = answer.json()
        return (operation.get("metadata") or {}).get("name") or operation.get("name", "")
