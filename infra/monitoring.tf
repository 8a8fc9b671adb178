# Metrics, a dashboard and alerts, all built from the JSON lines the functions already write
# (shared/log.py, shared/http.py). Cloud Logging lifts `severity`, `message` and `httpRequest` of
# such a line into the log entry; the other fields stay under jsonPayload. Each request logs one
# line with httpRequest{requestMethod, requestUrl, status, latency} and `function`; /sample adds
# `sampler`, `offer_id` and, on degraded answers, `degraded`; score-upload logs "batch file failed"
# (WARNING) with the job's fields.
locals {
  function_lines = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=~\"^${var.name_prefix}-\"",
    "jsonPayload.logger=\"offer_bandits\"",
  ])
  request_lines = "${local.function_lines} AND httpRequest.status>0"

  # name => filter, labels (name => extractor) and, for a distribution, the value extractor.
  logged_metrics = {
    requests = {
      description = "Requests answered, by function and HTTP status."
      filter      = local.request_lines
      labels      = { function = "EXTRACT(jsonPayload.function)", status = "EXTRACT(httpRequest.status)" }
      value       = null
    }
    latency = {
      description = "Time to answer a request, by function (seconds)."
      filter      = local.request_lines
      labels      = { function = "EXTRACT(jsonPayload.function)" }
      value       = "REGEXP_EXTRACT(httpRequest.latency, \"([0-9.]+)s\")"
    }
    decisions = {
      description = "Offers chosen by /sample, by sampler and offer; degraded=true for answers made without Firestore."
      filter      = "${local.function_lines} AND jsonPayload.sampler:*"
      labels      = { sampler = "EXTRACT(jsonPayload.sampler)", offer_id = "EXTRACT(jsonPayload.offer_id)", degraded = "EXTRACT(jsonPayload.degraded)" }
      value       = null
    }
    firestore_errors = {
      description = "Requests that failed on Firestore: 503 answers and errors raised by the Google API client."
      filter      = "${local.function_lines} AND (httpRequest.status=503 OR (severity>=ERROR AND jsonPayload.exception:\"google.api_core\"))"
      labels      = { function = "EXTRACT(jsonPayload.function)" }
      value       = null
    }
    batch_failures = {
      description = "Batch files score-upload gave up on."
      filter      = "${local.function_lines} AND jsonPayload.message=\"batch file failed\""
      labels      = {}
      value       = null
    }
  }

  # Computed from the names rather than read from the resources (so tests can evaluate the
  # alerts offline): the policies and the dashboard depend on the metrics explicitly.
  metric_type = { for name in keys(local.logged_metrics) : name => "logging.googleapis.com/user/${var.name_prefix}/${name}" }

  # An alert fires when its metric, aligned over 5 minutes, is above its threshold for `duration`;
  # by default on any occurrence.
  alert_defaults = {
    denominator = null
    aligner     = "ALIGN_DELTA"
    reducer     = "REDUCE_SUM"
    group_by    = []
    threshold   = 0
    duration    = "0s"
  }
  alerts = { for name, alert in {
    server-errors = {
      title       = "5xx answers above ${var.alert_error_ratio * 100}% of requests"
      filter      = "metric.type=\"${local.metric_type.requests}\" AND metric.label.status=monitoring.regex.full_match(\"5..\")"
      denominator = "metric.type=\"${local.metric_type.requests}\""
      aligner     = "ALIGN_RATE"
      threshold   = var.alert_error_ratio
      duration    = "300s"
    }
    latency-p99 = {
      title     = "p99 latency of a function above ${var.alert_latency_p99_seconds} s"
      filter    = "metric.type=\"${local.metric_type.latency}\""
      reducer   = "REDUCE_PERCENTILE_99"
      group_by  = ["metric.label.function"]
      threshold = var.alert_latency_p99_seconds
      duration  = "300s"
    }
    firestore-errors = {
      title  = "Requests failing on Firestore"
      filter = "metric.type=\"${local.metric_type.firestore_errors}\""
    }
    batch-failures = {
      title  = "A batch file failed"
      filter = "metric.type=\"${local.metric_type.batch_failures}\""
    }
  } : name => merge(local.alert_defaults, alert) }

  # Dashboard charts: title => (metric, aligner, reducer, group by).
  charts = {
    "Requests/s by status"        = ["requests", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.status"]]
    "Requests/s by function"      = ["requests", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.function"]]
    "p99 latency by function (s)" = ["latency", "ALIGN_DELTA", "REDUCE_PERCENTILE_99", ["metric.label.function"]]
    "p50 latency by function (s)" = ["latency", "ALIGN_DELTA", "REDUCE_PERCENTILE_50", ["metric.label.function"]]
    "Decisions/s by offer"        = ["decisions", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.offer_id"]]
    "Decisions/s by sampler"      = ["decisions", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.sampler", "metric.label.degraded"]]
    "Firestore errors/s"          = ["firestore_errors", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.function"]]
    "Batch files failed"          = ["batch_failures", "ALIGN_DELTA", "REDUCE_SUM", []]
  }
}

resource "google_logging_metric" "logged" {
  for_each = local.logged_metrics

  project     = var.project_id
  name        = "${var.name_prefix}/${each.key}"
  description = each.value.description
  filter      = each.value.filter

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = each.value.value == null ? "INT64" : "DISTRIBUTION"
    unit        = each.value.value == null ? "1" : "s"

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key        = labels.key
        value_type = "STRING"
      }
    }
  }

  label_extractors = each.value.labels
  value_extractor  = each.value.value

  dynamic "bucket_options" {
    for_each = each.value.value == null ? [] : [1]
    content {
      # 1 ms to about 30 s, each bucket 1.5 times the one before.
      exponential_buckets {
        num_finite_buckets = 26
        growth_factor      = 1.5
        scale              = 0.001
      }
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "alert" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = "${var.name_prefix}: ${each.value.title}"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = each.value.title

    condition_threshold {
      filter             = "${each.value.filter} AND resource.type=\"cloud_run_revision\""
      denominator_filter = each.value.denominator == null ? null : "${each.value.denominator} AND resource.type=\"cloud_run_revision\""
      comparison         = "COMPARISON_GT"
      threshold_value    = each.value.threshold
      duration           = each.value.duration

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = each.value.aligner
        cross_series_reducer = each.value.reducer
        group_by_fields      = each.value.group_by
      }

      dynamic "denominator_aggregations" {
        for_each = each.value.denominator == null ? [] : [1]
        content {
          alignment_period     = "300s"
          per_series_aligner   = each.value.aligner
          cross_series_reducer = each.value.reducer
        }
      }
    }
  }

  depends_on = [google_logging_metric.logged]

  documentation {
    content   = "Logs: Cloud Logging, filter `${local.function_lines}`. infra/README.md, \"Monitoring\", says what each alert means."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_dashboard" "service" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "${var.name_prefix}: requests, latency, decisions, errors"
    mosaicLayout = {
      columns = 12
      tiles = [
        for index, title in keys(local.charts) : {
          xPos   = (index % 2) * 6
          yPos   = floor(index / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = title
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type=\"${local.metric_type[local.charts[title][0]]}\" AND resource.type=\"cloud_run_revision\""
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = local.charts[title][1]
                      crossSeriesReducer = local.charts[title][2]
                      groupByFields      = local.charts[title][3]
                    }
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })

  depends_on = [google_logging_metric.logged]
}
