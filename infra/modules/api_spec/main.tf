# The OpenAPI 2.0 document API Gateway is deployed with, rendered from infra/openapi.json.
#
# API Gateway matches paths exactly, so /sample and /sample/ are two routes. The spec (which the
# local stack also reads) writes each path once, without the trailing slash; the copy with the
# slash is made here. API Gateway also wants every operationId unique, so the copies' ids get a
# suffix. Pure functions only: tests/infra/test_infra.py evaluates this module with `terraform console`,
# offline.

variable "template" {
  description = "Path of the spec template; every $${name} in it is filled from backends."
  type        = string
}

variable "backends" {
  description = "Template variables: backend_<entry point> => the function's URL."
  type        = map(string)
}

variable "slash_suffix" {
  description = "Appended to the operationId of each trailing-slash copy."
  type        = string
  default     = "Slash"
}

locals {
  spec    = jsondecode(templatefile(var.template, var.backends))
  methods = ["get", "put", "post", "delete", "options", "head", "patch"]

  # Path-level keys that are not operations (e.g. `parameters`) are copied as they are.
  slashed = {
    for path, item in local.spec.paths : "${path}/" => merge(item, {
      for method, operation in item : method => merge(operation, {
        operationId = "${operation.operationId}${var.slash_suffix}"
      }) if contains(local.methods, method)
    }) if !endswith(path, "/")
  }

  document = jsonencode(merge(local.spec, { paths = merge(local.spec.paths, local.slashed) }))
}

output "document" {
  description = "The rendered spec, JSON."
  value       = local.document
}
