"""One task of the batch engine, as the Cloud Run job runs it (functions/batch_task.py): which file,
tenant, plan version and phase come from the execution's environment (shared/batch/engine.py sets
them), which task from Cloud Run's CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_ATTEMPT.

A task that fails exits non-zero and Cloud Run runs it again, up to the job's max retries
(BATCH_MAX_RETRIES tells the task how many); the last attempt to fail marks the file failed with
the error, so a file never stays `running` because its tasks gave up.
"""

import os

from shared.batch import engine, job, stages
from shared.batch.outputs import JobFiles
from shared.batch.plan import Plan
from shared.batch.status import JOBS
from shared.customer.store import DEFAULT_EPISODE_WINDOW_SECONDS, EPISODE_WINDOW_ENV
from shared.platform import windows
from shared.platform.firestore import get_db
from shared.platform.log import log
from shared.platform.namespace import Namespace

DEFAULT_MAX_RETRIES = 3


def context_from_env(environ=os.environ) -> tuple[stages.Context, str, int]:
    job_id = environ["BATCH_JOB_ID"]
    space = Namespace(environ["BATCH_TENANT"])
    db, gcs = get_db(), job.get_gcs()
    files = JobFiles(gcs, gcs.bucket(environ["RESULTS_BUCKET"]), job_id, "")
    data = files.get(files.path(int(environ["BATCH_PLAN_VERSION"]), "plan"))
    if data is None:
        raise RuntimeError(f"batch job {job_id} has no plan version {environ['BATCH_PLAN_VERSION']} (finished?)")
    plan = Plan.loads(data)
    files.source = plan.source
    ctx = stages.Context(
        plan=plan,
        db=db,
        gcs=gcs,
        files=files,
        space=space,
        status_ref=db.collection(space.path(JOBS)).document(job_id),
        engine=engine.CloudRunJob(),
        reward_window=windows.window_seconds(EPISODE_WINDOW_ENV, DEFAULT_EPISODE_WINDOW_SECONDS),
        attempt=int(environ.get("CLOUD_RUN_TASK_ATTEMPT") or 0),
    )
    return ctx, environ["BATCH_PHASE"], int(environ.get("CLOUD_RUN_TASK_INDEX") or 0)


def main(environ=os.environ) -> int:
    ctx, phase, index = None, environ.get("BATCH_PHASE"), environ.get("CLOUD_RUN_TASK_INDEX")
    try:
        ctx, phase, index = context_from_env(environ)
        stages.run_task(ctx, phase, index)
    except Exception as error:
        log("ERROR", "batch task failed", exc_info=True, job=environ.get("BATCH_JOB_ID"), phase=phase, task=index)
        retries = int(environ.get("BATCH_MAX_RETRIES") or DEFAULT_MAX_RETRIES)
        if ctx is not None and ctx.attempt >= retries:
            reason = f"{phase} task {index} failed {ctx.attempt + 1} times; last: {type(error).__name__}: {error}"
            job.fail(ctx.status_ref, ctx.plan.name, reason[:1000])
        return 1
    return 0
