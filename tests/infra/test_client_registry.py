"""The client registry (var.clients, infra/clients.tf) yields for each client exactly its own credentials,
its own bucket folder and its own tenant, and nothing of another client's; evaluated by Terraform offline.

The API key strings exist only after apply, so the keys are stood in for by sensitive strings fed to
the very expressions of infra/ that hash them (API_KEY_TENANTS).
"""

import hashlib
import json
import re
import shutil

import pytest

from tests.infra.terraform import HCL, INFRA, RESOURCES, console, evaluate, hcl, parse, workdir

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")

PROJECT = "test-project"
# Two clients and a third whose name starts with the second's: company_b must not reach company_bb/.
REGISTRY = {
    "company_a": {
        "api_keys": ["primary", "next"],
        "requests_per_minute": 600,
        "products_file": "examples/company_A_products.csv",
    },
    "company_b": {
        "tenant": "tenant_b",
        "batch_members": ["group:uploads@company-b.example"],
        "requests_per_minute": 1200,
    },
    "company_bb": {
        "api_keys": [],
        "batch_members": ["user:ops@company-bb.example"],
        "rules_file": "tests/infra/company_bb.json",
    },
}
TENANTS = {"company_a": "company_a", "company_b": "tenant_b", "company_bb": "company_bb"}
VARIABLES = {"project_id": PROJECT, "clients": REGISTRY}
BUCKETS = {"inbox": f"{PROJECT}-offer-bandits-inbox", "results": f"{PROJECT}-offer-bandits-results"}
CONDITION = re.compile(r'resource\.name\.startsWith\("([^"]+)"\)')


def registry(variables=VARIABLES) -> dict:
    names = ["client_keys", "client_access", "batch_tenants", "tenant_requests_per_minute", "functions"]
    names += ["quota_projects", "quota_default", "quota_overrides", "consumer_projects", "missing_client_files"]
    return evaluate(variables, names)


def _offline_api_keys() -> tuple[tuple[str, str], ...]:
    """Locals that stand in for the keys: each key string is `key-of-<client> <slot>`, sensitive as the
    provider marks it; api_key_tenants and each function's environment are infra/'s own expressions."""
    keys = '{ for id, key in local.client_keys : id => { key_string = sensitive("key-of-${id}") } }'
    tenants = hcl(HCL["locals"]["api_key_tenants"])
    assert "google_apikeys_key.client[id].key_string" in tenants
    environment = hcl(
        RESOURCES[("google_cloudfunctions2_function", "function")]["service_config"][0]["environment_variables"]
    )
    assert environment.count("each.value") == 2
    return (
        ("offline_keys", keys),
        ("api_key_tenants", tenants.replace("google_apikeys_key.client", "local.offline_keys")),
        (
            "environments",
            "{ for name, fn in local.functions : name => " + environment.replace("each.value", "fn") + " }",
        ),
    )


def environments(variables=VARIABLES) -> dict:
    return console(workdir(_offline_api_keys()), "local.environments", variables)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_each_client_gets_exactly_its_own_key_slots_for_this_api_only():
    keys = registry()["client_keys"]
    assert keys == {
        f"{client} {slot}": {
            "client": client,
            "slot": slot,
            "tenant": TENANTS[client],
            "key_id": f"offer-bandits-{client.replace('_', '-')}-{slot}",
            "project": PROJECT,
        }
        for client, slots in {"company_a": ["primary", "next"], "company_b": ["primary"]}.items()
        for slot in slots
    }
    key = RESOURCES[("google_apikeys_key", "client")]
    assert (key["for_each"], key["project"], key["name"]) == (
        "${local.client_keys}",
        "${each.value.project}",
        "${each.value.key_id}",
    )
    assert key["restrictions"][0]["api_targets"] == [{"service": "${google_api_gateway_api.api.managed_service}"}]
    assert [name for (rtype, name) in RESOURCES if rtype == "google_apikeys_key"] == ["client"]


def test_api_key_tenants_maps_each_key_hash_to_its_own_tenant_on_every_http_function_only():
    expected = {
        sha256("key-of-company_a primary"): "company_a",
        sha256("key-of-company_a next"): "company_a",
        sha256("key-of-company_b primary"): "tenant_b",
    }
    functions = registry()["functions"]
    for name, env in environments().items():
        if functions[name]["inbox_trigger"]:
            assert "API_KEY_TENANTS" not in env, name
            assert json.loads(env["BATCH_TENANTS"]) == TENANTS, name
        else:
            assert json.loads(env["API_KEY_TENANTS"]) == expected, name
            assert "BATCH_TENANTS" not in env, name
        assert not [value for value in env.values() if "key-of-" in value], name  # never the key itself
    assert {name for name, fn in functions.items() if fn["api_key_tenants"]} == {
        name for name, fn in functions.items() if not fn["inbox_trigger"]
    }


