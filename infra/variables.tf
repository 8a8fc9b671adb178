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

variable "batch_engine_image" {
  description = "Container image of the batch engine's tasks (functions/batch_task.Dockerfile), e.g. REGION-docker.pkg.dev/PROJECT/PREFIX-engine/batch-engine@sha256:... as cloudbuild.yaml pushes it. Null means the repository's :latest."
  type        = string
  default     = null
}

variable "batch_engine_parallelism" {
  description = "Tasks of one batch engine execution that run at once (each one vCPU). 100 scores 10M rows in about 2 minutes; bounded by the project's Cloud Run CPU quota in the region."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_engine_parallelism >= 1 && var.batch_engine_parallelism <= 1000
    error_message = "batch_engine_parallelism must be between 1 and 1000."
  }
}

variable "batch_engine_max_retries" {
  description = "Times Cloud Run runs a failed batch engine task again before the file is marked failed."
  type        = number
  default     = 3
}

variable "batch_parallel_bytes" {
  description = "Client files larger than this many bytes are scored on the batch engine; smaller ones by score-upload itself (faster: no execution to start)."
  type        = number
  default     = 50331648 # 48 MiB, about 470,000 rows of Company B's format
}

variable "min_instances" {
  description = "Warm instances kept for each HTTP function (0 = scale to zero; 1 removes cold starts at a cost)."
  type        = number
  default     = 0
}

variable "agent_policy" {
  description = "Customer-offers agent (AGENT_POLICY): \"linear-ucb\" (the default) or \"linear-ts\" (contextual linear models learning from /rewards), \"thompson-slate\" (per segment), \"static\" (the case study's repaired agent). docs/customer-agent.md."
  type        = string
  default     = "linear-ucb"

  validation {
    condition     = contains(["linear-ucb", "linear-ts", "thompson-slate", "static"], var.agent_policy)
    error_message = "agent_policy must be one of \"linear-ucb\", \"linear-ts\", \"thompson-slate\", \"static\"."
  }
}

variable "click_retention_days" {
  description = "CPA click documents are deleted by Firestore's TTL this many days after they were written (field expire_at; deletion runs within about a day of expiry)."
  type        = number
  default     = 90

  validation {
    condition     = var.click_retention_days >= 1
    error_message = "click_retention_days must be at least 1."
  }
}

variable "episode_retention_days" {
  description = "Customer episodes are deleted by Firestore's TTL this many days after they were written (field expire_at)."
  type        = number
  default     = 365

  validation {
    condition     = var.episode_retention_days >= 1
    error_message = "episode_retention_days must be at least 1."
  }
}

variable "click_reward_window_seconds" {
  description = "CLICK_REWARD_WINDOW_SECONDS: a click without feedback this long after /sample stands settled at reward 0; later feedback is recorded as late and applied as a correction (README, Reward windows). Keep it below click_retention_days: a late reward needs its click document."
  type        = number
  default     = 86400

  validation {
    condition     = var.click_reward_window_seconds > 0 && var.click_reward_window_seconds <= 31622400
    error_message = "click_reward_window_seconds must be above 0 and at most 366 days (31622400)."
  }
}

variable "episode_reward_window_seconds" {
  description = "EPISODE_REWARD_WINDOW_SECONDS: an episode without a reward this long after /predict stands settled as not accepted and no longer takes a reward by customer id; a later reward naming it is recorded as late and applied as a correction (README, Reward windows). Keep it below episode_retention_days."
  type        = number
  default     = 604800

  validation {
    condition     = var.episode_reward_window_seconds > 0 && var.episode_reward_window_seconds <= 31622400
    error_message = "episode_reward_window_seconds must be above 0 and at most 366 days (31622400)."
  }
}

variable "degraded_mode" {
  description = "DEGRADED_MODE of the HTTP functions: \"off\", or the degraded answer to give when Firestore is unavailable (see the README's degraded mode section)."
  type        = string
  default     = "off"
}

