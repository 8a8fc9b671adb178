"""The deployment as code agrees with the code it deploys, checked offline.

Terraform providers cannot be downloaded here, so `terraform validate` cannot run: instead the HCL
in infra/ is parsed (python-hcl2) and its wiring compared with functions/main.py (the entry
points), infra/openapi.json (the routing) and devstack/routes.py (the local stack's routing).
"""

import ast
import json
import pathlib
import re
import shutil
import subprocess
from collections import Counter

import hcl2
import pytest
from hcl2 import SerializationOptions

from devstack.routes import entry_points, load_routes

ROOT = pathlib.Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MAIN = ROOT / "functions" / "main.py"
SPEC = INFRA / "openapi.json"

# Deployed name -> entry point, as issue 5 specifies them.
HTTP_FUNCTIONS = {
    "sample": "sample",
    "feedback": "feedback",
    "stats": "stats",
    "predict": "predict",
    "predict-v2": "predict_v2",
    "rewards": "rewards",
    "is-alive": "is_alive",
}
BATCH_NAME, BATCH_ENTRY_POINT = "score-upload", "score_upload"
FUNCTION = "google_cloudfunctions2_function"
FRAMEWORK_DECORATORS = {"http": "http", "cloud_event": "cloud_event"}


# --- reading the HCL ---------------------------------------------------------------------------


def _load_infra() -> dict:
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    merged = {"resource": {}, "data": {}, "locals": {}, "variable": {}}
    for path in sorted(INFRA.glob("*.tf")):
        parsed = hcl2.loads(path.read_text(), serialization_options=options)
        for kind in ("resource", "data"):
            for entry in parsed.get(kind, []):
                for rtype, named in entry.items():
                    for name, body in named.items():
                        assert (rtype, name) not in merged[kind], f"{kind} {rtype}.{name} declared twice"
                        merged[kind][(rtype, name)] = body
        for entry in parsed.get("locals", []):
            for key, value in entry.items():
                assert key not in merged["locals"], f"local.{key} declared twice"
                merged["locals"][key] = value
        for entry in parsed.get("variable", []):
            merged["variable"].update(entry)
    return merged


INFRA_HCL = _load_infra()
RESOURCES = INFRA_HCL["resource"]
LOCALS = INFRA_HCL["locals"]

_REF = re.compile(r"^\$\{([A-Za-z0-9_.\[\]\"-]+)\}$")


def ref(address: str) -> str:
    """`google_storage_bucket.inbox.name` -> the string HCL-to-dict gives for that reference."""
    return "${" + address + "}"


def resolve(value, each: dict | None = None):
    """A literal, or a plain `${local.a.b}` / `${each.value.x}` reference looked up in the HCL."""
    if not isinstance(value, str):
        return value
    match = _REF.match(value)
    if not match:
        return value
    parts = match.group(1).split(".")
    if parts[0] == "local":
        node = LOCALS
        for part in parts[1:]:
            node = node[part]
        return node
    if parts[:2] == ["each", "value"] and each is not None:
        node = each
        for part in parts[2:]:
            node = node[part]
        return node
    return value


def block(body: dict, name: str) -> dict:
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected exactly one {name} block, got {blocks!r}"
    return blocks[0]


def functions() -> dict:
    return {name: body for (rtype, name), body in RESOURCES.items() if rtype == FUNCTION}


def deployed_functions() -> list[dict]:
    """One entry per function Terraform deploys, for_each expanded: name, entry point, kind, body."""
    deployed = []
    for resource_name, body in functions().items():
        build = block(body, "build_config")
        kind = "cloud_event" if "event_trigger" in body else "http"
        if "for_each" in body:
            instances = resolve(body["for_each"])
            assert isinstance(instances, dict), (
                f"{resource_name}: for_each must be a local map, got {body['for_each']!r}"
            )
            for key, settings in instances.items():
                deployed.append(
                    {
                        "resource": resource_name,
                        "key": key,
                        "kind": kind,
                        "body": body,
                        "settings": settings,
                        "entry_point": resolve(build["entry_point"], settings),
                    }
                )
        else:
            deployed.append(
                {
                    "resource": resource_name,
                    "key": None,
                    "kind": kind,
                    "body": body,
                    "settings": None,
                    "entry_point": resolve(build["entry_point"]),
                }
            )
    return deployed


