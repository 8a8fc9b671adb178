locals {
  services = toset([
    "apigateway.googleapis.com",
    "apikeys.googleapis.com",
    "artifactregistry.googleapis.com", # function images
    "bigquery.googleapis.com",         # the decision log (analytics.tf)
    "cloudbuild.googleapis.com",       # function builds
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com", # project IAM bindings
    "eventarc.googleapis.com",             # storage trigger
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com", # dashboard and alerts (monitoring.tf)
    "pubsub.googleapis.com",     # transport of the storage trigger
    "run.googleapis.com",        # 2nd gen functions are Cloud Run services
    "servicecontrol.googleapis.com",
    "servicemanagement.googleapis.com",
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "enabled" {
  for_each = local.services

  project = var.project_id
  service = each.value
  # Other things in the project may use these APIs: destroying this stack must not switch them off.
  disable_on_destroy = false
}
