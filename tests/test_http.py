"""The HTTP plumbing every entry point shares: JSON errors, methods, one JSON log line per request,
503 when Firestore is unreachable, degraded answers."""

import json

import flask
import pytest
from google.api_core import exceptions

from shared.platform import firestore as firestore_client
from shared.web import http
from shared.web.http import ApiError, endpoint, query_and_body

app = flask.Flask(__name__)


@endpoint("GET")
def echo(request):
    fields = query_and_body(request)
    if "boom" in fields:
        raise RuntimeError("a bug")
    if "missing" in fields:
        raise ApiError(404, "nothing here", "missing")
    return fields, 200


def call(method="GET", **kwargs):
    with app.test_request_context("/echo", method=method, **kwargs):
        return echo(flask.request)


def test_query_fields_win_over_body_fields():
    response = call(query_string={"a": "1"}, json={"a": "2", "b": "3"})
    assert response.status_code == 200 and response.get_json() == {"a": "1", "b": "3"}


@pytest.mark.parametrize(
    "kwargs, status",
    [
        ({"data": "{oops", "content_type": "application/json"}, 400),
        ({"data": "[1]", "content_type": "application/json"}, 400),
        ({"data": "x" * 70_000, "content_type": "application/json"}, 413),
    ],
)
def test_bad_bodies_are_4xx_naming_the_body(kwargs, status):
    response = call(**kwargs)
    assert response.status_code == status and response.get_json()["field"] == "body"


def test_api_errors_keep_their_status_and_field():
    response = call(query_string={"missing": "1"})
    assert response.status_code == 404 and response.get_json() == {"error": "nothing here", "field": "missing"}


def test_a_bug_is_a_500_without_details_and_a_logged_traceback(capsys):
    response = call(query_string={"boom": "1"})
    assert response.status_code == 500 and response.get_json() == {"error": "internal error"}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(line["severity"] == "ERROR" and "RuntimeError: a bug" in line["exception"] for line in lines)


def test_wrong_method_is_405_with_allow_header():
    response = call(method="DELETE")
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


def test_each_request_logs_one_json_line_with_severity_and_trace(capsys, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    call(query_string={"a": "1"}, headers={"X-Cloud-Trace-Context": "abc123/1;o=1"})
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["severity"] == "INFO" and line["httpRequest"]["status"] == 200
    assert line["logging.googleapis.com/trace"] == "projects/p1/traces/abc123"


# --- Firestore unreachable, degraded answers, the breaker, secrets in logs -------------------------


@pytest.fixture
def fresh_breaker(monkeypatch):
    breaker = firestore_client.Breaker(threshold=3, open_s=60)
    monkeypatch.setattr(http, "breaker", breaker)
    return breaker


def _raises(error):
    def handler(request):
        raise error

    handler.__name__ = "outage"
    return handler


def _begin_failed_then_rollback_failed() -> Exception:
    """What the SDK raises when a transaction's begin is unreachable: its rollback's ValueError."""
    try:
        try:
            raise exceptions.RetryError("Timeout of 2.0s exceeded", exceptions.ServiceUnavailable("refused"))
        except exceptions.RetryError:
            raise ValueError("The transaction has no transaction ID, so it cannot be rolled back.")  # noqa: B904
    except ValueError as error:
        return error


@pytest.mark.parametrize(
    "error",
    [
        exceptions.ServiceUnavailable("failed to connect to all addresses"),
        exceptions.DeadlineExceeded("deadline"),
        exceptions.RetryError("Timeout of 2.0s exceeded", None),
        _begin_failed_then_rollback_failed(),
    ],
    ids=["unavailable", "deadline", "retry-error", "transaction-begin"],
)
def test_firestore_unreachable_is_a_503_with_retry_after_never_a_500(fresh_breaker, error, capsys):
    with app.test_request_context("/outage"):
        response = endpoint("GET")(_raises(error))(flask.request)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["error"] and response.get_json().get("field") is None
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["message"] for line in lines] == ["Firestore unreachable", "GET /outage 503"]


def test_a_bug_chained_to_nothing_unreachable_stays_a_500(fresh_breaker):
    with app.test_request_context("/outage"):
        response = endpoint("GET")(_raises(ValueError("a bug")))(flask.request)
    assert response.status_code == 500


def test_degraded_mode_answers_with_the_fallback_and_logs_it(fresh_breaker, monkeypatch, capsys):
    fallback = endpoint("GET", degraded=lambda request: ({"offer": 1, "recorded": False}, 200))
    outage = fallback(_raises(exceptions.ServiceUnavailable("down")))
    with app.test_request_context("/outage"):
        assert outage(flask.request).status_code == 503  # off unless configured
    monkeypatch.setenv("DEGRADED_MODE", "on")
    capsys.readouterr()
    with app.test_request_context("/outage"):
        response = outage(flask.request)
    assert response.status_code == 200 and response.get_json() == {"offer": 1, "recorded": False}
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["degraded"] is True and line["httpRequest"]["status"] == 200


def test_the_breaker_opens_after_three_unreachable_requests_and_skips_firestore(fresh_breaker):
    calls = []

    def handler(request):
        calls.append(1)
        raise exceptions.ServiceUnavailable("down")

    wrapped = endpoint("GET")(handler)
    for _ in range(5):
        with app.test_request_context("/outage"):
            assert wrapped(flask.request).status_code == 503
    assert len(calls) == 3  # the last two were answered without trying
    fresh_breaker._open_until = 0.0  # the open period is over: the next request tries again
    with app.test_request_context("/outage"):
        wrapped(flask.request)
    assert len(calls) == 4


def test_the_api_key_never_reaches_the_log_line(capsys):
    call(query_string={"a": "1", "key": "SECRET1", "api_key": "SECRET2", "X-API-Key": "SECRET3"})
    out = capsys.readouterr().out
    assert "SECRET" not in out
    (line,) = [json.loads(text) for text in out.splitlines()]
    assert line["httpRequest"]["requestUrl"] == "/echo?a=1"


def test_a_body_nested_deeper_than_the_bound_is_400_naming_the_body_even_with_brackets_in_strings():
    shallow = {"a": "]]]]]]]]]]]]", "b": [[[1]]]}
    assert call(json=shallow).status_code == 200
    deep = {"a": "]]]]]]]]]]]]", "b": [[[[[[[[[[1]]]]]]]]]]}
    response = call(json=deep)
    assert response.status_code == 400 and response.get_json()["field"] == "body"
    very_deep = call(data="[" * 20_000 + "]" * 20_000, content_type="application/json")
    assert very_deep.status_code == 400 and very_deep.get_json()["field"] == "body"
