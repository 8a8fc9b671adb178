"""The deployment as code agrees with the code it deploys, checked offline.

Providers cannot be downloaded here, so `terraform validate` and `plan` cannot run. Instead:
- the HCL in infra/ is parsed with python-hcl2, to see which resources exist and how they are wired;
- the locals that are computed from variables alone (the function map, the grants, the archive
  listing, the index exemptions, the client conditions) and the spec module are *evaluated* by
  Terraform itself with `terraform console`, which needs no provider;
and the results are compared with functions/main.py, infra/openapi.json and devstack/routes.py.
"""

import ast
import functools
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import flask
import pytest

from devstack.routes import entry_points, load_routes
from shared.batch import rules
from shared.batch.job import FINALIZED
from shared.cpa import drift
from shared.web.http import endpoint
from tests.infra.terraform import HCL, INFRA, RESOURCES, ROOT, console, evaluate, parse, resources

MAIN = ROOT / "functions" / "main.py"
SPEC = INFRA / "openapi.json"
BATCH_MEMBERS = {"company_b": ["group:uploads@company-b.example"], "company_c": ["user:ops@company-c.example"]}
CLIENTS = {client: {"batch_members": members} for client, members in BATCH_MEMBERS.items()}
VARIABLES = {"project_id": "test-project", "clients": CLIENTS}

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


@functools.cache
def evaluated() -> dict:
    """Every pure local of infra/ as Terraform computes it, with VARIABLES (the rest default)."""
    return evaluate(VARIABLES)


def functions() -> dict:
    return evaluated()["functions"]


def render_spec(template: pathlib.Path, backends: dict) -> dict:
    module = HCL["module"]["api_spec"]
    variables = {"template": str(template), "backends": backends}
    return json.loads(console(INFRA / module["source"], "local.document", variables))


# --- entry points and routing ---------------------------------------------------------------------


def source_entry_points() -> dict[str, str]:
    """Functions of functions/main.py decorated @functions_framework.http or .cloud_event -> kind."""
    found = {}
    for node in ast.parse(MAIN.read_text()).body:
        for decorator in getattr(node, "decorator_list", []):
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if isinstance(target, ast.Attribute) and getattr(target.value, "id", None) == "functions_framework":
                found[node.name] = target.attr
    return found


def http_entry_points() -> set[str]:
    return {fn["entry_point"] for fn in functions().values() if not fn["inbox_trigger"]}


def public_entry_points() -> set[str]:
    """The HTTP functions behind the gateway: every one but those only admins invoke."""
    return {fn["entry_point"] for fn in functions().values() if fn["invoker"] == "gateway"}


def test_the_function_map_is_the_one_resource_and_names_every_entry_point_once():
    assert list(resources("google_cloudfunctions2_function")) == ["function"]
    assert RESOURCES[("google_cloudfunctions2_function", "function")]["for_each"] == "${local.functions}"
    deployed = [fn["entry_point"] for fn in functions().values()]
    assert len(deployed) == len(set(deployed)), deployed
    kinds = {fn["entry_point"]: "cloud_event" if fn["inbox_trigger"] else "http" for fn in functions().values()}
    assert kinds == source_entry_points()


def test_spec_and_local_routes_reach_exactly_the_public_http_functions():
    backends = {f"backend_{ep}": f"https://{ep}.example" for ep in public_entry_points()}
    spec = render_spec(SPEC, backends)  # templatefile() fails on any variable it is not given
    used = {op["x-google-backend"]["address"] for item in spec["paths"].values() for op in item.values()}
    assert used == set(backends.values())
    assert entry_points(load_routes()) == public_entry_points()


