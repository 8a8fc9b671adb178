"""How a planned batch file moves from stage to stage, whoever runs its tasks.

A stage is a plan version and a phase: `score` (one task per byte range) then `pack` (one task
per slice of the buckets). An engine runs a stage's tasks: `InProcess` one after the other in
this process (small files, inside the storage-triggered function), or shared/batch/engine.py's
Cloud Run job, whose tasks run in parallel and are retried by Cloud Run when they fail.

A task that finds its own record done skips its work (a retry, or a redelivered in-process run
resuming). After its work it counts the stage's done records; the task that sees them all moves
the file on (the status document's stage lease makes that happen once even when two tasks finish
together):
- after the score stage, the ranges must join up: each range's first record starts where the
  previous range stopped. A quoted field with a line break across a boundary breaks that; the
  file is then scored again as one range (plan version + 1), the only way to read it exactly.
  Otherwise the pack stage starts.
- after the pack stage, the file is finished (shared/batch/packing.py).
"""

import datetime
import time
import uuid
from dataclasses import dataclass, field

from shared.batch import packing, score, status
from shared.batch.outputs import JobFiles
from shared.batch.plan import Plan
from shared.platform.log import log
from shared.platform.namespace import Namespace

SCORE, PACK, FINISH = "score", "pack", "finish"
STAGE_LEASE = datetime.timedelta(seconds=30)


@dataclass
class Context:
    plan: Plan
    db: object
    gcs: object
    files: JobFiles
    space: Namespace
    status_ref: object
    engine: object  # InProcess or engine.CloudRunJob: start(ctx, version, phase, tasks) -> execution name
    reward_window: float
    attempt: int = 0
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    heartbeat: object = lambda: None  # called with every progress report (in-process: renews the lease)

    def inbox_blob(self):
        return self.gcs.bucket(self.plan.bucket).blob(self.plan.name, generation=int(self.plan.generation))

    def with_plan(self, plan: Plan) -> "Context":
        return Context(**{**self.__dict__, "plan": plan})


class InProcess:
    """Runs a stage's tasks one after another in this process."""

    name = "in-process"

    def start(self, ctx: Context, phase: str, tasks: int) -> str:
        for index in range(tasks):
            run_task(ctx, phase, index)
        return self.name


def run_task(ctx: Context, phase: str, index: int) -> None:
    state = ctx.status_ref.get(["state", "plan_version"]).to_dict() or {}
    if state.get("state") in ("done", "failed") or state.get("plan_version") != ctx.plan.version:
        return  # finished, or replanned: this task belongs to an old plan
    kind = status.RANGES if phase == SCORE else status.GROUPS
    record = status.task_ref(ctx.status_ref, kind, ctx.plan.version, index).get()
    if not (record.exists and record.get("state") == "done"):
        if phase == SCORE:
            score.score_range(ctx, index)
        else:
            packing.pack_group(ctx, index, status.tasks_of(ctx.status_ref, status.RANGES, ctx.plan.version))
    tasks = ctx.plan.ranges if phase == SCORE else ctx.plan.groups
    if status.done_count(ctx.status_ref, kind, ctx.plan.version) < tasks:
        return
    if phase == SCORE:
        after_score(ctx)
    elif _claim(ctx, FINISH, {}):  # finished by one task, or again by a retry if that one died
        packing.finish(ctx, status.tasks_of(ctx.status_ref, status.RANGES, ctx.plan.version))


def after_score(ctx: Context) -> None:
    plan = ctx.plan
    ranges = status.tasks_of(ctx.status_ref, status.RANGES, plan.version)
    broken = [r["index"] for r, following in zip(ranges, ranges[1:], strict=False) if r["end"] != following["first"]]
    if broken:
        log(
            "WARNING",
            "a quoted line break crosses a range boundary: the file is scored again as one range",
            job=plan.job_id,
            ranges=broken,
        )
        replanned = plan.as_one_range()
        ctx.files.put(ctx.files.path(replanned.version, "plan"), replanned.dumps(), "application/json")
        start_stage(ctx.with_plan(replanned), SCORE, {"plan_version": replanned.version, "ranges": 1, "groups": 1})
        return
    totals = {key: sum(r[key] for r in ranges) for key in ("rows_read", "rows_scored", "rejected_rows")}
    progress = {
        "phase": PACK,
        "rows_done": totals["rows_read"],
        "rows_total": totals["rows_read"],
        "ranges_done": len(ranges),
        "ranges": plan.ranges,
        "packs": plan.buckets,
        "at": status.now(),
    }
    start_stage(ctx, PACK, {**totals, "progress": progress})


def start_stage(ctx: Context, phase: str, fields: dict) -> None:
    """Claim the stage and start its tasks on the context's engine; waits out another caller's live
    claim (a task that died while starting it), then starts it or finds it running."""
    stage = f"v{ctx.plan.version}:{phase}"
    tasks = ctx.plan.ranges if phase == SCORE else ctx.plan.groups
    if not _claim(ctx, phase, fields):
        return
    if isinstance(ctx.engine, InProcess):
        status.update(ctx.status_ref, {"state": "running", "engine": InProcess.name})
        ctx.engine.start(ctx, phase, tasks)
        return
    execution = ctx.engine.start(ctx, phase, tasks)
    status.stage_started(ctx.db, ctx.status_ref, stage, ctx.owner, execution, ctx.engine.name)
    log("INFO", "batch stage started", job=ctx.plan.job_id, stage=stage, tasks=tasks, execution=execution)


def _claim(ctx: Context, phase: str, fields: dict) -> bool:
    """Whether this caller holds the stage now (after waiting out another caller's live claim)."""
    stage = f"v{ctx.plan.version}:{phase}"
    while True:
        claim = status.claim_stage(ctx.db, ctx.status_ref, stage, ctx.owner, STAGE_LEASE, fields)
        if claim != status.BUSY:
            return claim == status.START
        time.sleep(STAGE_LEASE.total_seconds() / 6)
