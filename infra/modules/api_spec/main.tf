# The OpenAPI 2.0 document API Gateway is deployed with, rendered from infra/openapi.json.
#
# API Gateway matches paths exactly, so /sample and /sample/ are two routes. The spec (which the
# local stack also reads) writes each path once, without the trailing slash; the copy with the
# slash is made here. API Gateway also wants every operationId unique, so the copies' ids get a
# suffix. Pure functions only: tests/test_infra.py evaluates this module with `terraform console`,
# offline.
#
# With requests_per_minute set, every operation costs one unit of a `quota_metric` counter and the
# gateway refuses (429) a consumer project's requests beyond that many a minute. API Gateway counts
# per consumer project (the project an API key belongs to), never per key: x-google-management
# quota units are "1/min/{project}" only.

variable "template" {
  description = "Path of the spec template; every $${name} in it is filled from backends."
  type        = string
}

variable "backends" {
  description = "Template variables: backend_<entry point> => the function's URL."
  type        = map(string)
}

variable "quota_metric" {
  description = "Name of the metric every request costs one unit of."
  type        = string
  default     = "requests"
}

variable "requests_per_minute" {
  description = "Requests a minute each consumer project may make (the default limit; lower it per project with a consumer quota override). Null: no quota."
  type        = number
  default     = null
}

variable "slash_suffix" {
  description = "Appended to the operationId of each trailing-slash copy."
  type        = string
  default     = "Slash"
}

locals {
  spec    = jsondecode(templatefile(var.template, var.backends))
  methods = ["get", "put", "post", "delete", "options", "head", "patch"]
  quota   = var.requests_per_minute != null

  # Top level: the metric and its per-project limit (absent without a quota).
  management = {
    for key, value in {
      "x-google-management" = {
        metrics = [{ name = var.quota_metric, displayName = "Requests", valueType = "INT64", metricKind = "DELTA" }]
        quota = {
          limits = [{
            name   = "${var.quota_metric}-per-minute"
            metric = var.quota_metric
            unit   = "1/min/{project}"
            values = { STANDARD = var.requests_per_minute }
          }]
        }
      }
    } : key => value if local.quota
  }
  cost = { for key, value in { "x-google-quota" = { metricCosts = { (var.quota_metric) = 1 } } } : key => value if local.quota }

  # Every operation costs one request. Path-level keys that are not operations (e.g. `parameters`)
  # are copied as they are.
  paths = {
    for path, item in local.spec.paths : path => merge(item, {
      for method, operation in item : method => merge(operation, local.cost) if contains(local.methods, method)
    })
  }

  slashed = {
    for path, item in local.paths : "${path}/" => merge(item, {
      for method, operation in item : method => merge(operation, {
        operationId = "${operation.operationId}${var.slash_suffix}"
      }) if contains(local.methods, method)
    }) if !endswith(path, "/")
  }

  document = jsonencode(merge(local.spec, local.management, { paths = merge(local.paths, local.slashed) }))
}

output "document" {
  description = "The rendered spec, JSON."
  value       = local.document
}
