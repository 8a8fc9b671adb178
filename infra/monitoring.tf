# Metrics, a dashboard and alerts, all built from the JSON lines the functions already write
# (shared/platform/log.py, shared/web/http.py). Cloud Logging lifts `severity`, `message` and `httpRequest` of
# such a line into the log entry; the other fields stay under jsonPayload. Each request logs one
# line with httpRequest{requestMethod, requestUrl, status, latency} and `function`; `degraded` on
# answers made without Firestore; and, on answers below 400, what the handler recorded with
# shared/web/http.py log_fields (functions/main.py): /sample `sampler`, `offer_id`, `served_by`;
# /feedback `offer_id`, `reward`, `is_conversion`; /predict(-v2) `policy`, `served_by`; /rewards
# `policy`, `accepted`; admin_reset `reset_counter`, `reset_by`. score-upload logs "batch file
# failed" (WARNING) with the job's fields. tests/test_infra.py checks every field read here is one
# the code writes.
locals {
  function_lines = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=~\"^${var.name_prefix}-\"",
    "jsonPayload.logger=\"offer_bandits\"",
  ])
  request_lines = "${local.function_lines} AND httpRequest.status>0"
  answered      = "${local.request_lines} AND httpRequest.status<400"

  # name => filter, labels (name => extractor) and, for a distribution, the value extractor, its
  # unit and exponential buckets.
  metric_defaults = { value = null, unit = "1", buckets = null }
  logged_metrics = { for name, metric in {
    requests = {
      description = "Requests answered, by function and HTTP status."
      filter      = local.request_lines
      labels      = { function = "EXTRACT(jsonPayload.function)", status = "EXTRACT(httpRequest.status)" }
    }
    errors = {
      description = "Answers with an error status (4xx, 5xx), by function and status."
      filter      = "${local.request_lines} AND httpRequest.status>=400"
      labels      = { function = "EXTRACT(jsonPayload.function)", status = "EXTRACT(httpRequest.status)" }
    }
    latency = {
      description = "Time to answer a request, by function (seconds)."
      filter      = local.request_lines
      labels      = { function = "EXTRACT(jsonPayload.function)" }
      value       = "REGEXP_EXTRACT(httpRequest.latency, \"([0-9.]+)s\")"
      unit        = "s"
      # 1 ms to about 30 s, each bucket 1.5 times the one before.
      buckets = { count = 26, growth = 1.5, scale = 0.001 }
    }
    decisions = {
      description = "Offers chosen by /sample, by sampler, offer and what served them (served_by: the sampler, config:<...> when the kill switch forced it); degraded=true for answers made without Firestore."
      filter      = "${local.answered} AND jsonPayload.function=\"sample\" AND jsonPayload.sampler:*"
      labels      = { sampler = "EXTRACT(jsonPayload.sampler)", offer_id = "EXTRACT(jsonPayload.offer_id)", served_by = "EXTRACT(jsonPayload.served_by)", degraded = "EXTRACT(jsonPayload.degraded)" }
    }
    agent_decisions = {
      description = "Slates chosen by /predict and /predict-v2, by agent policy and what served them; degraded=true without Firestore."
      filter      = "${local.answered} AND jsonPayload.function=(\"predict\" OR \"predict_v2\") AND jsonPayload.served_by:*"
      labels      = { policy = "EXTRACT(jsonPayload.policy)", served_by = "EXTRACT(jsonPayload.served_by)", degraded = "EXTRACT(jsonPayload.degraded)" }
    }
    conversions = {
      description = "Conversions recorded by /feedback, by offer."
      filter      = "${local.answered} AND jsonPayload.function=\"feedback\" AND jsonPayload.is_conversion=true"
      labels      = { offer_id = "EXTRACT(jsonPayload.offer_id)" }
    }
    reward = {
      description = "Payout of each conversion recorded by /feedback, by offer (cents)."
      filter      = "${local.answered} AND jsonPayload.function=\"feedback\" AND jsonPayload.is_conversion=true"
      labels      = { offer_id = "EXTRACT(jsonPayload.offer_id)" }
      value       = "EXTRACT(jsonPayload.reward)"
      unit        = "1"
      # 1 cent to about $167,000 (above the largest accepted payout), each bucket twice the one before.
      buckets = { count = 24, growth = 2, scale = 1 }
    }
    acceptances = {
      description = "Rewards recorded by /rewards where the customer accepted an offer, by agent policy."
      filter      = "${local.answered} AND jsonPayload.function=\"rewards\" AND jsonPayload.accepted=true"
      labels      = { policy = "EXTRACT(jsonPayload.policy)" }
    }
    degraded = {
      description = "Answers made without Firestore (DEGRADED_MODE), by function."
      filter      = "${local.request_lines} AND jsonPayload.degraded=true"
      labels      = { function = "EXTRACT(jsonPayload.function)" }
    }
    firestore_errors = {
      description = "Requests that failed on Firestore: 503 answers and errors raised by the Google API client."
      filter      = "${local.function_lines} AND (httpRequest.status=503 OR (severity>=ERROR AND jsonPayload.exception:\"google.api_core\"))"
      labels      = { function = "EXTRACT(jsonPayload.function)" }
    }
    batch_failures = {
      description = "Batch files score-upload or the batch engine gave up on."
      filter      = "(${local.function_lines} OR ${local.engine_lines}) AND jsonPayload.message=\"batch file failed\""
      labels      = {}
    }
    resets = {
      description = "Statistics resets done by admin-reset, by counter."
      filter      = "${local.answered} AND jsonPayload.reset_counter:*"
      labels      = { counter = "EXTRACT(jsonPayload.reset_counter)" }
    }
  } : name => merge(local.metric_defaults, metric) }

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
    "Requests/s by status"                 = ["requests", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.status"]]
    "Requests/s by function"               = ["requests", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.function"]]
    "Errors/s by function and status"      = ["errors", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.function", "metric.label.status"]]
    "p99 latency by function (s)"          = ["latency", "ALIGN_DELTA", "REDUCE_PERCENTILE_99", ["metric.label.function"]]
    "p50 latency by function (s)"          = ["latency", "ALIGN_DELTA", "REDUCE_PERCENTILE_50", ["metric.label.function"]]
    "Decisions/s by offer"                 = ["decisions", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.offer_id"]]
    "Decisions/s by sampler and served_by" = ["decisions", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.sampler", "metric.label.served_by", "metric.label.degraded"]]
    "Slates/s by agent and served_by"      = ["agent_decisions", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.policy", "metric.label.served_by", "metric.label.degraded"]]
    "Conversions/s by offer"               = ["conversions", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.offer_id"]]
    "Median payout by offer (cents)"       = ["reward", "ALIGN_DELTA", "REDUCE_PERCENTILE_50", ["metric.label.offer_id"]]
    "Accepted slates/s by agent"           = ["acceptances", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.policy"]]
    "Degraded answers/s by function"       = ["degraded", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.function"]]
    "Firestore errors/s"                   = ["firestore_errors", "ALIGN_RATE", "REDUCE_SUM", ["metric.label.function"]]
    "Batch files failed"                   = ["batch_failures", "ALIGN_DELTA", "REDUCE_SUM", []]
    "Statistics resets"                    = ["resets", "ALIGN_DELTA", "REDUCE_SUM", ["metric.label.counter"]]
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
    unit        = each.value.unit

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
    for_each = each.value.buckets == null ? [] : [each.value.buckets]
    content {
      exponential_buckets {
        num_finite_buckets = bucket_options.value.count
        growth_factor      = bucket_options.value.growth
        scale              = bucket_options.value.scale
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
    displayName = "${var.name_prefix}: requests, latency, decisions, conversions, errors"
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
