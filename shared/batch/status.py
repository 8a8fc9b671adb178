"""A batch file's status document, `batch_jobs/{job id}` (in its tenant's namespace), and the records
of its tasks beside it (shared/batch/job.py says how a file moves through them).

- The status document: state (`planning`, `running`, `done`, `failed`), the current stage (plan
  version and phase: `score` over byte ranges, then `pack`) and the engine execution running it,
  counts, progress (rows done, rows total, ETA) and the output paths. One writer at a time: the
  delivery or task holding the stage's launch lease, or whichever task refreshes the progress
  (about once per PROGRESS_SECONDS for the whole file, never once per task).
- `ranges/v{version}-{index}` and `groups/v{version}-{index}`: one document per task, written by
  that task alone (its progress, then its result), so parallel tasks never contend.
"""

import datetime
import random

from google.cloud import firestore

JOBS = "batch_jobs"
RANGES = "ranges"
GROUPS = "groups"
PROGRESS_SECONDS = 5.0


class JobBusy(RuntimeError):
    """Another delivery or task holds the stage's live lease; failing makes the platform retry later."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_status(upload, tenant: str, owner: str, lease: datetime.timedelta, at: datetime.datetime) -> dict:
    return {
        "bucket": upload.bucket,
        "name": upload.name,
        "generation": upload.generation,
        "tenant": tenant,
        "client": None,
        "state": "planning",
        "stage": None,  # "v{version}:{phase}" once planned
        "plan_version": 0,
        "execution": None,  # the engine execution running the stage
        "engine": None,
        "rows_read": 0,
        "rows_scored": 0,
        "rejected_rows": 0,
        "progress": None,
        "created_at": at,
        "updated_at": at,
        "attempts": 1,
        "event_ids": [upload.event_id],
        "lease_owner": owner,
        "lease_expires": at + lease,
        "results_path": None,
        "errors_path": None,
    }


def claim_launch(db, ref, upload, tenant: str, owner: str, lease: datetime.timedelta) -> dict | None:
    """For a storage event: the status to act on (new, or one whose launch a dead delivery left
    undone), or None when the file needs nothing (done, failed, or its engine execution started:
    a redelivered event starts no second job). JobBusy while another delivery holds the lease."""
    at = now()

    @firestore.transactional
    def take(transaction) -> dict | None:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            status = new_status(upload, tenant, owner, lease, at)
            transaction.create(ref, status)
            return status
        status = snapshot.to_dict()
        if status["state"] in ("done", "failed") or status.get("execution"):
            transaction.update(ref, {"event_ids": firestore.ArrayUnion([upload.event_id])})
            return None
        if status.get("lease_owner") != owner and status["lease_expires"] > at:
            raise JobBusy(f"batch job {ref.id} is being started by another delivery")
        update = {
            "attempts": status.get("attempts", 0) + 1,
            "lease_owner": owner,
            "lease_expires": at + lease,
            "updated_at": at,
            "event_ids": firestore.ArrayUnion([upload.event_id]),
        }
        transaction.update(ref, update)
        return status | update

    return take(db.transaction())


START, RUNNING, BUSY = "start", "running", "busy"


def claim_stage(db, ref, stage: str, owner: str, lease: datetime.timedelta, fields: dict) -> str:
    """Move the file to `stage`, or take over a stage whose launcher died. START: this caller must
    start it (it holds the lease); RUNNING: it runs already, or the file moved on; BUSY: another
    caller holds a live lease on starting it (wait for the lease, then ask again)."""
    at = now()

    @firestore.transactional
    def take(transaction) -> str:
        status = ref.get(transaction=transaction).to_dict()
        if status["state"] in ("done", "failed"):
            return RUNNING
        if status.get("stage") == stage:
            if status.get("execution"):
                return RUNNING
            if status.get("lease_owner") != owner and status["lease_expires"] > at:
                return BUSY
        elif _stage_order(status.get("stage")) > _stage_order(stage):
            return RUNNING
        transaction.update(
            ref,
            {
                **fields,
                "stage": stage,
                "execution": None,
                "lease_owner": owner,
                "lease_expires": at + lease,
                "updated_at": at,
            },
        )
        return START

    return take(db.transaction())


def _stage_order(stage: str | None) -> tuple[int, int]:
    if not stage:
        return (0, 0)
    version, phase = stage.split(":")
    return (int(version[1:]), {"score": 1, "pack": 2, "finish": 3}[phase])


def stage_started(db, ref, stage: str, owner: str, execution: str, engine: str) -> None:
    """Record the execution that runs `stage` (only while this caller still holds its lease)."""

    @firestore.transactional
    def write(transaction) -> None:
        status = ref.get(transaction=transaction).to_dict()
        if status.get("stage") == stage and status.get("lease_owner") == owner and not status.get("execution"):
            transaction.update(ref, {"execution": execution, "engine": engine, "state": "running", "updated_at": now()})

    write(db.transaction())


def update(ref, fields: dict) -> None:
    ref.update({**fields, "updated_at": now()})


def peak_mib() -> float | None:
    """This process's peak resident memory so far (VmHWM), for a task's record; None off Linux."""
    try:
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


def task_ref(status_ref, kind: str, version: int, index: int):
    return status_ref.collection(kind).document(f"v{version}-{index}")


def tasks_of(status_ref, kind: str, version: int) -> list[dict]:
    query = status_ref.collection(kind).where(filter=firestore.FieldFilter("version", "==", version))
    return sorted((snapshot.to_dict() for snapshot in query.stream()), key=lambda task: task["index"])


def done_count(status_ref, kind: str, version: int) -> int:
    query = (
        status_ref.collection(kind)
        .where(filter=firestore.FieldFilter("version", "==", version))
        .where(filter=firestore.FieldFilter("state", "==", "done"))
    )
    return query.count().get()[0][0].value


def refresh_progress(status_ref, version: int, tasks: int, bytes_total: int, started: datetime.datetime) -> None:
    """Sum the range tasks' progress into the status document when it is older than PROGRESS_SECONDS.
    Every running task calls this after writing its own progress (every PROGRESS_SECONDS), and each
    goes on with probability 1/tasks: tasks that start together report together, and without it
    all of them would read every task record and write the one status document at once whenever
    it goes stale. So the status document takes about one read and one write per period."""
    if random.random() * max(1, tasks) >= 1:
        return
    status = status_ref.get(["progress", "state"]).to_dict() or {}
    progress = status.get("progress") or {}
    at = now()
    if status.get("state") != "running" or (
        progress.get("at") and (at - progress["at"]).total_seconds() < PROGRESS_SECONDS
    ):
        return
    ranges = tasks_of(status_ref, RANGES, version)
    rows = sum(task.get("rows_read", 0) for task in ranges)
    done_bytes = sum(task.get("bytes", 0) for task in ranges)
    elapsed = (at - started).total_seconds()
    fraction = min(1.0, done_bytes / bytes_total) if bytes_total else 1.0
    update(
        status_ref,
        {
            "progress": {
                "phase": "score",
                "rows_done": rows,
                "rows_total": round(rows / fraction) if fraction else None,  # an estimate until the end
                "bytes_done": done_bytes,
                "bytes_total": bytes_total,
                "ranges_done": sum(task.get("state") == "done" for task in ranges),
                "ranges": tasks,
                "eta_seconds": round(elapsed * (1 - fraction) / fraction) if fraction else None,
                "at": at,
            }
        },
    )
