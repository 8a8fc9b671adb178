output "gateway_url" {
  description = "Base URL of the API, e.g. $URL/sample/?click_id=1&offer_ids=3,5,7&key=$KEY."
  value       = "https://${google_api_gateway_gateway.api.default_hostname}"
}

output "inbox_bucket" {
  description = "Bucket clients drop CSV files into, as <client>/<file>.csv."
  value       = google_storage_bucket.inbox.name
}

output "results_bucket" {
  description = "Bucket where scored files land, under the same client prefix."
  value       = google_storage_bucket.results.name
}

output "api_key" {
  description = "API key for the gateway (query parameter `key`). terraform output -raw api_key"
  value       = google_apikeys_key.client.key_string
  sensitive   = true
}

output "function_urls" {
  description = "Cloud Run URLs of the functions (IAM-protected: call them through the gateway)."
  value = merge(
    { for name, fn in google_cloudfunctions2_function.http : name => fn.service_config[0].uri },
    { (local.score_upload.name) = google_cloudfunctions2_function.score_upload.service_config[0].uri },
  )
}
