# The public entry point: API Gateway, routing by infra/openapi.json (the same table the local
# stack reads). Each operation's backend address is ${backend_<entry point>}, filled here with
# that function's Cloud Run URL, and each path gets its trailing-slash twin (modules/api_spec).
# The gateway calls the functions as its own service account; callers authenticate with their
# client's API key in the `x-api-key` header (the keys, and the quota they count against: clients.tf).
locals {
  backends = {
    for name, fn in google_cloudfunctions2_function.function :
    "backend_${local.functions[name].entry_point}" => fn.service_config[0].uri
    if local.functions[name].invoker == "gateway"
  }
  gateway_region = coalesce(var.gateway_region, var.region)
}

module "api_spec" {
  source              = "./modules/api_spec"
  template            = "${path.module}/openapi.json"
  backends            = local.backends
  quota_metric        = local.quota_metric
  requests_per_minute = local.quota_default
}

resource "google_api_gateway_api" "api" {
  provider = google-beta
  project  = var.project_id
  api_id   = "${var.name_prefix}-api"

  depends_on = [google_project_service.enabled]
}

resource "google_api_gateway_api_config" "api" {
  provider             = google-beta
  project              = var.project_id
  api                  = google_api_gateway_api.api.api_id
  api_config_id_prefix = "${var.name_prefix}-"

  openapi_documents {
    document {
      path     = "openapi.json"
      contents = base64encode(module.api_spec.document)
    }
  }

  gateway_config {
    backend_config {
      google_service_account = google_service_account.account["gateway"].email
    }
  }

  # Configs are immutable: a routing change makes a new one, switched to before the old goes.
  lifecycle {
    create_before_destroy = true
  }
}

resource "google_api_gateway_gateway" "api" {
  provider   = google-beta
  project    = var.project_id
  region     = local.gateway_region
  gateway_id = "${var.name_prefix}-gw"
  api_config = google_api_gateway_api_config.api.id
}

# API keys are checked against the API's own managed service, which must be enabled in the project
# each key belongs to: here, and in each client's consumer_project (clients.tf).
resource "google_project_service" "gateway_managed_service" {
  project            = var.project_id
  service            = google_api_gateway_api.api.managed_service
  disable_on_destroy = false
}
