# One source archive for every function, laid out as the Python runtime expects: main.py (the
# entry points, functions/main.py) at the root, beside the packages it imports. An allow-list
# rather than source_dir + excludes, so tests, bench, devstack, infra, examples, virtualenvs, .git
# and whatever a CI step leaves in the checkout can never slip in.
locals {
  repo_root = "${path.module}/.."

  # Archive path => repository path, for the files that are placed somewhere else. A client whose
  # rules_file is not clients/<client>.json gets it shipped under that name (clients.tf).
  archive_placed = merge(
    {
      "main.py"          = "functions/main.py"
      "requirements.txt" = "requirements.txt"
    },
    { for client, entry in var.clients : "clients/${client}.json" => entry.rules_file if entry.rules_file != null },
  )

  # Folders archived whole, under the same path. shared/batch/rules.py reads clients/ as a
  # sibling of shared/ (parents[2] of its own file): the archive root, as in the repository.
  archive_folders = ["shared", "clients"]

  # __pycache__ is left behind by local test runs and is not text (file() reads UTF-8 only).
  source_files = merge({
    for f in fileset(local.repo_root, "{${join(",", local.archive_folders)}}/**") : f => f
    if !strcontains(f, "__pycache__") && !endswith(f, ".pyc")
  }, local.archive_placed)
}

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.module}/build/source.zip"

  dynamic "source" {
    for_each = local.source_files
    content {
      filename = source.key
      content  = file("${local.repo_root}/${source.value}")
    }
  }
}

# The object name carries the archive's hash: a code change is a new object, which changes
# every function's build_config and so redeploys them; an unchanged tree deploys nothing.
resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "functions/source-${data.archive_file.source.output_md5}.zip"
  source = data.archive_file.source.output_path

  lifecycle {
    precondition {
      condition     = length(local.missing_client_files) == 0
      error_message = "clients: these files are not in the repository: ${join(", ", local.missing_client_files)}."
    }
  }
}
