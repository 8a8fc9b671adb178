# The decision and outcome log (docs/analytics.md): the HTTP functions publish one JSON record per
# decision and per outcome to two Pub/Sub topics (shared/platform/decision_log.py); a BigQuery
# subscription on each writes them into a table partitioned by day and clustered by tenant and
# product, with no code of ours in between. Delivery is at least once; the views `decisions` and
# `outcomes` keep one row per record_id (analytics/unique.sql.tftpl, the same SQL DuckDB runs
# locally). A record the table cannot take goes to the dead-letter topic, whose own subscription
# keeps it, raw, in `dead_letters`.
#
# The columns are shared/platform/log_tables.py's, written to analytics/<table>.schema.json by
# `python -m tools.analytics.schema --write` (tests check the files match).
locals {
  log_dataset = format("%s_log", replace(var.name_prefix, "-", "_")) # tools/analytics/warehouse.py DEFAULT_DATASET
  log_tables = {
    decisions = "decision_records"
    outcomes  = "outcome_records"
  }
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_bigquery_dataset" "log" {
  # checkov:skip=CKV_GCP_81: Google-managed keys, as for every other store here (Firestore, the buckets): customer-managed keys are a project-wide choice (a KMS key ring), not this log's
  project                         = var.project_id
  dataset_id                      = local.log_dataset
  location                        = var.analytics_location
  description                     = "offer-bandits decision and outcome log (docs/analytics.md)"
  default_partition_expiration_ms = var.log_retention_days * 86400000
  delete_contents_on_destroy      = false
  depends_on                      = [google_project_service.enabled]
}

resource "google_bigquery_table" "records" {
  # checkov:skip=CKV_GCP_80: Google-managed keys, as for every other store here (Firestore, the buckets): customer-managed keys are a project-wide choice (a KMS key ring), not this log's
  for_each = local.log_tables

  project                  = var.project_id
  dataset_id               = google_bigquery_dataset.log.dataset_id
  table_id                 = each.value
  description              = "Every ${trimsuffix(each.key, "s")} record as delivered (at least once); read the ${each.key} view"
  schema                   = file("${path.module}/analytics/${each.key}.schema.json")
  clustering               = ["tenant", "product"]
  deletion_protection      = true
  require_partition_filter = false # the offers' all-time totals read every partition

  time_partitioning {
    type  = "DAY"
    field = "time"
  }
}

resource "google_bigquery_table" "unique" {
  # checkov:skip=CKV_GCP_80: a view stores nothing
  for_each = local.log_tables

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.log.dataset_id
  table_id            = each.key
  description         = "One row per record_id of ${each.value}: what the analysis reads"
  deletion_protection = true

  view {
    query          = templatefile("${path.module}/analytics/unique.sql.tftpl", { records = "`${var.project_id}.${local.log_dataset}.${each.value}`" })
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_table.records]
}

resource "google_bigquery_table" "dead_letters" {
  # checkov:skip=CKV_GCP_80: Google-managed keys, as for every other store here (Firestore, the buckets): customer-managed keys are a project-wide choice (a KMS key ring), not this log's
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.log.dataset_id
  table_id            = "dead_letters"
  description         = "Records a log table refused, kept raw with their metadata"
  deletion_protection = true

  time_partitioning {
    type  = "DAY"
    field = "publish_time"
  }

  # What a BigQuery subscription without a table schema writes, with write_metadata.
  schema = jsonencode([
    { name = "data", type = "STRING", mode = "NULLABLE" },
    { name = "subscription_name", type = "STRING", mode = "NULLABLE" },
    { name = "message_id", type = "STRING", mode = "NULLABLE" },
    { name = "publish_time", type = "TIMESTAMP", mode = "NULLABLE" },
    { name = "attributes", type = "STRING", mode = "NULLABLE" },
  ])
}

resource "google_pubsub_topic" "log" {
  # checkov:skip=CKV_GCP_83: Google-managed keys, as for every other store here (Firestore, the buckets): customer-managed keys are a project-wide choice (a KMS key ring), not this log's
  for_each = local.log_tables

  project                    = var.project_id
  name                       = "${var.name_prefix}-${each.key}"
  message_retention_duration = "86400s" # a day to replay (seek) after a bad table change
  depends_on                 = [google_project_service.enabled]
}

