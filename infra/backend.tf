# State lives in a GCS bucket that exists before this configuration (it cannot create its own
# state bucket). Partial configuration: pass the bucket at init time, e.g.
#   terraform init -backend-config="bucket=my-tf-state" -backend-config="prefix=offer-bandits"
# To try things with local state instead, delete this file (or use an override file).
terraform {
  backend "gcs" {}
}