def test_the_admin_function_is_deployed_but_never_routed_and_only_admins_invoke_it():
    admin = functions()["admin-reset"]
    assert (admin["entry_point"], admin["invoker"], admin["runs_as"]) == ("admin_reset", "admins", "admin")
    assert "admin_reset" in http_entry_points() - public_entry_points()
    assert "admin_reset" not in entry_points(load_routes()) and "admin" not in SPEC.read_text().lower()
    # the gateway's backends are the gateway-invoked functions only
    assert 'if local.functions[name].invoker == "gateway"' in (INFRA / "gateway.tf").read_text()
    invoker = RESOURCES[("google_cloud_run_v2_service_iam_member", "invoker")]
    assert 'if local.functions[name].invoker != "admins"' in str(invoker["for_each"])
    admins = RESOURCES[("google_cloud_run_v2_service_iam_member", "admin_invoker")]
    assert admins["for_each"] == "${toset(var.admin_members)}" and admins["member"] == "${each.value}"
    assert admins["name"] == '${google_cloudfunctions2_function.function["admin-reset"].name}'
    assert admins["role"] == "roles/run.invoker"
    assert HCL["variable"]["admin_members"]["default"] == []
    assert grants_of("admin") == {("project", "roles/datastore.user")}
    # plan refuses a public or malformed member (the variable's validation, its regex applied here)
    (validation,) = HCL["variable"]["admin_members"]["validation"]
    pattern = re.search(r'regex\("([^"]+)", member\)', validation["condition"])[1]
    assert [m for m in ("allUsers", "allAuthenticatedUsers", "alice@example.com") if re.search(pattern, m)] == []
    assert re.search(pattern, "group:offer-admins@example.com")


def test_the_agent_variable_defaults_to_the_code_s_default_and_accepts_every_registered_agent():
    from shared.customer.agents import registry

    variable = HCL["variable"]["agent_policy"]
    assert variable["default"] == registry.DEFAULT_AGENT
    (validation,) = variable["validation"]
    allowed = re.search(r"contains\(\[([^\]]+)\], var.agent_policy\)", validation["condition"])[1]
    assert sorted(json.loads(f"[{allowed}]")) == sorted(registry.AGENTS)


def test_gateway_doubles_every_path_with_a_trailing_slash(tmp_path):
    backends = {f"backend_{ep}": f"https://{ep}.example" for ep in http_entry_points()}
    source = json.loads(SPEC.read_text())
    # The spec written once, as its owner keeps it, plus a path-level `parameters` list.
    once = {path: item for path, item in source["paths"].items() if not path.endswith("/")}
    once["/offer_ids/{offer_id}/stats"] = {"parameters": [{"name": "offer_id", "in": "path"}]} | dict(
        once["/offer_ids/{offer_id}/stats"]
    )
    template = tmp_path / "openapi.json"
    template.write_text(json.dumps(source | {"paths": once}))
    for spec in (render_spec(template, backends), render_spec(SPEC, backends)):
        paths = spec["paths"]
        assert sorted(paths) == sorted([*once, *(p + "/" for p in once)])
        for path in once:
            assert paths[path + "/"].keys() == paths[path].keys()
            for method, operation in paths[path].items():
                if method != "parameters":
                    twin = paths[path + "/"][method]
                    assert twin["x-google-backend"] == operation["x-google-backend"]
        ids = [op["operationId"] for item in paths.values() for m, op in item.items() if m != "parameters"]
        assert len(ids) == len(set(ids)) == 2 * len(once)
    config = RESOURCES[("google_api_gateway_api_config", "api")]
    assert config["openapi_documents"][0]["document"][0]["contents"] == "${base64encode(module.api_spec.document)}"
    assert HCL["module"]["api_spec"]["template"] == "${path.module}/openapi.json"
    assert "key=" not in (INFRA / "README.md").read_text(), "the key goes in the x-api-key header, never the URL"


# --- identities -----------------------------------------------------------------------------------


def grants_of(account: str) -> set[tuple]:
    values = evaluated()
    return {("project", g["role"]) for g in values["project_grants"] if g["account"] == account} | {
        (g["bucket"], g["role"]) for g in values["bucket_grants"] if g["account"] == account
    }


