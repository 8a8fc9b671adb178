"""The HTTP plumbing every entry point shares: JSON errors, methods, one JSON log line per request."""

import json

import flask
import pytest

from shared.http import ApiError, endpoint, query_and_body

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