def test_each_client_has_its_own_tenant_and_allowance():
    values = registry()
    assert values["batch_tenants"] == TENANTS
    assert values["tenant_requests_per_minute"] == {"company_a": 600, "tenant_b": 1200, "company_bb": 60000}
    for name, fn in values["functions"].items():
        if fn["invoker"] == "gateway":
            assert json.loads(fn["env"]["TENANT_REQUESTS_PER_MINUTE"]) == values["tenant_requests_per_minute"], name


def test_each_batch_client_reaches_its_own_prefix_only_and_no_prefix_of_another():
    access = registry()["client_access"]
    batch = {client: entry["batch_members"] for client, entry in REGISTRY.items() if entry.get("batch_members")}
    assert {(a["client"], a["bucket"]) for a in access.values()} == {(c, b) for c in batch for b in BUCKETS}
    assert {a["bucket"]: a["role"] for a in access.values()} == {
        "inbox": "roles/storage.objectCreator",
        "results": "roles/storage.objectViewer",
    }
    for entry in access.values():
        assert entry["members"] == batch[entry["client"]]
        match = CONDITION.fullmatch(entry["condition"])  # one startsWith, nothing or-ed to it
        assert match and match[1] == f"projects/_/buckets/{BUCKETS[entry['bucket']]}/objects/{entry['client']}/"
        for other in [*REGISTRY, "company_c"]:
            for bucket in BUCKETS.values():
                name = f"projects/_/buckets/{bucket}/objects/{other}/2022-05-01.csv"
                own = other == entry["client"] and bucket == BUCKETS[entry["bucket"]]
                assert name.startswith(match[1]) == own, (entry["client"], name)
        assert not f"projects/_/buckets/{BUCKETS[entry['bucket']]}/objects/{entry['client']}.csv".startswith(match[1])
    binding = RESOURCES[("google_storage_bucket_iam_binding", "client")]
    assert binding["for_each"] == "${local.client_access}" and binding["members"] == "${each.value.members}"
    assert binding["condition"][0]["expression"] == "${each.value.condition}"
    # Conditions on object names hold only where object ACLs cannot grant around them.
    for body in [b for (rtype, _), b in RESOURCES.items() if rtype == "google_storage_bucket"]:
        assert body["uniform_bucket_level_access"] is True and body["public_access_prevention"] == "enforced"


def test_rotation_adds_and_removes_one_key_leaving_the_others_as_they_were():
    before = registry()["client_keys"]
    rotating = REGISTRY | {"company_b": REGISTRY["company_b"] | {"api_keys": ["primary", "next"]}}
    during = registry(VARIABLES | {"clients": rotating})["client_keys"]
    assert during.keys() - before.keys() == {"company_b next"} and before.items() <= during.items()
    after = registry(VARIABLES | {"clients": rotating | {"company_b": rotating["company_b"] | {"api_keys": ["next"]}}})
    assert during.keys() - after["client_keys"].keys() == {"company_b primary"}
    assert {id: key for id, key in during.items() if id != "company_b primary"} == after["client_keys"]


def test_the_gateway_quota_is_per_project_so_a_client_of_its_own_project_gets_its_own():
    shared = registry()
    assert shared["quota_projects"] == {PROJECT: 600 + 1200}  # company_bb has no key
    assert (shared["quota_default"], shared["quota_overrides"], shared["consumer_projects"]) == (1800, {}, [])

    own = REGISTRY | {"company_a": REGISTRY["company_a"] | {"consumer_project": "company-a-calls"}}
    values = registry(VARIABLES | {"clients": own})
    assert {key["project"] for id, key in values["client_keys"].items() if id.startswith("company_a ")} == {
        "company-a-calls"
    }
    assert values["quota_projects"] == {"company-a-calls": 600, PROJECT: 1200}
    assert values["quota_default"] == 1200 and values["quota_overrides"] == {"company-a-calls": 600}
    assert values["consumer_projects"] == ["company-a-calls"]

    assert HCL["module"]["api_spec"]["requests_per_minute"] == "${local.quota_default}"
    override = RESOURCES[("google_service_usage_consumer_quota_override", "client")]
    assert (
        override["for_each"] == "${local.quota_overrides}" and override["override_value"] == "${tostring(each.value)}"
    )
    consumer = RESOURCES[("google_project_service", "consumer")]
    assert consumer["for_each"] == "${local.consumer_projects}"
    assert consumer["service"] == "${google_api_gateway_api.api.managed_service}"