def test_http_and_batch_runtimes_hold_disjoint_grants_and_each_function_runs_as_its_own():
    assert grants_of("http") == {("project", "roles/datastore.user")}
    assert grants_of("batch") == {
        ("project", "roles/datastore.user"),
        ("inbox", "roles/storage.objectViewer"),
        ("results", "roles/storage.objectUser"),
    }
    # Firestore is the one thing both need; each holds it through its own binding, nothing else shared.
    assert grants_of("http") & grants_of("batch") == {("project", "roles/datastore.user")}
    for name, fn in functions().items():
        expected = ("batch", "trigger") if fn["inbox_trigger"] else ("http", "gateway")
        if name == "admin-reset":
            expected = ("admin", "admins")
        assert (fn["runs_as"], fn["invoker"]) == expected, name
    service = RESOURCES[("google_cloudfunctions2_function", "function")]["service_config"][0]
    assert service["service_account_email"] == "${google_service_account.account[each.value.runs_as].email}"
    invoker = RESOURCES[("google_cloud_run_v2_service_iam_member", "invoker")]
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["member"] == "${google_service_account.account[local.functions[each.key].invoker].member}"


def test_every_iam_member_is_ours_or_a_listed_client_and_nothing_is_public():
    values = evaluated()
    accounts = set(values["service_accounts"])
    used = {g["account"] for g in values["project_grants"] + values["bucket_grants"]}
    used |= {fn[key] for fn in functions().values() for key in ("runs_as", "invoker")}
    assert used - {"admins"} <= accounts  # "admins": var.admin_members, checked below
    own = re.compile(r"\$\{google_service_account\.account\[.+\]\.member\}")
    gcs_agent = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
    for (rtype, name), body in RESOURCES.items():
        if (rtype, name) == ("google_cloud_run_v2_service_iam_member", "admin_invoker"):
            assert body["member"] == "${each.value}" and body["for_each"] == "${toset(var.admin_members)}"
        elif (rtype, name) == ("google_bigquery_dataset_iam_member", "readers"):  # the decision log's readers
            assert body["member"] == "${each.value}" and body["for_each"] == "${toset(var.analytics_readers)}"
        elif rtype.endswith("_iam_member"):
            # our accounts, Cloud Storage's agent, and Pub/Sub's writing the decision log (analytics.tf)
            agents = (gcs_agent, "${local.pubsub_agent}")
            assert own.fullmatch(body["member"]) or body["member"] in agents, (rtype, name)
        elif rtype.endswith("_iam_binding"):
            assert (rtype, name) == ("google_storage_bucket_iam_binding", "client")
            assert body["members"] == "${each.value.members}" and body["for_each"] == "${local.client_access}"
        else:
            assert not rtype.endswith("_iam_policy"), (rtype, name)
    assert {m for access in values["client_access"].values() for m in access["members"]} == {
        m for members in BATCH_MEMBERS.values() for m in members
    }
    for path in [*INFRA.rglob("*.tf"), *INFRA.glob("*.json")]:
        assert not re.search(r"allUsers|allAuthenticatedUsers", path.read_text()), path
    # Each client's own prefix, and nothing public: tests/infra/test_client_registry.py.


# --- storage trigger, Firestore, environment --------------------------------------------------------


def test_score_upload_alone_is_triggered_by_new_objects_in_the_inbox():
    assert [name for name, fn in functions().items() if fn["inbox_trigger"]] == ["score-upload"]
    body = RESOURCES[("google_cloudfunctions2_function", "function")]
    (trigger,) = body["dynamic"][0]["event_trigger"]["content"]
    assert body["dynamic"][0]["event_trigger"]["for_each"] == (
        '${each.value.inbox_trigger ? [google_storage_bucket.files["inbox"].name] : []}'
    )
    assert trigger["event_type"] == FINALIZED
    assert trigger["event_filters"] == [{"attribute": "bucket", "value": "${event_trigger.value}"}]
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert trigger["service_account_email"] == '${google_service_account.account["trigger"].email}'


UNINDEXED = {
    "cpa_clicks": "click_id sampled_at feedback_at expire_at candidates events",
    "episodes": "created_at last_update timestamp reward_timestamp expire_at states eligible_offers",
    "rewards": "last_update timestamp",
    # shared/platform/counters.py: shard values, summaries' totals and roll-up times, leases' slots
    "shards": "c",
    "cpa_offers": "as_of totals derived",  # derived: an offer's drift state (shared/cpa/drift.py)
    "agent_segments": "as_of totals",
    "agent_linear": "as_of totals",  # shared/customer/linear_store.py
    "cpa_counters": "as_of totals",
    "counter_rollups": "slot expire_at",
    # shared/cpa/context_counts.py: a minute's context counts (its `slot` stays indexed: the fold's query)
    "context_slots": "c expire_at",
    "cpa_context": "counts through as_of",
}


