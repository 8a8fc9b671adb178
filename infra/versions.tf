# One major version per provider: a new major (with its removals) is a deliberate upgrade.
# The exact builds are pinned in .terraform.lock.hcl.
terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    # Only for the resources that are beta-only: API Gateway (api, api_config, gateway) and the
    # consumer quota override of a client's own project (clients.tf).
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
