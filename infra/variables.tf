variable "project_id" {
  description = "Google Cloud project ID to deploy into (an existing project with billing enabled)."
  type        = string
}

variable "region" {
  description = "Region for the functions, the buckets and the storage trigger (they must share it)."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of every resource name: functions, service accounts, gateway, API key. Lower case, short (service account IDs are at most 30 characters)."
  type        = string
  default     = "offer-bandits"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,16}$", var.name_prefix))
    error_message = "name_prefix: 2 to 17 characters, lower-case letters, digits and '-', starting with a letter."
  }
}

variable "firestore_location" {
  description = "Firestore location: a region (e.g. europe-west1) or multi-region (eur3, nam5). Null means var.region. Cannot change once the database exists."
  type        = string
  default     = null
}

variable "gateway_region" {
  description = "Region of the API Gateway (only some regions offer it, e.g. europe-west1, europe-west2, us-central1, us-east1, asia-northeast1). Null means var.region."
  type        = string
  default     = null
}

variable "results_retention_days" {
  description = "Scored results are deleted from the results bucket this many days after they were written."
  type        = number
  default     = 30

  validation {
    condition     = var.results_retention_days >= 1
    error_message = "results_retention_days must be at least 1."
  }
}

variable "noncurrent_retention_days" {
  description = "Overwritten (noncurrent) versions of inbox and results objects are kept this many days, to recover from a bad upload or run."
  type        = number
  default     = 7
}

variable "max_instances" {
  description = "Upper bound on instances of each HTTP function (a cost and Firestore-load ceiling)."
  type        = number
  default     = 10
}

variable "batch_max_instances" {
  description = "Upper bound on instances of the storage-triggered score-upload function."
  type        = number
  default     = 5
}

variable "min_instances" {
  description = "Warm instances kept for each HTTP function (0 = scale to zero; 1 removes cold starts at a cost)."
  type        = number
  default     = 0
}

variable "agent_policy" {
  description = "Customer-offers agent: \"thompson-slate\" (learns from /rewards) or \"static\" (the case study's repaired agent)."
  type        = string
  default     = "thompson-slate"

  validation {
    condition     = contains(["thompson-slate", "static"], var.agent_policy)
    error_message = "agent_policy must be \"thompson-slate\" or \"static\"."
  }
}
