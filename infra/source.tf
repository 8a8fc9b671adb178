# One source archive for every function: what the Cloud Functions build needs and nothing else.
# An allow-list rather than source_dir + excludes, so tests, bench, devstack, infra, examples,
# virtualenvs, .git and whatever a CI step leaves in the checkout can never slip in.
locals {
  repo_root = "${path.module}/.."

  # Python packages of the deployed code. __pycache__ is left behind by local test runs and
  # is not text (file() below reads UTF-8 text only).
  source_files = sort(concat(
    [
      for f in fileset(local.repo_root, "{functions,shared,clients}/**") : f
      if !strcontains(f, "__pycache__") && !endswith(f, ".pyc")
    ],
    ["requirements.txt"],
  ))
}

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.module}/build/source.zip"

  dynamic "source" {
    for_each = local.source_files
    content {
      filename = source.value
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
}
