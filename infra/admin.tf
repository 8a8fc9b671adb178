# The statistics reset (functions/main.py admin_reset, shared/platform/counter_reset.py) is a function of its own,
# "admin-reset" in local.functions. It is not in openapi.json, so API Gateway has no route to it,
# and run.invoker on it goes to var.admin_members alone: each admin calls it with their own Google
# identity token, e.g.
#   curl -X POST -H "Authorization: Bearer $(gcloud auth print-identity-token)" \
#        -H "Content-Type: application/json" -d '{"offer": 42}' "$(terraform output -raw admin_reset_url)"
# and the archive records the token's email.
resource "google_cloud_run_v2_service_iam_member" "admin_invoker" {
  for_each = toset(var.admin_members)

  project  = var.project_id
  location = google_cloudfunctions2_function.function["admin-reset"].location
  name     = google_cloudfunctions2_function.function["admin-reset"].name
  role     = "roles/run.invoker"
  member   = each.value
}

output "admin_reset_url" {
  description = "The admin-reset function's URL: only var.admin_members may call it (not through the gateway)."
  value       = google_cloudfunctions2_function.function["admin-reset"].service_config[0].uri
}
