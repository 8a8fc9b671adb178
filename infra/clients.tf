# The client registry (var.clients) turned into everything that is per client: its API keys, its
# rights on its own folder of the inbox and results, the tenant its keys and files act as, and its
# allowance at the gateway. docs/clients-and-tenants.md tells the whole story.
#
# Every local here except api_key_tenants is computed from variables alone, so tests/infra/
# evaluates them with `terraform console`, offline.
locals {
  client_tenants = { for client, entry in var.clients : client => coalesce(entry.tenant, client) }

  # One API key per client and key slot. The key ID carries both, so a new slot is a new key and
  # removing a slot deletes only that key.
  client_keys = merge({}, [
    for client, entry in var.clients : {
      for slot in entry.api_keys : "${client} ${slot}" => {
        client  = client
        slot    = slot
        tenant  = local.client_tenants[client]
        key_id  = "${var.name_prefix}-${replace(client, "_", "-")}-${slot}"
        project = coalesce(entry.consumer_project, var.project_id)
      }
    }
  ]...)

  # BATCH_TENANTS of the storage-triggered function: inbox folder => tenant. Every client is here,
  # with or without uploaders of its own (the operator may drop a file for it).
  batch_tenants = local.client_tenants

  # TENANT_REQUESTS_PER_MINUTE of the HTTP functions: tenant => allowance, for the function-side
  # limiter (the gateway's own quota is per consumer project, below).
  tenant_requests_per_minute = {
    for client, entry in var.clients : local.client_tenants[client] => entry.requests_per_minute
  }

  # Eligibility rules: shipped in the archive as clients/<client>.json (source.tf), which is where
  # score-upload reads them (shared/batch/rules.py).
  client_rules_files = { for client, entry in var.clients : client => coalesce(entry.rules_file, "clients/${client}.json") }
  # Files the registry names that are not in the repository: the plan stops on them (source.tf).
  # A batch client (one with uploaders) needs its rules; an API-only client needs none by default.
  missing_client_files = sort(concat(
    [for client in keys(local.batch_clients) : local.client_rules_files[client] if !fileexists("${local.repo_root}/${local.client_rules_files[client]}")],
    [for entry in values(var.clients) : entry.rules_file if entry.rules_file != null && !fileexists("${local.repo_root}/${coalesce(entry.rules_file, "-")}")],
    [for entry in values(var.clients) : entry.products_file if entry.products_file != null && !fileexists("${local.repo_root}/${coalesce(entry.products_file, "-")}")],
  ))

  # --- buckets ---------------------------------------------------------------------------------
  # Each batch client's members may add files under <client>/ in the inbox and read what
  # score-upload writes under <client>/ in results, and nothing else. The condition is on the
  # object's full resource name and ends with "/", so company_b reaches neither company_c/ nor
  # company_bb/. Listing is a bucket-level permission that such a condition never grants: clients
  # fetch their result by name.
  client_roles = {
    inbox   = "roles/storage.objectCreator" # add files; no read, overwrite or delete
    results = "roles/storage.objectViewer"
  }

  batch_clients = { for client, entry in var.clients : client => entry.batch_members if length(entry.batch_members) > 0 }

  client_access = {
    for pair in setproduct(keys(local.batch_clients), keys(local.client_roles)) :
    "${pair[0]} ${pair[1]}" => {
      client    = pair[0]
      bucket    = pair[1]
      role      = local.client_roles[pair[1]]
      members   = local.batch_clients[pair[0]]
      condition = "resource.name.startsWith(\"projects/_/buckets/${local.bucket_names[pair[1]]}/objects/${pair[0]}/\")"
    }
  }

  # --- gateway quota -----------------------------------------------------------------------------
  # API Gateway counts a quota per consumer project: the project an API key was created in, not
  # the key. So the clients whose keys live in the same project share one allowance, the sum of
  # theirs; a client with a consumer_project of its own has its own. The spec's default limit is
  # the largest of these, and each project whose sum is lower is capped at it by a consumer override.
  quota_metric = "requests"

  quota_projects = {
    for project in distinct([for key in values(local.client_keys) : key.project]) :
    project => sum([
      for client, entry in var.clients : entry.requests_per_minute
      if length(entry.api_keys) > 0 && coalesce(entry.consumer_project, var.project_id) == project
    ])
  }

  quota_default   = length(local.quota_projects) == 0 ? null : max(values(local.quota_projects)...)
  quota_overrides = { for project, limit in local.quota_projects : project => limit if limit < coalesce(local.quota_default, 0) }

  consumer_projects = toset([for key in values(local.client_keys) : key.project if key.project != var.project_id])

  # API_KEY_TENANTS of the HTTP functions: the SHA-256 of each key string => its tenant. The hash
  # of a random key reveals nothing of it, so it may show in plans; the key itself never leaves the
  # sensitive client_api_keys output.
  api_key_tenants = jsonencode({
    for id, key in local.client_keys : nonsensitive(sha256(google_apikeys_key.client[id].key_string)) => key.tenant
  })
}

resource "google_apikeys_key" "client" {
  for_each = local.client_keys

  project      = each.value.project
  name         = each.value.key_id
  display_name = "offer-bandits ${each.value.client} (${each.value.slot})"

  restrictions {
    # Usable for this API only, not for any other Google API in the project.
    api_targets {
      service = google_api_gateway_api.api.managed_service
    }
  }

  depends_on = [google_project_service.gateway_managed_service, google_project_service.consumer]
}

# A key is valid for the API only in a project where the API's managed service is enabled.
resource "google_project_service" "consumer" {
  for_each = local.consumer_projects

  project            = each.value
  service            = google_api_gateway_api.api.managed_service
  disable_on_destroy = false
}

# Caps a consumer project below the spec's default limit (quota_overrides above).
resource "google_service_usage_consumer_quota_override" "client" {
  provider = google-beta
  for_each = local.quota_overrides

  project        = each.key
  service        = google_api_gateway_api.api.managed_service
  metric         = urlencode("${google_api_gateway_api.api.managed_service}/${local.quota_metric}")
  limit          = urlencode("/min/project")
  override_value = tostring(each.value)
  force          = true # lowering a limit by more than 10% is what this is for

  depends_on = [google_api_gateway_api_config.api, google_project_service.consumer, google_project_service.gateway_managed_service]
}

# Authoritative for this role and condition only: one binding per client and bucket.
resource "google_storage_bucket_iam_binding" "client" {
  for_each = local.client_access

  bucket  = local.buckets[each.value.bucket]
  role    = each.value.role
  members = each.value.members

  condition {
    title      = "${each.value.bucket}-${each.value.client}"
    expression = each.value.condition
  }

}