def terraform_entry_points(kind: str | None = None) -> set[str]:
    return {fn["entry_point"] for fn in deployed_functions() if kind is None or fn["kind"] == kind}


# --- reading the code ----------------------------------------------------------------------------


def source_entry_points() -> dict[str, str]:
    """Module-level functions of functions/main.py decorated with functions_framework.http or
    .cloud_event (also as `@functions_framework.http()`), mapped to that kind."""
    tree = ast.parse(MAIN.read_text(), filename=str(MAIN))
    found = {}
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "functions_framework"
                and target.attr in FRAMEWORK_DECORATORS
            ):
                assert node.name not in found, f"{node.name} decorated twice"
                found[node.name] = FRAMEWORK_DECORATORS[target.attr]
    return found


# --- functions -----------------------------------------------------------------------------------


def test_parser_sees_the_functions():
    # Guards the tests below against passing on an empty parse.
    assert len(deployed_functions()) >= 2
    assert "episodes" in json.dumps(RESOURCES[("google_firestore_index", "episodes_latest")])


def test_every_entry_point_in_the_source_has_exactly_one_function():
    in_source = source_entry_points()
    counts = Counter(fn["entry_point"] for fn in deployed_functions())
    missing = sorted(ep for ep in in_source if counts[ep] == 0)
    duplicated = sorted(ep for ep, n in counts.items() if n > 1)
    unknown = sorted(ep for ep in counts if ep not in in_source)
    assert not missing, f"entry points in functions/main.py with no function in infra/: {missing}"
    assert not duplicated, f"entry points deployed more than once: {duplicated}"
    assert not unknown, f"functions in infra/ whose entry point is not in functions/main.py: {unknown}"
    # And each is deployed as the kind it is written as: HTTP or event-triggered.
    kinds = {fn["entry_point"]: fn["kind"] for fn in deployed_functions()}
    assert kinds == in_source


def test_function_map_names_the_issue_functions():
    http = resolve(functions()["http"]["for_each"])
    assert {name: settings["entry_point"] for name, settings in http.items()} == HTTP_FUNCTIONS
    batch = [fn for fn in deployed_functions() if fn["kind"] == "cloud_event"]
    assert len(batch) == 1
    body = batch[0]["body"]
    assert batch[0]["entry_point"] == BATCH_ENTRY_POINT
    assert body["name"] == "${var.name_prefix}-${local.score_upload.name}"
    assert resolve("${local.score_upload.name}") == BATCH_NAME
    # Distinct deployed names: the map key is part of each HTTP function's name.
    assert functions()["http"]["name"] == "${var.name_prefix}-${each.key}"


def test_functions_are_built_and_run_alike():
    for fn in deployed_functions():
        label = fn["key"] or fn["resource"]
        build = block(fn["body"], "build_config")
        service = block(fn["body"], "service_config")
        assert build["runtime"] == "python311", label
        assert resolve(build["environment_variables"]) == {"GOOGLE_FUNCTION_SOURCE": "functions/main.py"}, label
        assert service["service_account_email"] == ref("google_service_account.runtime.email"), label
        env = service["environment_variables"]
        assert env.startswith("${merge(local.common_env,"), f"{label}: env must start from local.common_env"
        concurrency = int(resolve(service["max_instance_request_concurrency"], fn["settings"]))
        cpu = float(resolve(service["available_cpu"], fn["settings"]))
        assert concurrency >= 1 and (concurrency == 1 or cpu >= 1), f"{label}: concurrency > 1 needs a whole CPU"
        timeout = int(resolve(service["timeout_seconds"], fn["settings"]))
        assert 1 <= timeout <= (540 if fn["kind"] == "cloud_event" else 3600), label
    assert (ROOT / resolve("${local.build_env}")["GOOGLE_FUNCTION_SOURCE"]).is_file()
    assert LOCALS["common_env"] == {
        "GOOGLE_CLOUD_PROJECT": ref("var.project_id"),
        "FIRESTORE_DATABASE": ref("google_firestore_database.default.name"),
        "AGENT_POLICY": ref("var.agent_policy"),
    }
    database = RESOURCES[("google_firestore_database", "default")]
    assert database["name"] == "(default)" and database["type"] == "FIRESTORE_NATIVE"


