# Bucket names are global: prefix them with the project ID.
locals {
  bucket_prefix = "${var.project_id}-${var.name_prefix}"
  bucket_names = {
    source  = "${local.bucket_prefix}-source"
    inbox   = "${local.bucket_prefix}-inbox"
    results = "${local.bucket_prefix}-results"
  }

  # The two buckets of client files. Clients drop CSV files into the inbox as <client>/<file>.csv
  # (each new object triggers score-upload); score-upload writes the scored file to results under
  # the same client prefix. Both keep overwritten versions for a while to recover from a bad
  # upload or run; results themselves expire.
  file_buckets = {
    inbox   = { expire_days = null }
    results = { expire_days = var.results_retention_days }
  }

  # Every bucket by its short name, for the grants (iam.tf, clients.tf).
  buckets = merge(
    { source = google_storage_bucket.source.name },
    { for key, bucket in google_storage_bucket.files : key => bucket.name },
  )
}

# Function source archives. Objects are named by content hash and never overwritten, so
# versioning would only keep duplicates.
resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_78: objects are immutable, named by their MD5; versioning adds nothing
  # checkov:skip=CKV_GCP_62: build inputs only; access is recorded by Data Access audit logs (storage_data_access below)
  project                     = var.project_id
  name                        = local.bucket_names.source
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

resource "google_storage_bucket" "files" {
  # checkov:skip=CKV_GCP_62: object access is recorded by Data Access audit logs (storage_data_access below), not legacy usage logs
  for_each = local.file_buckets

  project  = var.project_id
  name     = local.bucket_names[each.key]
  location = upper(var.region)
  # Uniform access is what makes the per-client IAM conditions on object names (clients.tf) the
  # whole story: no object ACL can grant around them.
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

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

  dynamic "lifecycle_rule" {
    for_each = each.value.expire_days == null ? [] : [each.value.expire_days]
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
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

# The service's own accounts on single buckets (the list is in iam.tf). Nothing project-wide.
resource "google_storage_bucket_iam_member" "grant" {
  for_each = { for grant in local.bucket_grants : "${grant.account} ${grant.bucket} ${grant.role}" => grant }

  bucket = local.buckets[each.value.bucket]
  role   = each.value.role
  member = google_service_account.account[each.value.account].member
}
