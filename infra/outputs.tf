output "gateway_url" {
  description = "Base URL of the API, e.g. curl -H \"x-api-key: $KEY\" \"$URL/sample?click_id=1&offer_ids=3,5,7\"."
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

output "api_key" {
  description = "API key for the gateway, sent in the x-api-key header. terraform output -raw api_key"
  value       = google_apikeys_key.client.key_string
  sensitive   = true
}

output "function_urls" {
  description = "Cloud Run URLs of the functions (IAM-protected: call them through the gateway)."
  value       = { for name, fn in google_cloudfunctions2_function.function : name => fn.service_config[0].uri }
}

output "service_accounts" {
  description = "Email of each of the service's identities (http, batch, build, trigger, gateway, admin)."
  value       = { for key, account in google_service_account.account : key => account.email }
}