def test_episodes_index_serves_latest_unrewarded_episode_query():
    index = RESOURCES[("google_firestore_index", "episodes_latest")]
    assert index["collection"] == "episodes"
    assert index["database"] == ref("google_firestore_database.default.name")
    assert [(f["field_path"], f["order"]) for f in index["fields"]] == [
        ("customer_id", "ASCENDING"),
        ("up_to_date", "ASCENDING"),
        ("last_update", "DESCENDING"),
    ]
    recent = RESOURCES[("google_firestore_index", "episodes_recent")]
    assert recent["collection"] == "episodes"
    assert [(f["field_path"], f["order"]) for f in recent["fields"]] == [
        ("customer_id", "ASCENDING"),
        ("last_update", "DESCENDING"),
    ]


# --- storage trigger -----------------------------------------------------------------------------


def test_storage_trigger_listens_for_finalized_objects_in_the_inbox():
    batch = functions()["score_upload"]
    trigger = block(batch, "event_trigger")
    assert trigger["event_type"] == "google.cloud.storage.object.v1.finalized"
    assert trigger["event_filters"] == [{"attribute": "bucket", "value": ref("google_storage_bucket.inbox.name")}]
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert trigger["service_account_email"] == ref("google_service_account.trigger.email")
    assert trigger["trigger_region"] == ref("var.region")
    assert RESOURCES[("google_storage_bucket", "inbox")]["location"] == "${upper(var.region)}"

    service = block(batch, "service_config")
    env = service["environment_variables"]
    assert "RESULTS_BUCKET = google_storage_bucket.results.name" in env
    assert "INBOX_BUCKET = google_storage_bucket.inbox.name" in env
    assert int(resolve(service["timeout_seconds"])) == 540
    assert resolve(service["available_memory"]) == "1Gi"


def _iam_members() -> list[tuple[str, str, dict]]:
    return [(rtype, name, body) for (rtype, name), body in RESOURCES.items() if rtype.endswith("_iam_member")]


def _grants(member: str) -> set[tuple[str, str, str | None]]:
    """(resource type, role, bound resource) for every IAM member resource granting to member."""
    grants = set()
    for rtype, _, body in _iam_members():
        if body.get("member") != member:
            continue
        roles = resolve(body.get("for_each")) if body.get("role") == "${each.value}" else [body["role"]]
        for role in roles:
            bound = body.get("bucket") or body.get("name") or body.get("for_each")
            grants.add((rtype, role, bound))
    return grants


def test_storage_trigger_identities_hold_their_roles():
    trigger = _grants(ref("google_service_account.trigger.member"))
    assert ("google_project_iam_member", "roles/eventarc.eventReceiver", None) in trigger
    assert (
        "google_cloud_run_v2_service_iam_member",
        "roles/run.invoker",
        ref("google_cloudfunctions2_function.score_upload.name"),
    ) in trigger
    gcs_agent = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
    assert ("google_project_iam_member", "roles/pubsub.publisher", None) in _grants(gcs_agent)


