output "gateway_url" {
  description = "Base URL of the API, e.g. curl -H \"x-api-key: $KEY\" \"$URL/sample?click_id=1&offer_ids=3,5,7\" with KEY one of client_api_keys."
  value       = "https://${google_api_gateway_gateway.api.default_hostname}"
}

output "inbox_bucket" {
  description = "Bucket clients drop CSV files into, as <client>/<file>.csv."
  value       = local.buckets.inbox
}

output "results_bucket" {
  description = "Bucket where scored files land, under the same client prefix."
  value       = local.buckets.results
}

output "client_api_keys" {
  description = "Each client's live API keys by slot, sent in the x-api-key header: terraform output -json client_api_keys | jq -r '.company_a.primary'. Hand each client its own only."
  value = {
    for client, entry in var.clients : client => {
      for slot in entry.api_keys : slot => google_apikeys_key.client["${client} ${slot}"].key_string
    }
  }
  sensitive = true
}

output "clients" {
  description = "The registry as deployed: each client's tenant, key slots, inbox folder, rules and products files, allowance and the project its keys (and gateway quota) belong to."
  value = {
    for client, entry in var.clients : client => {
      tenant              = local.client_tenants[client]
      api_keys            = entry.api_keys
      folder              = "${client}/"
      rules_file          = local.client_rules_files[client]
      products_file       = entry.products_file
      requests_per_minute = entry.requests_per_minute
      quota_project       = coalesce(entry.consumer_project, var.project_id)
    }
  }
}

output "function_urls" {
  description = "Cloud Run URLs of the functions (IAM-protected: call them through the gateway)."
  value       = { for name, fn in google_cloudfunctions2_function.function : name => fn.service_config[0].uri }
}

output "service_accounts" {
  description = "Email of each of the service's identities (http, batch, build, trigger, gateway, admin)."
  value       = { for key, account in google_service_account.account : key => account.email }
}
