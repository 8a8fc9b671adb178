"""The batch engine's Terraform (infra/batch_engine.tf), checked offline: the HCL parsed with
python-hcl2, and the locals that need no provider evaluated by `terraform console` (Terraform
cannot download providers here), as tests/test_infra.py does for the rest of infra/."""

import functools
import re
import shutil

import pytest

from shared.batch import engine, plan, task
from tests.infra import terraform

ROOT = terraform.ROOT
INFRA = terraform.INFRA

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


def parsed() -> dict:
    return terraform.HCL


def resource(rtype: str, name: str) -> dict:
    return terraform.RESOURCES[(rtype, name)]


@functools.cache
def evaluated() -> dict:
    """The pure locals (no resource, data source or module) as Terraform computes them."""
    return terraform.evaluate({"project_id": "test-project"})


def grants(account: str) -> set[tuple[str, str]]:
    values = evaluated()
    return {("project", g["role"]) for g in values["project_grants"] if g["account"] == account} | {
        (g["bucket"], g["role"]) for g in values["bucket_grants"] if g["account"] == account
    }


def test_the_engine_has_its_own_account_with_only_what_score_upload_has():
    values = evaluated()
    assert "engine" in values["service_accounts"]
    assert grants("engine") == {
        ("project", "roles/datastore.user"),
        ("inbox", "roles/storage.objectViewer"),
        ("results", "roles/storage.objectUser"),
    }
    assert grants("engine") == grants("batch")  # nothing more than the function it takes work from
    job = resource("google_cloud_run_v2_job", "batch_engine")
    (template,) = job["template"]
    (task_template,) = template["template"]
    assert task_template["service_account"] == '${google_service_account.account["engine"].email}'
    assert template["parallelism"] == "${var.batch_engine_parallelism}"
    assert task_template["max_retries"] == "${var.batch_engine_max_retries}"


def test_only_score_upload_and_the_engine_may_start_executions_of_that_job_alone():
    launcher = resource("google_cloud_run_v2_job_iam_member", "engine_launcher")
    assert evaluated()["engine_launchers"] == ["batch", "engine"]
    assert launcher["role"] == "roles/run.jobsExecutorWithOverrides"  # the task count and env are per execution
    assert launcher["name"] == "${google_cloud_run_v2_job.batch_engine.name}"  # on the job, not the project
    assert launcher["member"] == "${google_service_account.account[each.value].member}"
    for (rtype, name), body in parsed()["resource"].items():
        if rtype == "google_project_iam_member":
            assert "run." not in str(body.get("role")), (rtype, name)


def test_the_environment_names_the_job_the_way_the_code_reads_it():
    values = evaluated()
    path = values["engine_job_path"]
    assert re.fullmatch(r"projects/test-project/locations/europe-west1/jobs/offer-bandits-batch-engine", path)
    score_upload = values["functions"]["score-upload"]["env"]
    assert score_upload[engine.ENGINE_JOB_ENV] == path
    assert int(score_upload["BATCH_PARALLEL_BYTES"]) == plan.DEFAULT_PARALLEL_BYTES
    env = values["engine_env"]
    assert env[engine.ENGINE_JOB_ENV] == path and int(env["BATCH_MAX_RETRIES"]) == task.DEFAULT_MAX_RETRIES
    assert env["RESULTS_BUCKET"] == values["bucket_names"]["results"]
    assert env["INBOX_BUCKET"] == values["bucket_names"]["inbox"]
    assert env["EPISODE_RETENTION_DAYS"] == "365" and env["GOOGLE_CLOUD_PROJECT"] == "test-project"
    for name in ("BATCH_JOB_ID", "BATCH_TENANT", "BATCH_PLAN_VERSION", "BATCH_PHASE"):
        assert name not in env  # set per execution by shared/batch/engine.py
    job = resource("google_cloud_run_v2_job", "batch_engine")
    (container,) = job["template"][0]["template"][0]["containers"]
    assert container["dynamic"][0]["env"]["for_each"] == "${local.engine_env}"
    assert container["resources"][0]["limits"] == {"cpu": "1", "memory": "512Mi"}


def test_packs_are_unindexed_and_expire():
    overrides = evaluated()["batch_field_overrides"].values()
    assert {(o["collection"], o["field"]) for o in overrides if o["ttl"]} == {("batch_packs", "expire_at")}
    assert {("batch_packs", "entries"), ("batch_packs", "created_at")} <= {
        (o["collection"], o["field"]) for o in overrides
    }
    field = resource("google_firestore_field", "batch")
    assert field["index_config"] == [{}]


def test_the_image_is_built_from_the_task_dockerfile():
    dockerfile = (ROOT / "functions" / "batch_task.Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    assert "requirements.txt" in dockerfile and "functions/batch_task.py" in dockerfile
    assert re.search(r"^USER ", dockerfile, re.M), "the task runs as a user of its own, not root"
    build = (ROOT / "cloudbuild.yaml").read_text()
    assert "functions/batch_task.Dockerfile" in build and "batch_engine_image" in build
    assert evaluated()["engine_image"].endswith("-engine/batch-engine:latest")


def test_a_file_the_engine_gives_up_on_counts_as_a_batch_failure():
    values = evaluated()
    failures = values["logged_metrics"]["batch_failures"]["filter"]
    assert values["engine_lines"] in failures and values["function_lines"] in failures
    assert 'resource.labels.job_name="offer-bandits-batch-engine"' in values["engine_lines"]
    source = (ROOT / "shared" / "batch" / "job.py").read_text()
    assert "f\"batch file {status['state']}\"" in source  # what shared/batch/task.py logs through job.fail