def test_runtime_identity_holds_only_what_the_functions_need():
    runtime = _grants(ref("google_service_account.runtime.member"))
    assert runtime == {
        ("google_project_iam_member", "roles/datastore.user", None),
        ("google_storage_bucket_iam_member", "roles/storage.objectViewer", ref("google_storage_bucket.inbox.name")),
        ("google_storage_bucket_iam_member", "roles/storage.objectUser", ref("google_storage_bucket.results.name")),
    }


# --- nobody else -----------------------------------------------------------------------------------


def test_no_public_principals_anywhere_in_infra():
    offenders = []
    for path in INFRA.rglob("*"):
        if not path.is_file() or {".terraform", "build"} & set(path.relative_to(INFRA).parts):
            continue
        text = path.read_text(errors="replace")
        offenders += [
            f"{path.relative_to(ROOT)}: {word}" for word in ("allUsers", "allAuthenticatedUsers") if word in text
        ]
    assert not offenders


def test_every_iam_member_is_one_of_our_identities():
    allowed = {
        ref(f"google_service_account.{name}.member") for (rtype, name) in RESOURCES if rtype == "google_service_account"
    }
    allowed.add("serviceAccount:${data.google_storage_project_service_account.gcs.email_address}")
    strangers = [(rtype, name, body["member"]) for rtype, name, body in _iam_members() if body["member"] not in allowed]
    assert not strangers
    assert not [key for key in RESOURCES if key[0].endswith(("_iam_binding", "_iam_policy"))]


def test_only_the_gateway_invokes_the_http_functions():
    invokers = [
        body
        for rtype, _, body in _iam_members()
        if rtype == "google_cloud_run_v2_service_iam_member" and body.get("for_each") == ref(f"{FUNCTION}.http")
    ]
    assert len(invokers) == 1
    (grant,) = invokers
    assert grant["role"] == "roles/run.invoker"
    assert grant["member"] == ref("google_service_account.gateway.member")
    assert grant["name"] == ref("each.value.name")
    config = RESOURCES[("google_api_gateway_api_config", "api")]
    backend = block(block(config, "gateway_config"), "backend_config")
    assert backend["google_service_account"] == ref("google_service_account.gateway.email")
    # No HTTP function lets unauthenticated traffic in another way (e.g. a run.invoker for all).
    assert all(
        body["role"] != "roles/run.invoker"
        or body["member"]
        in {ref("google_service_account.gateway.member"), ref("google_service_account.trigger.member")}
        for _, _, body in _iam_members()
    )


def test_api_key_is_restricted_to_the_gateway_api():
    key = RESOURCES[("google_apikeys_key", "client")]
    targets = block(key, "restrictions")["api_targets"]
    assert targets == [{"service": ref("google_api_gateway_api.api.managed_service")}]
    assert RESOURCES[("google_project_service", "gateway_managed_service")]["service"] == ref(
        "google_api_gateway_api.api.managed_service"
    )


def test_beta_provider_is_used_for_the_gateway_only():
    beta = sorted(rtype for (rtype, _), body in RESOURCES.items() if body.get("provider") == "google-beta")
    assert beta == ["google_api_gateway_api", "google_api_gateway_api_config", "google_api_gateway_gateway"]


# --- routing -----------------------------------------------------------------------------------------


def _spec_backends() -> dict[tuple[str, str], str]:
    spec = json.loads(SPEC.read_text())
    backends = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            address = operation["x-google-backend"]["address"]
            match = re.fullmatch(r"\$\{backend_([a-z0-9_]+)\}", address)
            assert match, f"{method.upper()} {path}: backend {address!r} is not ${{backend_<entry point>}}"
            backends[(method.upper(), path)] = match.group(1)
    return backends


def test_gateway_renders_the_spec_with_a_backend_per_http_entry_point():
    config = RESOURCES[("google_api_gateway_api_config", "api")]
    document = block(block(config, "openapi_documents"), "document")
    assert document["contents"] == '${base64encode(templatefile("${path.module}/openapi.json", local.backends))}'
    # local.backends maps backend_<entry point> to each HTTP function's URL.
    backends = LOCALS["backends"]
    assert f"for name, fn in {FUNCTION}.http :" in backends
    assert '"backend_${local.http_functions[name].entry_point}" => fn.service_config[0].uri' in backends


