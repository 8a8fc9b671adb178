resource "google_firestore_database" "default" {
  project     = var.project_id
  name        = local.database
  location_id = coalesce(var.firestore_location, var.region)
  type        = "FIRESTORE_NATIVE"

  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  # `terraform destroy` leaves the database (and its counters) in place.
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.enabled]
}

locals {
  database = "(default)"

  # The composite indexes the customer store's queries need (shared/customer/store.py), on
  # episodes. They start with customer_id, a well-spread field, so they carry no hot range.
  episode_indexes = {
    # "Latest episode of a customer that has no reward yet":
    #   where customer_id == X and up_to_date == false order by last_update desc limit 1
    latest = [["customer_id", "ASCENDING"], ["up_to_date", "ASCENDING"], ["last_update", "DESCENDING"]]
    # "The customer's most recently updated episode" (is this reward a retry of the last one?):
    #   where customer_id == X order by last_update desc limit 1
    recent = [["customer_id", "ASCENDING"], ["last_update", "DESCENDING"]]
  }

  # Fields no query filters or orders on by themselves. Firestore indexes every field unless told
  # not to, and a collection whose documents carry an indexed, increasing field (a timestamp, a
  # sequential click id) takes at most about 500 writes/s; large arrays and maps only cost index
  # entries. These get no single-field index (composite indexes above are not affected).
  unindexed_fields = {
    # `events`: a click's reward events (shared/platform/windows.py), each with its arrival time.
    cpa_clicks = ["click_id", "sampled_at", "feedback_at", "expire_at", "candidates", "events", "shadow"]
    episodes   = ["created_at", "last_update", "timestamp", "reward_timestamp", "expire_at", "states", "eligible_offers", "inclusion", "shadow"]
    rewards    = ["last_update", "timestamp"]
    # Sharded counters (shared/platform/counters.py): a counter's values rise in step under one map `c`, and
    # its summary's totals and roll-up time rise on every roll-up (and an offer's drift state in
    # `derived`, shared/cpa/drift.py); the roll-up leases carry a rising slot number. No query
    # reads any of them by value.
    shards          = ["c"]
    cpa_offers      = ["as_of", "totals", "derived"]
    agent_segments  = ["as_of", "totals"]
    agent_linear    = ["as_of", "totals"]
    cpa_counters    = ["as_of", "totals"]
    counter_rollups = ["slot", "expire_at"]
  }

  # Documents deleted by Firestore once their `expire_at` has passed (the code writes it as
  # now + CLICK_RETENTION_DAYS / EPISODE_RETENTION_DAYS).
  ttl_fields = { cpa_clicks = "expire_at", episodes = "expire_at", counter_rollups = "expire_at" }

  field_overrides = merge([
    for collection, fields in local.unindexed_fields : {
      for field in fields : "${collection}.${field}" => {
        collection = collection
        field      = field
        ttl        = lookup(local.ttl_fields, collection, null) == field
      }
    }
  ]...)
}

resource "google_firestore_index" "episodes" {
  for_each = local.episode_indexes

  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "episodes"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

# An empty index_config removes every single-field index of the field; ttl_config makes it the
# collection's TTL field.
resource "google_firestore_field" "override" {
  for_each = local.field_overrides

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