variable "stats_max_age_seconds" {
  description = "STATS_MAX_AGE_SECONDS of the HTTP functions: how stale the candidate statistics behind a decision may be."
  type        = number
  default     = 2

  validation {
    condition     = var.stats_max_age_seconds >= 0
    error_message = "stats_max_age_seconds must not be negative."
  }
}

variable "clients" {
  description = <<-EOT
    The client registry: one entry per client company, keyed by the client's name (its folder in the
    inbox and results buckets). Each entry:
    - tenant: the tenant the client's requests and files act as (default: the client's name);
    - api_keys: the client's live API key slots (default ["primary"]; [] for a batch-only client;
      at most two, so a key can be rotated: add "next", hand it out, then drop "primary");
    - batch_members: IAM members who may add files under <client>/ in the inbox and read <client>/
      in results, nothing else (default none);
    - rules_file: its eligibility rules, relative to the repository root (default clients/<client>.json);
    - products_file: its products CSV for tools/load_products.py (default none);
    - requests_per_minute: its allowance, all its keys together (default 60000: 1,000 a second);
    - consumer_project: a separate Google Cloud project to create its keys in, which gives it a
      quota of its own at the gateway (default: the service's project, shared by every client
      there; docs/clients-and-tenants.md).
  EOT
  type = map(object({
    tenant              = optional(string)
    api_keys            = optional(list(string), ["primary"])
    batch_members       = optional(list(string), [])
    rules_file          = optional(string)
    products_file       = optional(string)
    requests_per_minute = optional(number, 60000)
    consumer_project    = optional(string)
  }))
  default = {}

  # 30 characters: "<name_prefix>-<client>-<slot>" is an API key ID (at most 63).
  validation {
    condition     = alltrue([for client in keys(var.clients) : can(regex("^[a-z][a-z0-9_-]{0,29}$", client))])
    error_message = "clients: names are 1 to 30 lower-case letters, digits, '_' and '-', starting with a letter (they are the inbox folder names)."
  }

  validation {
    condition     = length(distinct([for client in keys(var.clients) : replace(client, "_", "-")])) == length(var.clients)
    error_message = "clients: two names differ only by '_' against '-' (their API key IDs would be the same)."
  }

  # shared/platform/namespace.py: TENANT_NAME.
  validation {
    condition     = alltrue([for client, entry in var.clients : can(regex("^[a-z][a-z0-9_-]{0,39}$", coalesce(entry.tenant, client)))])
    error_message = "clients: a tenant is 1 to 40 lower-case letters, digits, '_' and '-', starting with a letter."
  }

  validation {
    condition     = length(distinct([for client, entry in var.clients : coalesce(entry.tenant, client)])) == length(var.clients)
    error_message = "clients: two clients name the same tenant; each client is its own tenant."
  }

  validation {
    condition = alltrue([
      for entry in values(var.clients) : length(entry.api_keys) <= 2 && length(distinct(entry.api_keys)) == length(entry.api_keys) && alltrue([
        for slot in entry.api_keys : can(regex("^[a-z][a-z0-9]{0,11}$", slot))
      ])
    ])
    error_message = "clients: api_keys holds at most two distinct slot names of 1 to 12 lower-case letters and digits (e.g. [\"primary\", \"next\"] while rotating)."
  }

  validation {
    condition = alltrue(flatten([
      for entry in values(var.clients) : [
        for member in entry.batch_members : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):", member))
      ]
    ]))
    error_message = "clients: batch_members are user:, group:, serviceAccount:, domain:, principal: or principalSet: IAM members; never public."
  }

  validation {
    condition     = alltrue([for entry in values(var.clients) : entry.requests_per_minute >= 1 && floor(entry.requests_per_minute) == entry.requests_per_minute])
    error_message = "clients: requests_per_minute is a whole number of at least 1."
  }

  validation {
    condition     = alltrue([for entry in values(var.clients) : entry.consumer_project == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", coalesce(entry.consumer_project, "x")))])
    error_message = "clients: consumer_project is a Google Cloud project ID."
  }
}

# Folded into var.clients (batch_members). Kept so that a terraform.tfvars still setting it fails
# the plan instead of silently dropping every client's bucket access.
variable "batch_clients" {
  description = "Replaced by clients: { company_b = { batch_members = [...] } }. Must stay empty."
  type        = any
  default     = {}

  validation {
    condition     = length(var.batch_clients) == 0
    error_message = "batch_clients is now part of clients: write clients = { company_b = { batch_members = [\"group:uploads@company-b.example\"] } } (docs/clients-and-tenants.md)."
  }
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel IDs (projects/<p>/notificationChannels/<id>) the alerts go to. Empty: alerts open incidents in the console only."
  type        = list(string)
  default     = []
}

variable "alert_error_ratio" {
  description = "Alert when 5xx answers exceed this share of requests over 5 minutes."
  type        = number
  default     = 0.01
}

variable "alert_latency_p99_seconds" {
  description = "Alert when a function's p99 latency stays above this many seconds for 5 minutes."
  type        = number
  default     = 1
}

variable "admin_members" {
  description = "Who may invoke the admin-reset function (statistics reset), e.g. [\"group:offer-admins@example.com\"]. Empty: nobody. Never public."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.admin_members : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):", member))])
    error_message = "admin_members: members are user:, group:, serviceAccount:, domain:, principal: or principalSet: IAM members; never public."
  }
}

