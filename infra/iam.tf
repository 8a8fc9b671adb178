# Four identities, each with only what its job needs:
#   runtime  - what the function code runs as (Firestore, inbox/results objects)
#   build    - what Cloud Build runs as when it turns the source archive into a function image
#   trigger  - what Eventarc uses to deliver storage events to score-upload
#   gateway  - what API Gateway uses to call the HTTP functions

resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-run"
  display_name = "offer-bandits functions runtime"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "offer-bandits function builds"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-trigger"
  display_name = "offer-bandits storage trigger"
  depends_on   = [google_project_service.enabled]
}

resource "google_service_account" "gateway" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-gateway"
  display_name = "offer-bandits API Gateway backend calls"
  depends_on   = [google_project_service.enabled]
}

# --- runtime -------------------------------------------------------------------------------
# Firestore read/write. (Bucket grants are in storage.tf.) No roles/logging.logWriter: the code
# logs JSON lines to stdout, which the platform ships to Cloud Logging without the runtime
# identity needing any role.
resource "google_project_iam_member" "runtime_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.runtime.member
}

# --- build ---------------------------------------------------------------------------------
# What Cloud Functions documents for a custom build service account. New projects no longer give
# the default build account these (nor Editor), so a fresh project needs its own.
resource "google_project_iam_member" "build_roles" {
  for_each = toset([
    "roles/logging.logWriter",       # build logs
    "roles/artifactregistry.writer", # push the image to the gcf-artifacts repository
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# The build also reads the copy of the source Cloud Functions stages in its own
# gcf-v2-sources-<project number>-<region> bucket. That bucket is created by the service on first
# deploy, so it cannot be bound to here; a condition keeps the grant off every other bucket
# (in particular the client inbox and results).
resource "google_project_iam_member" "build_reads_staged_source" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = google_service_account.build.member

  condition {
    title      = "gcf-sources-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-\")"
  }
}

# --- storage trigger -------------------------------------------------------------------------
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

resource "google_project_iam_member" "trigger_receives_events" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.trigger.member
}

# Invoking is granted on the batch function's Cloud Run service only (functions.tf).
