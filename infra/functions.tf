# The HTTP functions as data: deployed name => settings. entry_point is the Python function in
# functions/main.py and is spelled out even where it equals the name, so the map reads as the
# routing of names to code (tests/test_infra.py checks it against main.py and openapi.json).
#
# concurrency > 1 needs a whole CPU. The framework's gunicorn runs THREADS threads (default
# 4 per CPU); THREADS is set to the concurrency so an instance accepts what it can serve.
locals {
  http_functions = {
    "sample"     = { entry_point = "sample", memory = "512Mi", cpu = "1", timeout = 30, concurrency = 8 }
    "feedback"   = { entry_point = "feedback", memory = "512Mi", cpu = "1", timeout = 30, concurrency = 8 }
    "stats"      = { entry_point = "stats", memory = "512Mi", cpu = "1", timeout = 30, concurrency = 8 }
    "predict"    = { entry_point = "predict", memory = "512Mi", cpu = "1", timeout = 60, concurrency = 8 }
    "predict-v2" = { entry_point = "predict_v2", memory = "512Mi", cpu = "1", timeout = 60, concurrency = 8 }
    "rewards"    = { entry_point = "rewards", memory = "512Mi", cpu = "1", timeout = 120, concurrency = 4 }
    "is-alive"   = { entry_point = "is_alive", memory = "512Mi", cpu = "1", timeout = 10, concurrency = 16 }
  }

  # The storage-triggered batch function: one file at a time per instance, long timeout.
  score_upload = { name = "score-upload", entry_point = "score_upload", memory = "1Gi", cpu = "1", timeout = 540, concurrency = 1 }

  # The source has its entry points in functions/main.py, not main.py at the root.
  build_env = {
    GOOGLE_FUNCTION_SOURCE = "functions/main.py"
  }

  common_env = {
    GOOGLE_CLOUD_PROJECT = var.project_id
    FIRESTORE_DATABASE   = google_firestore_database.default.name
    AGENT_POLICY         = var.agent_policy
  }
}

resource "google_cloudfunctions2_function" "http" {
  # checkov:skip=CKV_GCP_124: API Gateway reaches its backends from outside any VPC, so internal-only ingress would cut it off; access is IAM-only (run.invoker for the gateway account alone)
  for_each = local.http_functions

  project  = var.project_id
  location = var.region
  name     = "${var.name_prefix}-${each.key}"

  build_config {
    runtime               = "python311"
    entry_point           = each.value.entry_point
    environment_variables = local.build_env
    service_account       = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout
    max_instance_request_concurrency = each.value.concurrency
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    service_account_email            = google_service_account.runtime.email
    all_traffic_on_latest_revision   = true
    # API Gateway calls from outside any VPC, so ingress stays open; authentication is IAM:
    # only the gateway's service account holds run.invoker (gateway.tf).
    ingress_settings = "ALLOW_ALL"

    environment_variables = merge(local.common_env, {
      THREADS = tostring(each.value.concurrency)
    })
  }

  depends_on = [
    google_project_iam_member.build_roles,
    google_project_iam_member.build_reads_staged_source,
    google_storage_bucket_iam_member.build_reads_source,
    google_firestore_index.episodes_latest,
    google_firestore_index.episodes_recent,
  ]
}

resource "google_cloudfunctions2_function" "score_upload" {
  project  = var.project_id
  location = var.region
  name     = "${var.name_prefix}-${local.score_upload.name}"

  build_config {
    runtime               = "python311"
    entry_point           = local.score_upload.entry_point
    environment_variables = local.build_env
    service_account       = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = local.score_upload.memory
    available_cpu                    = local.score_upload.cpu
    timeout_seconds                  = local.score_upload.timeout
    max_instance_request_concurrency = local.score_upload.concurrency
    min_instance_count               = 0
    max_instance_count               = var.batch_max_instances
    service_account_email            = google_service_account.runtime.email
    all_traffic_on_latest_revision   = true
    # Eventarc deliveries from the same project count as internal traffic.
    ingress_settings = "ALLOW_INTERNAL_ONLY"

    environment_variables = merge(local.common_env, {
      RESULTS_BUCKET = google_storage_bucket.results.name
      INBOX_BUCKET   = google_storage_bucket.inbox.name
    })
  }

  event_trigger {
    trigger_region        = var.region # the inbox bucket's location
    event_type            = "google.cloud.storage.object.v1.finalized"
    service_account_email = google_service_account.trigger.email
    # Failed runs are redelivered (up to 7 days). Safe because score_upload is idempotent per
    # object generation; a file that can never be scored must be acknowledged by the code.
    retry_policy = "RETRY_POLICY_RETRY"

    event_filters {
      attribute = "bucket"
      value     = google_storage_bucket.inbox.name
    }
  }

  depends_on = [
    google_project_iam_member.build_roles,
    google_project_iam_member.build_reads_staged_source,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.gcs_publishes_events,
    google_project_iam_member.trigger_receives_events,
    google_storage_bucket_iam_member.runtime_reads_inbox,
    google_storage_bucket_iam_member.runtime_writes_results,
  ]
}

# The trigger's identity may invoke the batch function, and nothing else may.
resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_score_upload" {
  project  = var.project_id
  location = google_cloudfunctions2_function.score_upload.location
  name     = google_cloudfunctions2_function.score_upload.name
  role     = "roles/run.invoker"
  member   = google_service_account.trigger.member
}
