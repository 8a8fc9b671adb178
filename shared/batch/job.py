"""Score one uploaded client CSV: what the `score_upload` storage trigger does with a new object.

1. The file's tenant: BATCH_TENANTS maps inbox folders to tenants (unset: every folder is the
   `default` tenant's); a folder it does not name is refused, with the reason in the status.
2. The status document `batch_jobs/{job id}`, keyed by the object generation, is claimed in a
   transaction (shared/batch/status.py): a redelivered event for a file that is done, failed, or
   whose engine execution has started changes nothing, so it starts no second job.
3. The plan (shared/batch/plan.py): header, rules, product names, the tenant's statistics frozen
   for this file, byte ranges, packs. A file that cannot be scored fails here with its reason.
4. The stages (shared/batch/stages.py): files up to BATCH_PARALLEL_BYTES (one range) are scored
   right here, in this function; larger ones on the Cloud Run job (shared/batch/engine.py) when
   BATCH_ENGINE_JOB names one, one task per range, then the pack tasks.

Everything is keyed by the object generation and written create-only or whole, so a delivery that
dies anywhere is simply delivered again: it takes over the lapsed lease, finds the plan where it
left it and carries on from the tasks already recorded done.
"""

import datetime
import functools
import json
import os
import uuid

from google.cloud import storage

from shared.batch import engine, stages
from shared.batch import status as status_document
from shared.batch.csv_io import FileError
from shared.batch.outputs import JobFiles
from shared.batch.plan import Plan, Upload, client_and_stem, make_plan, output_paths
from shared.batch.rules import RulesError
from shared.batch.status import JOBS, JobBusy
from shared.customer import agents
from shared.customer.store import DEFAULT_EPISODE_WINDOW_SECONDS, EPISODE_WINDOW_ENV, CustomerStore
from shared.platform import windows
from shared.platform.firestore import LOCAL_PROJECT, get_db
from shared.platform.log import log
from shared.platform.namespace import ROOT, Namespace

__all__ = ["FINALIZED", "JOBS", "JobBusy", "Upload", "handle", "output_paths", "client_and_stem"]

FINALIZED = "google.cloud.storage.object.v1.finalized"
TENANTS_ENV = "BATCH_TENANTS"
DEFAULT_LEASE_SECONDS = 120  # a delivery that has not renewed its lease for this long is taken for dead


def handle(event_id: str, event_type: str, data: dict) -> dict | None:
    """A storage CloudEvent: score the new object when it is a finalized upload to the inbox."""
    inbox = os.environ.get("INBOX_BUCKET")
    if event_type != FINALIZED or not isinstance(data, dict) or (inbox and data.get("bucket") != inbox):
        log("WARNING", "ignored an event that is not a new object in the inbox", event_id=event_id, type=event_type)
        return None
    if not all(data.get(key) for key in ("bucket", "name", "generation")):
        log("ERROR", "storage event without bucket, name or generation", event_id=event_id)
        return None
    upload = Upload(str(data["bucket"]), str(data["name"]), str(data["generation"]), str(event_id))
    return Job(upload, get_db(), get_gcs(), os.environ["RESULTS_BUCKET"]).run()


@functools.cache
def get_gcs() -> storage.Client:
    return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or LOCAL_PROJECT)


def tenant_of(name: str) -> tuple[Namespace, str | None]:
    """The namespace of the upload's folder, and why the file is refused (None when it is not)."""
    raw = os.environ.get(TENANTS_ENV)
    if raw is None or not raw.strip():
        return ROOT, None  # a single-tenant deployment: every folder is the default tenant's
    folder = name.partition("/")[0]
    try:
        tenant = json.loads(raw).get(folder)
    except (ValueError, AttributeError):
        return ROOT, f"{TENANTS_ENV} is not a JSON object of folder -> tenant name"
    if not tenant:
        return ROOT, f"folder {folder!r} belongs to no client"
    try:
        return Namespace(str(tenant)), None
    except ValueError as error:
        return ROOT, f"{TENANTS_ENV} names folder {folder!r}'s tenant wrongly: {error}"


