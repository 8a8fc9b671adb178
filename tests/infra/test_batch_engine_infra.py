"""The batch engine's Terraform (infra/batch_engine.tf), checked offline: the HCL parsed with
python-hcl2, and the locals that need no provider evaluated by `terraform console` (Terraform
cannot download providers here), as tests/test_infra.py does for the rest of infra/."""

import base64
import functools
import json
import pathlib
import re
import shutil
import subprocess
import tempfile

import hcl2
import pytest
from hcl2 import SerializationOptions

from shared.batch import engine, plan, task

ROOT = pathlib.Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


@functools.cache
def parsed() -> dict:
    merged = {"resource": {}, "locals": {}, "variable": {}}
    for path in sorted(INFRA.glob("*.tf")):
        document = hcl2.loads(path.read_text(), serialization_options=OPTIONS)
        for entry in document.get("resource", []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    merged["resource"][(rtype, name)] = body
        for kind in ("locals", "variable"):
            for entry in document.get(kind, []):
                merged[kind].update(entry)
    return merged


def resource(rtype: str, name: str) -> dict:
    return parsed()["resource"][(rtype, name)]


def _is_expression(value: str) -> bool:
    """One `${...}` spanning the whole string: python-hcl2's form of a bare expression."""
    depth = 0
    for index, char in enumerate(value):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "}" and depth == 0:
            return value.startswith("${") and index == len(value) - 1
    return False


def _hcl(value) -> str:
    if isinstance(value, str):
        return value[2:-1] if _is_expression(value) else json.dumps(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dict):
        return "{\n" + "\n".join(f"{json.dumps(k)} = {_hcl(v)}" for k, v in value.items()) + "\n}"
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(v) for v in value) + "]"
    return str(value)


@functools.cache
def evaluated() -> dict:
    """The pure locals (no resource, data source or module) as Terraform computes them."""
    pure = dict(parsed()["locals"])
    changed = True
    while changed:
        changed = False
        for name, value in list(pure.items()):
            text = json.dumps(value)
            used = set(re.findall(r"\blocal\.([a-z0-9_]+)", text))
            if re.search(r"\b(google_[a-z0-9_]+|data|module)\.[a-z0-9_]+", text) or used - pure.keys():
                del pure[name]
                changed = True
    pure.pop("repo_root", None)
    with tempfile.TemporaryDirectory() as directory:
        shutil.copy(INFRA / "variables.tf", directory)
        body = "\n".join(f"{k} = {_hcl(v)}" for k, v in pure.items() if k not in ("source_files",))
        pathlib.Path(directory, "locals.tf").write_text("locals {\n" + body + "\n}\n")
        names = ", ".join(f"{name} = local.{name}" for name in pure if name != "source_files")
        result = subprocess.run(
            ["terraform", "console", "-var", "project_id=test-project"],
            cwd=directory,
            input=f"base64encode(jsonencode({{{names}}}))\n",
            capture_output=True,
            text=True,
            timeout=120,
            env={"TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/local/bin:/usr/bin:/bin", "CHECKPOINT_DISABLE": "1"},
        )
    assert result.returncode == 0, result.stderr
    return json.loads(base64.b64decode(result.stdout.strip().strip('"')))


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