variable "drift_half_life_seconds" {
  description = "DRIFT_HALF_LIFE_SECONDS of the HTTP functions: the half-life of each offer's recent window, which thompson's statistics restart to when it disagrees with the offer's older clicks (docs/rewards-and-drift.md). 0 (the default) keeps restarts off: on the benchmark family they gained nothing measurable; 1800 is the setting they were measured with."
  type        = number
  default     = 0

  validation {
    condition     = var.drift_half_life_seconds >= 0
    error_message = "drift_half_life_seconds must not be negative."
  }
}

variable "drift_threshold" {
  description = "DRIFT_THRESHOLD of the HTTP functions: the log likelihood ratio between an offer's recent window and its older clicks that restarts its statistics (6: about one false alarm in 2,000 independent tests)."
  type        = number
  default     = 6

  validation {
    condition     = var.drift_threshold > 0
    error_message = "drift_threshold must be above 0."
  }
}

variable "holdout_share" {
  description = "HOLDOUT_SHARE of the HTTP functions: the share of each tenant's decisions, per product, served by the baseline and kept out of learning (docs/analytics.md); a tenant's config/serving `holdout` overrides it."
  type        = number
  default     = 0.02

  validation {
    condition     = var.holdout_share >= 0 && var.holdout_share <= 0.5
    error_message = "holdout_share must be between 0 and 0.5."
  }
}

variable "analytics_location" {
  description = "BigQuery location of the decision log's dataset (a region such as europe-west1, or EU / US)."
  type        = string
  default     = "EU"
}

variable "log_retention_days" {
  description = "Days a day's partition of the decision log is kept."
  type        = number
  default     = 400

  validation {
    condition     = var.log_retention_days >= 1
    error_message = "log_retention_days must be at least 1."
  }
}

variable "analytics_readers" {
  description = "Who may read the decision log's dataset (roles/bigquery.dataViewer on it), e.g. [\"group:analysts@example.com\"]; they also need roles/bigquery.jobUser to run queries. Empty: nobody beyond the project's owners."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.analytics_readers : can(regex("^(user|group|serviceAccount|domain|principal|principalSet):", member))])
    error_message = "analytics_readers: members are user:, group:, serviceAccount:, domain:, principal: or principalSet: IAM members; never public."
  }
}

variable "srm_alert_chi_square" {
  description = "The holdout's sample-ratio-mismatch alert fires above this chi-square statistic (1 degree of freedom; 10.83 is p = 0.001)."
  type        = number
  default     = 10.83
}
