# The batch engine (docs/batch-scoring.md): a Cloud Run job whose tasks score a large client file
# in parallel, one byte range each, then pack its episodes. score-upload starts the first stage of
# a file (jobs.run with overrides: the task count and the file's identity in the environment); the
# last task of a stage starts the next one. Files up to var.batch_parallel_bytes never come here:
# score-upload scores them itself.
#
# The image is built from functions/batch_task.Dockerfile and pushed to the repository below
# (cloudbuild.yaml does both before the plan); var.batch_engine_image names the build to run.
# Its variables are in variables.tf, beside batch_max_instances.

locals {
  engine_job_name = "${var.name_prefix}-batch-engine"
  engine_job_path = "projects/${var.project_id}/locations/${var.region}/jobs/${local.engine_job_name}"
  # The engine's log lines (its tasks log "batch file failed" when a file's last retry fails).
  engine_lines = join(" AND ", [
    "resource.type=\"cloud_run_job\"",
    "resource.labels.job_name=\"${local.engine_job_name}\"",
    "jsonPayload.logger=\"offer_bandits\"",
  ])
  engine_registry = "${var.region}-docker.pkg.dev/${var.project_id}/${var.name_prefix}-engine"
  engine_image    = coalesce(var.batch_engine_image, "${local.engine_registry}/batch-engine:latest")

  # The engine's own identity (iam.tf merges these): Firestore, read the inbox, write the results
  # bucket (parts it composes, then deletes) - what score-upload holds, and no more.
  engine_service_accounts = { engine = "offer-bandits batch engine tasks" }
  engine_project_grants   = [{ account = "engine", role = "roles/datastore.user" }]
  engine_bucket_grants = [
    { account = "engine", bucket = "inbox", role = "roles/storage.objectViewer" },
    { account = "engine", bucket = "results", role = "roles/storage.objectUser" },
  ]
  # Who may start an execution of the job, with overrides, on this job alone: score-upload (a
  # file's first stage) and the engine's tasks (the stages after it).
  engine_launchers = ["batch", "engine"]

  # What score-upload needs to hand a file over (shared/batch/engine.py, plan.py).
  engine_launcher_env = {
    BATCH_ENGINE_JOB     = local.engine_job_path
    BATCH_PARALLEL_BYTES = tostring(var.batch_parallel_bytes)
  }
  engine_env = merge(local.common_env, local.engine_launcher_env, {
    RESULTS_BUCKET    = local.bucket_names.results
    INBOX_BUCKET      = local.bucket_names.inbox
    BATCH_MAX_RETRIES = tostring(var.batch_engine_max_retries)
  })

  # Packs (shared/customer/packs.py) are read by id only: their entries (up to 700 kB of bytes),
  # creation and expiry get no index; expire_at is their TTL. The recent-files document's map of
  # files is read whole. Same mechanism as firestore.tf's overrides.
  batch_field_overrides = {
    "batch_packs.entries"    = { collection = "batch_packs", field = "entries", ttl = false }
    "batch_packs.created_at" = { collection = "batch_packs", field = "created_at", ttl = false }
    "batch_packs.expire_at"  = { collection = "batch_packs", field = "expire_at", ttl = true }
    "batch_files.files"      = { collection = "batch_files", field = "files", ttl = false }
  }
}

resource "google_artifact_registry_repository" "engine" {
  # checkov:skip=CKV_GCP_84: images hold the public source of this repository, no customer data; Google-managed encryption is enough
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-engine"
  format        = "DOCKER"
  description   = "Images of the batch engine's tasks (functions/batch_task.Dockerfile)."

  depends_on = [google_project_service.enabled]
}

resource "google_cloud_run_v2_job" "batch_engine" {
  project             = var.project_id
  location            = var.region
  name                = local.engine_job_name
  deletion_protection = false

  template {
    # Every execution sets its own task count (one per byte range, or per slice of packs).
    task_count  = 1
    parallelism = var.batch_engine_parallelism

    template {
      service_account = google_service_account.account["engine"].email
      max_retries     = var.batch_engine_max_retries
      timeout         = "3600s"

      containers {
        image = local.engine_image

        resources {
          limits = {
            cpu    = "1"
            memory = "512Mi"
          }
        }

        dynamic "env" {
          for_each = local.engine_env
          content {
            name  = env.key
            value = env.value
          }
        }
      }
    }
  }

  depends_on = [
    google_project_iam_member.grant,
    google_storage_bucket_iam_member.grant,
    google_artifact_registry_repository.engine,
  ]
}

resource "google_cloud_run_v2_job_iam_member" "engine_launcher" {
  for_each = toset(local.engine_launchers)

  project  = var.project_id
  location = google_cloud_run_v2_job.batch_engine.location
  name     = google_cloud_run_v2_job.batch_engine.name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = google_service_account.account[each.value].member
}

resource "google_firestore_field" "batch" {
  for_each = local.batch_field_overrides

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = each.value.collection
  field      = each.value.field

  index_config {}

  dynamic "ttl_config" {
    for_each = each.value.ttl ? [1] : []
    content {}
  }
}
