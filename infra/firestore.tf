resource "google_firestore_database" "default" {
  project     = var.project_id
  name        = "(default)"
  location_id = coalesce(var.firestore_location, var.region)
  type        = "FIRESTORE_NATIVE"

  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  # `terraform destroy` leaves the database (and its counters) in place.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.enabled]
}

# "Latest episode of a customer that has no reward yet":
#   where customer_id == X and up_to_date == false order by last_update desc limit 1
# Two equality filters plus an order on a third field need this composite index.
resource "google_firestore_index" "episodes_latest" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "episodes"

  fields {
    field_path = "customer_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "up_to_date"
    order      = "ASCENDING"
  }
  fields {
    field_path = "last_update"
    order      = "DESCENDING"
  }
}

# "The customer's most recently updated episode" (is this reward a retry of the last one?):
#   where customer_id == X order by last_update desc limit 1
resource "google_firestore_index" "episodes_recent" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "episodes"

  fields {
    field_path = "customer_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "last_update"
    order      = "DESCENDING"
  }
}
