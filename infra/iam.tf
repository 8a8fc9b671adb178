# One identity per job, each with only what that job needs (the table in infra/README.md):
#   http     - what the seven HTTP functions run as: Firestore, nothing else
#   batch    - what score-upload runs as: Firestore, read the inbox, write the results
#   build    - what Cloud Build runs as when it turns the source archive into a function image
#   trigger  - what Eventarc uses to deliver storage events to score-upload
#   gateway  - what API Gateway uses to call the HTTP functions
#   admin    - what admin-reset runs as: Firestore, nothing else
locals {
  service_accounts = merge({
    http    = "offer-bandits HTTP functions runtime"
    batch   = "offer-bandits score-upload runtime"
    build   = "offer-bandits function builds"
    trigger = "offer-bandits storage trigger"
    gateway = "offer-bandits API Gateway backend calls"
    admin   = "offer-bandits admin-reset runtime"
  }, local.engine_service_accounts) # engine: the batch engine's tasks (batch_engine.tf)

  # Project-wide roles. No roles/logging.logWriter for the runtimes: the code logs JSON lines to
  # stdout, which the platform ships to Cloud Logging without the runtime identity needing a role.
  # The build roles are what Cloud Functions documents for a custom build account (new projects
  # no longer give the default build account these, nor Editor).
  project_grants = concat([
    { account = "http", role = "roles/datastore.user" },
    { account = "batch", role = "roles/datastore.user" },
    { account = "admin", role = "roles/datastore.user" },
    { account = "build", role = "roles/logging.logWriter" },       # build logs
    { account = "build", role = "roles/artifactregistry.writer" }, # push to gcf-artifacts
    { account = "trigger", role = "roles/eventarc.eventReceiver" },
  ], local.engine_project_grants)

  # Object roles on one bucket each (storage.tf). score-upload composes its output from
  # temporary pieces it then deletes, and a re-uploaded file replaces its earlier result:
  # objectUser is the smallest predefined role with create, read and delete.
  bucket_grants = concat([
    { account = "batch", bucket = "inbox", role = "roles/storage.objectViewer" },
    { account = "batch", bucket = "results", role = "roles/storage.objectUser" },
    { account = "build", bucket = "source", role = "roles/storage.objectViewer" },
  ], local.engine_bucket_grants)
}

resource "google_service_account" "account" {
  for_each = local.service_accounts

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = each.value
  depends_on   = [google_project_service.enabled]
}

resource "google_project_iam_member" "grant" {
  for_each = { for grant in local.project_grants : "${grant.account} ${grant.role}" => grant }

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.account[each.value.account].member
}

# The build also reads the copy of the source Cloud Functions stages in its own
# gcf-v2-sources-<project number>-<region> bucket. That bucket is created by the service on first
# deploy, so it cannot be bound to here; a condition keeps the grant off every other bucket
# (in particular the client inbox and results).
resource "google_project_iam_member" "build_reads_staged_source" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = google_service_account.account["build"].member

  condition {
    title      = "gcf-sources-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\")"
  }
}

# Cloud Storage publishes object events to Pub/Sub as its own service agent.
data "google_storage_project_service_account" "gcs" {
  project    = var.project_id
  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_member" "gcs_publishes_events" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}
