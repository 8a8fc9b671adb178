"""A batch file's status document, `batch_jobs/{job id}`, and the lease that keeps two deliveries of
one file from running at once (shared/batch/job.py says how deliveries use it)."""

import datetime

from google.cloud import firestore

JOBS = "batch_jobs"


class JobBusy(RuntimeError):
    """Another delivery of this file holds a live lease; failing makes the platform retry later."""


class LeaseLost(RuntimeError):
    """Another delivery took this file over (this run's lease had lapsed): stop writing."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_status(upload, owner: str, lease: datetime.timedelta, chunk_rows: int, at: datetime.datetime) -> dict:
    """The status document of a file's first delivery."""
    return {
        "bucket": upload.bucket,
        "name": upload.name,
        "generation": upload.generation,
        "client": None,
        "state": "running",
        "chunk_rows": chunk_rows,
        "chunks_done": 0,
        "rows_read": 0,
        "rows_scored": 0,
        "rejected_rows": 0,
        "response_date": at.date().isoformat(),
        "created_at": at,
        "updated_at": at,
        "attempts": 1,
        "event_ids": [upload.event_id],
        "lease_owner": owner,
        "lease_expires": at + lease,
        "results_path": None,
        "errors_path": None,
    }


def claim(db: firestore.Client, ref, upload, owner: str, lease: datetime.timedelta, chunk_rows: int) -> dict | None:
    """Take the file's lease: its status (new, or as a crashed or retried delivery left it), or None
    when an earlier delivery finished it; JobBusy while another delivery holds a live lease."""
    at = now()

    @firestore.transactional
    def take(transaction) -> dict | None:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            status = new_status(upload, owner, lease, chunk_rows, at)
            transaction.create(ref, status)
            return status
        status = snapshot.to_dict()
        if status["state"] in ("done", "failed"):
            return None
        if status.get("lease_owner") != owner and status["lease_expires"] > at:
            raise JobBusy(f"batch job {ref.id} is being run by another delivery")
        update = {
            "state": "running",
            "attempts": status.get("attempts", 0) + 1,
            "lease_owner": owner,
            "lease_expires": at + lease,
            "updated_at": at,
            "event_ids": firestore.ArrayUnion([upload.event_id]),
        }
        transaction.update(ref, update)
        return status | update

    return take(db.transaction())


def update(db: firestore.Client, ref, owner: str, fields: dict) -> None:
    """Write to the status document while `owner` holds the lease; LeaseLost otherwise."""

    @firestore.transactional
    def write(transaction) -> None:
        holder = ref.get(["lease_owner"], transaction=transaction).get("lease_owner")
        if holder != owner:
            raise LeaseLost(f"batch job {ref.id} is now run by another delivery")
        transaction.update(ref, {**fields, "updated_at": now()})

    write(db.transaction())