def test_the_rendered_spec_charges_every_operation_against_the_per_project_limit():
    module = INFRA / HCL["module"]["api_spec"]["source"]
    spec = json.loads((INFRA / "openapi.json").read_text())
    backends = {
        name: "https://x.example"
        for name in re.findall(r"\$\{(backend_[a-z_0-9]+)\}", (INFRA / "openapi.json").read_text())
    }
    base = {"template": str(INFRA / "openapi.json"), "backends": backends}
    rendered = json.loads(console(module, "local.document", base | {"requests_per_minute": "1800"}))
    assert rendered["x-google-management"]["quota"]["limits"] == [
        {"name": "requests-per-minute", "metric": "requests", "unit": "1/min/{project}", "values": {"STANDARD": 1800}}
    ]
    assert [m["name"] for m in rendered["x-google-management"]["metrics"]] == ["requests"]
    operations = [op for item in rendered["paths"].values() for op in item.values() if "operationId" in op]
    assert len(operations) == 2 * sum(
        1 for item in spec["paths"].values() for op in item.values() if "operationId" in op
    )
    assert all(op["x-google-quota"] == {"metricCosts": {"requests": 1}} for op in operations)
    assert rendered["securityDefinitions"] == spec["securityDefinitions"]  # the one api_key scheme
    # No client, no quota: the spec is the template's.
    plain = json.loads(console(module, "local.document", base))
    assert "x-google-management" not in plain
    assert not [op for item in plain["paths"].values() for op in item.values() if "x-google-quota" in op]


def test_rules_files_are_shipped_where_score_upload_reads_them_and_missing_files_stop_the_plan():
    archive = evaluate(VARIABLES, ["source_files"])["source_files"]
    assert archive["clients/company_bb.json"] == "tests/infra/company_bb.json"
    assert archive["clients/company_b.json"] == "clients/company_b.json"
    assert registry()["missing_client_files"] == []
    missing = REGISTRY | {
        "company_x": {"batch_members": ["group:x@example.com"]},
        "company_y": {"products_file": "examples/none.csv"},
        "company_z": {},  # API only: no rules needed
    }
    assert registry(VARIABLES | {"clients": missing})["missing_client_files"] == [
        "clients/company_x.json",
        "examples/none.csv",
    ]
    source = RESOURCES[("google_storage_bucket_object", "source")]
    assert source["lifecycle"][0]["precondition"][0]["condition"] == "${length(local.missing_client_files) == 0}"


def test_an_empty_registry_deploys_no_key_no_grant_and_no_quota():
    values = registry({"project_id": PROJECT})
    assert values["client_keys"] == values["client_access"] == values["batch_tenants"] == {}
    assert values["quota_default"] is None and values["quota_overrides"] == {}
    assert json.loads(values["functions"]["score-upload"]["env"]["BATCH_TENANTS"]) == {}


@pytest.mark.parametrize(
    "clients, message",
    [
        ({"company_b": {"batch_members": ["allUsers"]}}, "never public"),
        ({"Company B/": {}}, "inbox folder names"),
        ({"company_b": {}, "company-b": {}}, "API key IDs"),
        ({"company_a": {}, "company_b": {"tenant": "company_a"}}, "same tenant"),
        ({"company_a": {"tenant": "Company A"}}, "a tenant is"),
        ({"company_a": {"api_keys": ["primary", "next", "third"]}}, "at most two"),
        ({"company_a": {"api_keys": ["primary", "primary"]}}, "at most two distinct"),
        ({"company_a": {"requests_per_minute": 0}}, "requests_per_minute"),
        ({"company_a": {"consumer_project": "Not A Project"}}, "consumer_project"),
    ],
)
def test_the_plan_refuses_a_registry_that_would_mix_or_expose_clients(clients, message):
    with pytest.raises(RuntimeError, match=message):
        registry(VARIABLES | {"clients": clients})


def test_the_old_batch_clients_variable_stops_the_plan_rather_than_dropping_access():
    with pytest.raises(RuntimeError, match="batch_clients is now part of clients"):
        registry(VARIABLES | {"batch_clients": {"company_b": ["group:uploads@company-b.example"]}})


def test_no_key_string_leaves_terraform_but_hashed_or_in_the_sensitive_output():
    uses = [
        (path.name, line.strip())
        for path in sorted(INFRA.rglob("*.tf"))
        for line in path.read_text().splitlines()
        if "key_string" in line and not line.strip().startswith("#")
    ]
    assert uses == [
        (
            "clients.tf",
            "for id, key in local.client_keys : "
            "nonsensitive(sha256(google_apikeys_key.client[id].key_string)) => key.tenant",
        ),
        (
            "outputs.tf",
            'for slot in entry.api_keys : slot => google_apikeys_key.client["${client} ${slot}"].key_string',
        ),
    ]
    outputs = {name: body for entry in parse(INFRA / "outputs.tf")["output"] for name, body in entry.items()}
    assert outputs["client_api_keys"]["sensitive"] is True
    assert [name for name, body in outputs.items() if "apikeys" in json.dumps(body)] == ["client_api_keys"]
