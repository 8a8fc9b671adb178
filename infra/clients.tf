# Batch clients (var.batch_clients): each client's members may add files under <client>/ in the
# inbox and read what score-upload writes under <client>/ in results, and nothing else. The
# condition is on the object's full resource name, so company_b cannot write into company_c/.
# Listing is a bucket-level permission that such a condition never grants: clients fetch their
# result by name.
locals {
  client_roles = {
    inbox   = "roles/storage.objectCreator" # add files; no read, overwrite or delete
    results = "roles/storage.objectViewer"
  }

  client_access = {
    for pair in setproduct(keys(var.batch_clients), keys(local.client_roles)) :
    "${pair[0]} ${pair[1]}" => {
      client    = pair[0]
      bucket    = pair[1]
      role      = local.client_roles[pair[1]]
      members   = var.batch_clients[pair[0]]
      condition = "resource.name.startsWith(\"projects/_/buckets/${local.bucket_names[pair[1]]}/objects/${pair[0]}/\")"
    }
  }
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