class Job:
    def __init__(
        self,
        upload: Upload,
        db,
        gcs: storage.Client,
        results_bucket: str,
        policy: str | None = None,
        space: Namespace | None = None,
    ):
        self.upload = upload
        self.db = db
        self.gcs = gcs
        self.results = gcs.bucket(results_bucket)
        self.policy = policy or os.environ.get("AGENT_POLICY", agents.DEFAULT_AGENT)
        self.space, self.refused = (space, None) if space is not None else tenant_of(upload.name)
        self.status_ref = db.collection(self.space.path(JOBS)).document(upload.job_id)
        self.lease = datetime.timedelta(seconds=float(os.environ.get("BATCH_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS))
        self.files = JobFiles(gcs, self.results, upload.job_id, upload.source)
        self.owner = uuid.uuid4().hex

    def run(self) -> dict | None:
        """Score the file (or start its engine job); its status, or None when nothing was to be done."""
        status = status_document.claim_launch(
            self.db, self.status_ref, self.upload, self.space.tenant, self.owner, self.lease
        )
        if status is None:
            log("INFO", "batch file already handled", job=self.upload.job_id, name=self.upload.name)
            return None
        try:
            if self.refused:
                raise FileError(self.refused)
            plan = self._plan(status)
            ctx = self._context(plan)
            stage = status.get("stage")
            if stage and stage.endswith(f":{stages.FINISH}"):  # a delivery died finishing: finish
                stages.run_task(ctx, stages.PACK, 0)
            elif stage:  # a delivery died starting or running this stage: start it again
                stages.start_stage(ctx, stage.split(":")[1], {})
            else:
                fields = {"client": plan.client, "plan_version": plan.version, "ranges": plan.ranges}
                stages.start_stage(ctx, stages.SCORE, fields | {"groups": plan.groups, "buckets": plan.buckets})
        except (FileError, RulesError) as error:
            return self._fail(str(error))
        except Exception as error:
            self._record_attempt_failed(error)
            raise
        return self.status_ref.get().to_dict()

    def _plan(self, status: dict) -> Plan:
        version = status.get("plan_version") or 1
        saved = self.files.get(self.files.path(version, "plan"))
        if saved is not None:
            return Plan.loads(saved)
        blob = self.gcs.bucket(self.upload.bucket).get_blob(self.upload.name, generation=int(self.upload.generation))
        if blob is None:
            raise FileError("the uploaded object no longer exists")
        store = CustomerStore(self.db, None, self.policy, space=self.space)
        plan = make_plan(self.upload, blob, self.space.tenant, store, status_document.now())
        path = self.files.path(plan.version, "plan")
        if not self.files.put(path, plan.dumps(), "application/json", create_only=True):
            return Plan.loads(self.files.get(path))  # a concurrent delivery wrote it first
        return plan

    def _context(self, plan: Plan) -> stages.Context:
        runner = engine.CloudRunJob() if engine.configured() and not plan.inline else stages.InProcess()
        return stages.Context(
            plan=plan,
            db=self.db,
            gcs=self.gcs,
            files=self.files,
            space=self.space,
            status_ref=self.status_ref,
            engine=runner,
            reward_window=windows.window_seconds(EPISODE_WINDOW_ENV, DEFAULT_EPISODE_WINDOW_SECONDS),
            owner=self.owner,
            heartbeat=self._renew_lease,
        )

    def _renew_lease(self) -> None:
        status_document.update(self.status_ref, {"lease_expires": status_document.now() + self.lease})

    def _record_attempt_failed(self, error: Exception) -> None:
        try:  # let the redelivery start at once instead of waiting for the lease to lapse
            status_document.update(
                self.status_ref,
                {"last_error": f"{type(error).__name__}: {error}"[:1000], "lease_expires": status_document.now()},
            )
        except Exception:
            log("ERROR", "could not record the failed attempt", exc_info=True, job=self.upload.job_id)

    def _fail(self, reason: str) -> dict:
        return fail(self.status_ref, self.upload.name, reason)


def fail(status_ref, name: str, reason: str) -> dict:
    """Mark the file failed for good, with its reason (logged as `batch file failed`)."""
    try:
        client, _ = client_and_stem(name)
    except FileError:
        client = None
    at = status_document.now()
    fields = {"state": "failed", "reason": reason, "client": client, "finished_at": at, "lease_expires": at}
    status_document.update(status_ref, fields)
    status = status_ref.get().to_dict()
    log(
        "INFO" if status["state"] == "done" else "WARNING",
        f"batch file {status['state']}",
        job=status_ref.id,
        name=name,
        rows_read=status.get("rows_read"),
        rows_scored=status.get("rows_scored"),
        rejected_rows=status.get("rejected_rows"),
        reason=status.get("reason"),
    )
    return status
