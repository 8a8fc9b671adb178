# Bucket names are global: prefix them with the project ID.
locals {
  bucket_prefix = "${var.project_id}-${var.name_prefix}"
}

# Function source archives. Objects are named by content hash and never overwritten, so
# versioning would only keep duplicates.
resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_78: objects are immutable, named by their MD5; versioning adds nothing
  # checkov:skip=CKV_GCP_62: build inputs only; access is recorded by Data Access audit logs (storage_data_access below)
  project                     = var.project_id
  name                        = "${local.bucket_prefix}-source"
  location                    = upper(var.region)
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Old archives are only needed to roll back by hand; a redeploy re-uploads the current one.
  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# Clients drop CSV files here as <client>/<file>.csv; each new object triggers score-upload.
resource "google_storage_bucket" "inbox" {
  # checkov:skip=CKV_GCP_62: object access is recorded by Data Access audit logs (storage_data_access below), not legacy usage logs
  project                     = var.project_id
  name                        = "${local.bucket_prefix}-inbox"
  location                    = upper(var.region)
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # A client re-uploading the same name keeps the earlier file recoverable for a while.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# Scored files, written by score-upload under the same client prefix as the input.
resource "google_storage_bucket" "results" {
  # checkov:skip=CKV_GCP_62: object access is recorded by Data Access audit logs (storage_data_access below), not legacy usage logs
  project                     = var.project_id
  name                        = "${local.bucket_prefix}-results"
  location                    = upper(var.region)
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.results_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# Object-level audit trail for the project's buckets: who read or wrote which client file. This is
# what stands in for legacy bucket usage logs. (Authoritative for storage in this project.)
resource "google_project_iam_audit_config" "storage_data_access" {
  project = var.project_id
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

# Bucket-level grants for the functions' runtime identity: read the inbox; read, write and delete
# in results (score-upload composes its output from temporary pieces it then deletes, and a
# re-uploaded file replaces its earlier result). Nothing project-wide.
resource "google_storage_bucket_iam_member" "runtime_reads_inbox" {
  bucket = google_storage_bucket.inbox.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.runtime.member
}

resource "google_storage_bucket_iam_member" "runtime_writes_results" {
  bucket = google_storage_bucket.results.name
  role   = "roles/storage.objectUser"
  member = google_service_account.runtime.member
}

# The function build reads the uploaded source archive.
resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}