def test_every_spec_path_routes_to_an_existing_http_function():
    http_entry_points = terraform_entry_points("http")
    routes = _spec_backends()
    unrouted = {op: target for op, target in routes.items() if target not in http_entry_points}
    assert not unrouted, f"spec operations whose backend is no HTTP function in infra/: {unrouted}"
    # templatefile() fails on a variable it is not given, and an HTTP function nobody can reach
    # through the gateway is dead weight: the two sets must be equal.
    template_vars = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", SPEC.read_text()))
    assert template_vars == {f"backend_{ep}" for ep in http_entry_points}


def test_local_stack_routes_like_the_deployed_gateway():
    assert entry_points(load_routes()) == terraform_entry_points("http")


# --- source archive ----------------------------------------------------------------------------------


def test_source_archive_holds_the_deployed_code_only():
    assert LOCALS["repo_root"] == "${path.module}/.."
    files = LOCALS["source_files"]
    patterns = re.findall(r'fileset\(local\.repo_root, \\?"([^"\\]+)\\?"\)', files)
    assert patterns, files
    archived_dirs = set()
    for pattern in patterns:
        match = re.fullmatch(r"\{([a-z_,]+)\}/\*\*|([a-z_]+)/\*\*", pattern)
        assert match, f"unexpected pattern {pattern!r}"
        archived_dirs |= set((match.group(1) or match.group(2)).split(","))
    assert {"functions", "shared"} <= archived_dirs
    assert not archived_dirs & {"tests", "bench", "devstack", "infra", "examples", ".venv", ".git", "reports"}
    assert '"requirements.txt"' in files.replace('\\"', '"')
    assert "__pycache__" in files, "compiled files left by local runs must stay out (file() reads text only)"

    # Every local package functions/main.py imports is inside the archive.
    tree = ast.parse(MAIN.read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and (isinstance(node, ast.Import) or (node.module and node.level == 0))
        for alias in node.names
    }
    local_packages = {name for name in imported if (ROOT / name).is_dir()}
    assert local_packages <= archived_dirs, f"main.py imports {local_packages - archived_dirs}, not archived"

    archive = INFRA_HCL["data"][("archive_file", "source")]
    dynamic = block(archive, "dynamic")["source"]
    assert dynamic["for_each"] == ref("local.source_files")
    assert block(dynamic, "content")["filename"] == ref("source.value")


def test_every_function_deploys_the_one_archive_named_by_its_hash():
    obj = RESOURCES[("google_storage_bucket_object", "source")]
    assert "${data.archive_file.source.output_md5}" in obj["name"]
    assert obj["source"] == ref("data.archive_file.source.output_path")
    assert obj["bucket"] == ref("google_storage_bucket.source.name")
    for name, body in functions().items():
        storage = block(block(block(body, "build_config"), "source"), "storage_source")
        assert storage == {
            "bucket": ref("google_storage_bucket.source.name"),
            "object": ref("google_storage_bucket_object.source.name"),
        }, name


def test_buckets_are_private():
    for name in ("source", "inbox", "results"):
        bucket = RESOURCES[("google_storage_bucket", name)]
        assert bucket["uniform_bucket_level_access"] is True, name
        assert bucket["public_access_prevention"] == "enforced", name
    rules = RESOURCES[("google_storage_bucket", "results")]["lifecycle_rule"]
    assert any(block(rule, "condition").get("age") == ref("var.results_retention_days") for rule in rules)


def test_variables_are_described():
    undescribed = [name for name, body in INFRA_HCL["variable"].items() if not body.get("description")]
    assert INFRA_HCL["variable"] and not undescribed


# --- formatting ----------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_fmt_is_clean():
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", "infra"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
