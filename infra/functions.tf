# Every function as data: deployed name => settings. entry_point is the Python function in
# functions/main.py (main.py at the archive root, source.tf) and is spelled out even where it
# equals the name, so the map reads as the routing of names to code (tests/test_infra.py checks it
# against main.py, openapi.json and the local stack's routes).
#
# The map is computed from variables only (no resource attributes), so tests/test_infra.py can
# evaluate it with `terraform console` offline.
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

  common_env = {
    GOOGLE_CLOUD_PROJECT   = var.project_id
    FIRESTORE_DATABASE     = local.database
    AGENT_POLICY           = var.agent_policy
    CLICK_RETENTION_DAYS   = tostring(var.click_retention_days)
    EPISODE_RETENTION_DAYS = tostring(var.episode_retention_days)
    # shared/platform/windows.py: when a decision without a reward stands settled at its default.
    CLICK_REWARD_WINDOW_SECONDS   = tostring(var.click_reward_window_seconds)
    EPISODE_REWARD_WINDOW_SECONDS = tostring(var.episode_reward_window_seconds)
  }

  # runs_as: the runtime service account (iam.tf). invoker: the only account allowed to call it.
  # inbox_trigger: called by Eventarc for each new object in the inbox rather than over HTTP.
  # api_key_tenants: gets API_KEY_TENANTS, the tenant of each API key by its hash (clients.tf),
  # added in the resource below because it depends on the keys.
  functions = merge(
    {
      for name, fn in local.http_functions : name => merge(fn, {
        runs_as         = "http"
        invoker         = "gateway"
        inbox_trigger   = false
        api_key_tenants = true
        min_instances   = var.min_instances
        max_instances   = var.max_instances
        # API Gateway calls from outside any VPC, so ingress stays open; only the gateway's
        # account holds run.invoker (iam.tf).
        ingress = "ALLOW_ALL"
        env = merge(local.common_env, {
          THREADS               = tostring(fn.concurrency)
          DEGRADED_MODE         = var.degraded_mode
          STATS_MAX_AGE_SECONDS = tostring(var.stats_max_age_seconds)
          # shared/cpa/drift.py: an offer's statistics restart when its market moves.
          DRIFT_HALF_LIFE_SECONDS = tostring(var.drift_half_life_seconds)
          DRIFT_THRESHOLD         = tostring(var.drift_threshold)
          # The function-side limiter (shared/web/limits.py): tenant => requests a minute (the registry,
          # clients.tf), each instance admitting its share of it.
          TENANT_REQUESTS_PER_MINUTE = jsonencode(local.tenant_requests_per_minute)
          MAX_INSTANCES              = tostring(var.max_instances)
        })
      })
    },
    {
      # One file at a time per instance, long timeout.
      "score-upload" = {
        entry_point     = "score_upload"
        memory          = "1Gi"
        cpu             = "1"
        timeout         = 540
        concurrency     = 1
        runs_as         = "batch"
        invoker         = "trigger"
        inbox_trigger   = true
        api_key_tenants = false
        min_instances   = 0
        max_instances   = var.batch_max_instances
        # Eventarc deliveries from the same project count as internal traffic.
        ingress = "ALLOW_INTERNAL_ONLY"
        env = merge(local.common_env, local.engine_launcher_env, {
          RESULTS_BUCKET = local.bucket_names.results
          INBOX_BUCKET   = local.bucket_names.inbox
          # A file in <folder>/ is scored as this tenant's (the registry, clients.tf).
          BATCH_TENANTS = jsonencode(local.batch_tenants)
        })
      }
    },
    {
      # Statistics reset (admin.tf): never in openapi.json, so the gateway cannot reach it; only
      # var.admin_members may invoke it, with their own identity token.
      "admin-reset" = {
        entry_point     = "admin_reset"
        memory          = "512Mi"
        cpu             = "1"
        timeout         = 300
        concurrency     = 1
        runs_as         = "admin"
        invoker         = "admins"
        inbox_trigger   = false
        api_key_tenants = true
        min_instances   = 0
        max_instances   = 1
        ingress         = "ALLOW_ALL"
        env             = local.common_env
      }
    },
  )
}

resource "google_cloudfunctions2_function" "function" {
  # checkov:skip=CKV_GCP_124: API Gateway reaches its backends from outside any VPC, so internal-only ingress would cut it off; access is IAM-only (run.invoker for the gateway account alone)
  for_each = local.functions

  project  = var.project_id
  location = var.region
  name     = "${var.name_prefix}-${each.key}"

  build_config {
    runtime         = "python311"
    entry_point     = each.value.entry_point
    service_account = google_service_account.account["build"].id

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
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances
    service_account_email            = google_service_account.account[each.value.runs_as].email
    all_traffic_on_latest_revision   = true
    ingress_settings                 = each.value.ingress
    environment_variables            = merge(each.value.env, each.value.api_key_tenants ? { API_KEY_TENANTS = local.api_key_tenants } : {})
  }

  dynamic "event_trigger" {
    for_each = each.value.inbox_trigger ? [google_storage_bucket.files["inbox"].name] : []
    content {
      trigger_region        = var.region # the inbox bucket's location
      event_type            = "google.cloud.storage.object.v1.finalized"
      service_account_email = google_service_account.account["trigger"].email
      # Failed runs are redelivered (up to 7 days). Safe because score_upload is idempotent per
      # object generation; a file that can never be scored must be acknowledged by the code.
      retry_policy = "RETRY_POLICY_RETRY"

      event_filters {
        attribute = "bucket"
        value     = event_trigger.value
      }
    }
  }

  depends_on = [
    google_project_iam_member.grant,
    google_project_iam_member.build_reads_staged_source,
    google_project_iam_member.gcs_publishes_events,
    google_storage_bucket_iam_member.grant,
    google_firestore_index.episodes,
  ]
}

# Each function may be invoked by its one caller: the gateway for HTTP, Eventarc's account for
# score-upload; admin-reset by the listed admins (admin.tf).
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = { for name, fn in google_cloudfunctions2_function.function : name => fn if local.functions[name].invoker != "admins" }

  project  = var.project_id
  location = each.value.location
  name     = each.value.name
  role     = "roles/run.invoker"
  member   = google_service_account.account[local.functions[each.key].invoker].member
}
