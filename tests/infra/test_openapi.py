"""infra/openapi.json declares every path completely, and the small validator that
tests/stack/test_openapi.py checks answers with finds what is wrong."""

from tests.openapi_check import SPEC, check, violations


def test_the_spec_declares_each_path_once_with_parameters_bodies_responses_and_the_key_header():
    assert all(not path.endswith("/") for path in SPEC["paths"])
    assert SPEC["securityDefinitions"]["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"200", "405", "503"} <= set(responses), f"{method} {path}"
            assert all("schema" in response for response in responses.values()), f"{method} {path}"
            assert "Retry-After" in responses["503"]["headers"]
            if method in ("post", "put") or "{" in path or path in ("/sample", "/offers/compare"):
                assert operation["parameters"], f"{method} {path} declares no parameters"


def test_the_small_validator_finds_what_is_wrong():
    assert violations({"error": "x", "field": None}, {"$ref": "#/definitions/Error"}) == []
    assert violations({"field": 3}, {"$ref": "#/definitions/Error"}) == ["$: missing error", "$.field: 3 is not string"]
    answer = {"click_id": 1, "offer_id": 2, "sampler": "nope", "probability": 1.5, "recorded": True}
    assert len(violations(answer, {"$ref": "#/definitions/SampleAnswer"})) == 2
    assert check("GET", "/sample", 409, {"error": "x"}) != []