def test_sequential_fields_are_unindexed_and_clicks_episodes_and_leases_expire():
    overrides = evaluated()["field_overrides"].values()
    exempt = {(o["collection"], o["field"]) for o in overrides}
    assert exempt >= {(c, f) for c, fields in UNINDEXED.items() for f in fields.split()}
    assert {(o["collection"], o["field"]) for o in overrides if o["ttl"]} == {
        ("cpa_clicks", "expire_at"),
        ("episodes", "expire_at"),
        ("counter_rollups", "expire_at"),
        ("context_slots", "expire_at"),
    }
    assert ("context_slots", "slot") not in exempt
    field = RESOURCES[("google_firestore_field", "override")]
    assert field["index_config"] == [{}], "an empty index_config is what removes the indexes"
    assert field["dynamic"] == [{"ttl_config": {"for_each": "${each.value.ttl ? [1] : []}", "content": [{}]}}]
    # The customer store's two queries keep their composite indexes.
    indexes = evaluated()["episode_indexes"]
    assert sorted(indexes.values()) == [
        [["customer_id", "ASCENDING"], ["last_update", "DESCENDING"]],
        [["customer_id", "ASCENDING"], ["up_to_date", "ASCENDING"], ["last_update", "DESCENDING"]],
    ]


def test_environment_of_every_function():
    values = evaluated()
    for name, fn in functions().items():
        env = fn["env"]
        assert env["CLICK_RETENTION_DAYS"] == "90" and env["EPISODE_RETENTION_DAYS"] == "365", name
        assert env["CLICK_REWARD_WINDOW_SECONDS"] == "86400", name
        assert env["EPISODE_REWARD_WINDOW_SECONDS"] == "604800", name
        assert env["GOOGLE_CLOUD_PROJECT"] == "test-project" and env["FIRESTORE_DATABASE"] == "(default)", name
        if fn["inbox_trigger"]:
            assert env["INBOX_BUCKET"] == values["bucket_names"]["inbox"], name
            assert env["RESULTS_BUCKET"] == values["bucket_names"]["results"], name
        elif fn["invoker"] == "gateway":
            assert env["DEGRADED_MODE"] == "off" and env["STATS_MAX_AGE_SECONDS"] == "2", name
            # Terraform's defaults are the code's: restarts off (shared/cpa/drift.py)
            assert env["DRIFT_HALF_LIFE_SECONDS"] == f"{drift.DEFAULT_HALF_LIFE_SECONDS:g}", name
            assert env["DRIFT_THRESHOLD"] == f"{drift.DEFAULT_THRESHOLD:g}", name
            assert env["THREADS"] == str(fn["concurrency"]), name
    body = RESOURCES[("google_cloudfunctions2_function", "function")]
    environment = (
        "${merge(each.value.env, each.value.api_key_tenants ? {API_KEY_TENANTS = local.api_key_tenants} : {})}"
    )
    assert body["service_config"][0]["environment_variables"] == environment  # the keys: test_client_registry.py
    assert "environment_variables" not in body["build_config"][0]
    for path in [*INFRA.rglob("*.tf"), ROOT / "cloudbuild.yaml"]:
        assert "GOOGLE_FUNCTION_SOURCE" not in path.read_text(), path


# --- the source archive ------------------------------------------------------------------------------


