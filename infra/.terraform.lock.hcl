# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.

provider "registry.terraform.io/hashicorp/archive" {
  version     = "2.7.1"
  constraints = "~> 2.4"
}

provider "registry.terraform.io/hashicorp/google" {
  version     = "6.47.0"
  constraints = "~> 6.0"
}

provider "registry.terraform.io/hashicorp/google-beta" {
  version     = "6.47.0"
  constraints = "~> 6.0"
}