resource "google_pubsub_topic" "dead_letters" {
  # checkov:skip=CKV_GCP_83: Google-managed keys, as for every other store here (Firestore, the buckets): customer-managed keys are a project-wide choice (a KMS key ring), not this log's
  project    = var.project_id
  name       = "${var.name_prefix}-log-dead-letters"
  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_subscription" "to_bigquery" {
  for_each = local.log_tables

  project                    = var.project_id
  name                       = "${var.name_prefix}-${each.key}-to-bigquery"
  topic                      = google_pubsub_topic.log[each.key].id
  message_retention_duration = "604800s" # undelivered records wait up to 7 days (a table outage)

  bigquery_config {
    table               = "${var.project_id}.${google_bigquery_dataset.log.dataset_id}.${each.value}"
    use_table_schema    = true
    drop_unknown_fields = true # a field the table does not have yet is dropped, never the record
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letters.id
    max_delivery_attempts = 10
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = "" # never
  }

  depends_on = [google_bigquery_table_iam_member.pubsub_writes, google_pubsub_topic_iam_member.pubsub_dead_letters]
}

resource "google_pubsub_subscription" "dead_letters_to_bigquery" {
  project = var.project_id
  name    = "${var.name_prefix}-log-dead-letters-to-bigquery"
  topic   = google_pubsub_topic.dead_letters.id

  bigquery_config {
    table          = "${var.project_id}.${google_bigquery_dataset.log.dataset_id}.${google_bigquery_table.dead_letters.table_id}"
    write_metadata = true
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_bigquery_table_iam_member.pubsub_writes]
}

# Least privilege. The HTTP functions publish to the two topics and nothing else of Pub/Sub; the
# Pub/Sub service agent writes into the three tables (table-level dataEditor, not the dataset),
# and publishes refused records to the dead-letter topic and acknowledges them on the
# subscriptions it dead-letters from; readers (var.analytics_readers) read the dataset.
resource "google_pubsub_topic_iam_member" "functions_publish" {
  for_each = local.log_tables

  project = var.project_id
  topic   = google_pubsub_topic.log[each.key].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.account["http"].member
}

resource "google_bigquery_table_iam_member" "pubsub_writes" {
  for_each = merge(local.log_tables, { dead_letters = "dead_letters" })

  project    = var.project_id
  dataset_id = google_bigquery_dataset.log.dataset_id
  table_id   = each.key == "dead_letters" ? google_bigquery_table.dead_letters.table_id : google_bigquery_table.records[each.key].table_id
  role       = "roles/bigquery.dataEditor"
  member     = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "pubsub_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letters.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_dead_letters" {
  for_each = local.log_tables

  project      = var.project_id
  subscription = google_pubsub_subscription.to_bigquery[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_bigquery_dataset_iam_member" "readers" {
  for_each = toset(var.analytics_readers)

  project    = var.project_id
  dataset_id = google_bigquery_dataset.log.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}

# Sample-ratio mismatch of the holdout (shared/maths/srm.py, the same test the report shows): per
# tenant and function over the last hour, Pearson's chi-square of the held-out decisions H against
# the expected E (the sum of the configured shares, the holdout_split metric's distribution sum) out
# of N, with one degree of freedom: (H - E)² / E + (H - E)² / (N - E) above 10.83 is p < 0.001.
# Only once E > 5 (the test's approximation needs it); a tenant without any held-out decision
# counts H = 0.
locals {
  # The log-based metric's PromQL name: its type with the first / as : and . / - as _.
  split_metric = format("logging_googleapis_com:user_%s_holdout_split", replace(var.name_prefix, "-", "_"))
  srm_counts = {
    held     = "sum by (tenant, function) (increase(${local.split_metric}_count{holdout=\"true\"}[1h]))"
    all      = "sum by (tenant, function) (increase(${local.split_metric}_count[1h]))"
    expected = "sum by (tenant, function) (increase(${local.split_metric}_sum[1h]))"
  }
  srm_gap   = "((${local.srm_counts.held} or (${local.srm_counts.all} * 0)) - ${local.srm_counts.expected})"
  srm_query = "(${local.srm_gap} ^ 2 / ${local.srm_counts.expected} + ${local.srm_gap} ^ 2 / (${local.srm_counts.all} - ${local.srm_counts.expected})) > ${var.srm_alert_chi_square} and ${local.srm_counts.expected} > 5"
}

resource "google_monitoring_alert_policy" "holdout_srm" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: holdout sample-ratio mismatch"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Held-out share off its configured share (chi-square, 1 dof, per tenant and function, 1 h)"

    condition_prometheus_query_language {
      query               = local.srm_query
      duration            = "0s"
      evaluation_interval = "300s"
    }
  }

  documentation {
    content   = "The holdout's observed share differs from the configured one beyond chance (p < 0.001): the lift against the holdout cannot be trusted until the cause is found. docs/analytics.md, \"Sample-ratio mismatch\"."
    mime_type = "text/markdown"
  }

  depends_on = [google_logging_metric.logged]
}