def test_archive_has_main_py_at_its_root_and_imports_from_it(tmp_path):
    archive = evaluated()["source_files"]
    assert archive["main.py"] == "functions/main.py" and archive["requirements.txt"] == "requirements.txt"
    assert not [f for f in archive if "__pycache__" in f or f.endswith(".pyc")]
    assert not {f.split("/")[0] for f in archive} & {"tests", "bench", "devstack", "infra", "functions", "examples"}
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "shared").rglob("*.py")} | {
        str(p.relative_to(ROOT)) for p in rules.DEFAULT_DIR.glob("*.json")
    }
    assert shipped <= archive.keys()
    # Lay the archive out as the build unpacks it and import main.py from its root, as the runtime does.
    for target, source in archive.items():
        (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / source, tmp_path / target)
    probe = "import main, shared.batch.rules as r; print(main.__file__); print(r.DEFAULT_DIR)"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    main_file, clients_dir = result.stdout.split()
    assert pathlib.Path(main_file) == tmp_path / "main.py" and pathlib.Path(clients_dir) == tmp_path / "clients"


# --- monitoring ----------------------------------------------------------------------------------------


def _logged_field_names() -> set[str]:
    """Every field name the code passes to log() or log_fields() (shared/, functions/main.py)."""
    names = set()
    for path in [MAIN, *(ROOT / "shared").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("log", "log_fields"):
                names |= {keyword.arg for keyword in node.keywords if keyword.arg}
    return names


def _request_line(capsys, monkeypatch, degraded: bool) -> dict:
    """The log line of one request through the real decorator, with fields from log_fields."""
    from google.api_core import exceptions

    from shared.platform.firestore import breaker
    from shared.web.http import log_fields

    def probe(request):
        if degraded:
            raise exceptions.ServiceUnavailable("probe")
        log_fields(request, sampler="thompson", offer_id=7, served_by="thompson")
        return {}, 200

    def fallback(request):
        log_fields(request, sampler="random", offer_id=7, served_by="degraded:random")
        return {}, 200

    monkeypatch.setenv("DEGRADED_MODE", "on")
    answer = endpoint("GET", degraded=fallback)(probe)
    with flask.Flask(__name__).test_request_context("/probe?x=1&key=secret"):
        answer(flask.request)
    breaker.succeeded()
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert "secret" not in json.dumps(line)
    return line


def _payload_fields(text: str) -> set[str]:
    return set(re.findall(r"jsonPayload\.([A-Za-z_]+)", text))


def test_metrics_dashboard_and_alerts_are_built_from_the_logged_fields(capsys, monkeypatch):
    metrics = evaluated()["logged_metrics"]
    assert metrics.keys() == {
        "requests",
        "errors",
        "latency",
        "decisions",
        "agent_decisions",
        "conversions",
        "reward",
        "acceptances",
        "degraded",
        "firestore_errors",
        "batch_failures",
        "resets",
        "holdout_split",
        "log_publish_failures",
    }

    # The fields read are the ones the code writes: requests through the real decorator ...
    line = _request_line(capsys, monkeypatch, degraded=False)
    assert line["logger"] == "offer_bandits" and line["function"] == "probe" and line["httpRequest"]["status"] == 200
    assert re.fullmatch(r"[0-9.]+s", line["httpRequest"]["latency"])
    assert (line["sampler"], line["offer_id"], line["served_by"]) == ("thompson", 7, "thompson")
    degraded = _request_line(capsys, monkeypatch, degraded=True)
    assert degraded["degraded"] is True and degraded["served_by"] == "degraded:random"
    # ... and every jsonPayload field a metric reads is a name the code logs (log() / log_fields()).
    written = set(line) | set(degraded) | _logged_field_names()
    for name, metric in metrics.items():
        read = _payload_fields(metric["filter"] + json.dumps(metric["labels"]) + (metric["value"] or ""))
        assert read and read <= written, (name, read - written)
    main = MAIN.read_text()
    logged = ("sampler", "offer_id", "served_by", "reward", "is_conversion", "policy", "accepted", "reset_counter")
    for field in (*logged, "holdout", "holdout_share"):
        assert re.search(rf"log_fields\(request,[^)]*\b{field}=", main), field
    for function in ("sample", "feedback", "predict", "predict_v2", "rewards"):
        assert f"def {function}(request)" in main, function

    job = (ROOT / "shared" / "batch" / "job.py").read_text()
    assert "f\"batch file {status['state']}\"" in job and '"state": "failed"' in job
    assert 'jsonPayload.message="batch file failed"' in metrics["batch_failures"]["filter"]
    assert metrics["latency"]["value"].startswith("REGEXP_EXTRACT(httpRequest.latency")
    assert metrics["latency"]["unit"] == "s" and metrics["latency"]["buckets"]["scale"] == 0.001
    assert metrics["reward"]["value"] == "EXTRACT(jsonPayload.reward)" and metrics["reward"]["buckets"]
    assert 2 ** metrics["reward"]["buckets"]["count"] > 10**7  # the largest payout accepted, in cents
    assert set(metrics["decisions"]["labels"]) == {"sampler", "offer_id", "served_by", "degraded"}
    assert set(metrics["agent_decisions"]["labels"]) == {"policy", "served_by", "degraded"}
    assert "httpRequest.status>=400" in metrics["errors"]["filter"]
    assert "jsonPayload.is_conversion=true" in metrics["conversions"]["filter"]
    assert "jsonPayload.degraded=true" in metrics["degraded"]["filter"]
    assert {m for m, body in metrics.items() if body["value"]} == {"latency", "reward", "holdout_split"}
    assert set(metrics["holdout_split"]["labels"]) == {"tenant", "function", "holdout"}

    charts = evaluated()["charts"]
    assert {chart[0] for chart in charts.values()} == metrics.keys(), "every metric has a chart on the dashboard"
    for title, (metric, _, reducer, group_by) in charts.items():
        labels = {field.removeprefix("metric.label.") for field in group_by}
        assert labels <= set(metrics[metric]["labels"]), title
        if "PERCENTILE" in reducer:
            assert metrics[metric]["value"], title  # percentiles of distributions only
    dashboard = RESOURCES[("google_monitoring_dashboard", "service")]
    assert "local.charts" in dashboard["dashboard_json"] and "local.metric_type" in dashboard["dashboard_json"]

    alerts = evaluated()["alerts"]
    assert set(alerts) == {"server-errors", "latency-p99", "firestore-errors", "batch-failures", "log-publish-failures"}
    for name, alert in alerts.items():
        metric = re.match(r'metric.type="logging.googleapis.com/user/offer-bandits/([a-z_]+)"', alert["filter"])
        assert metric and metric[1] in metrics, name
    assert 'metric.label.status=monitoring.regex.full_match("5..")' in alerts["server-errors"]["filter"]
    assert alerts["latency-p99"]["reducer"] == "REDUCE_PERCENTILE_99"
    policy = RESOURCES[("google_monitoring_alert_policy", "alert")]
    assert policy["for_each"] == "${local.alerts}"
    assert policy["notification_channels"] == "${var.notification_channels}"
    logged = RESOURCES[("google_logging_metric", "logged")]
    assert logged["for_each"] == "${local.logged_metrics}" and logged["label_extractors"] == "${each.value.labels}"


# --- providers, variables, format ----------------------------------------------------------------------


def test_each_provider_is_locked_within_one_major_version():
    (terraform,) = parse(INFRA / "versions.tf")["terraform"]
    required = terraform["required_providers"][0]
    locked = {
        name.split("/")[-1]: body
        for entry in parse(INFRA / ".terraform.lock.hcl")["provider"]
        for name, body in entry.items()
    }
    assert locked.keys() == required.keys()
    for name, spec in required.items():
        match = re.fullmatch(r"~> (\d+)\.(\d+)", spec["version"])
        assert match, f"{name}: {spec['version']!r} is not one major version (~> X.Y)"
        version = tuple(int(part) for part in locked[name]["version"].split("."))
        assert version[0] == int(match[1]) and version[1] >= int(match[2]), name
        assert locked[name]["constraints"] == spec["version"], name


def test_beta_provider_only_for_the_gateway_and_its_quota_and_variables_described():
    beta = sorted(rtype for (rtype, _), body in RESOURCES.items() if body.get("provider") == "google-beta")
    assert beta == [
        "google_api_gateway_api",
        "google_api_gateway_api_config",
        "google_api_gateway_gateway",
        "google_service_usage_consumer_quota_override",  # clients.tf: a client project's gateway quota
    ]
    assert not [name for name, body in HCL["variable"].items() if not body.get("description")]


def test_terraform_fmt_is_clean():
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", "infra"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
