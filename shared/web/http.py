"""HTTP plumbing every entry point shares: JSON in, JSON out, 4xx that name the field, one log line."""

import functools
import json
import math
import os
import time
import urllib.parse
from collections.abc import Callable

import flask
import pydantic

from shared.platform import errors
from shared.platform.firestore import RETRY_AFTER_S, breaker, is_unavailable
from shared.platform.log import log
from shared.platform.namespace import Namespace
from shared.web import identity, limits, nesting
from shared.web.api_error import ApiError

MAX_BODY_BYTES = 64 * 1024
MAX_BODY_DEPTH = 8  # the deepest body, /predict with states as an object, nests 2
_RAW_BODY = "offer_bandits.raw_body"
_LOG_FIELDS = "offer_bandits.log_fields"
_TENANT = "offer_bandits.tenant"
_RETRY_AFTER = "offer_bandits.retry_after"
SECRET_PARAMS = {"key", "api_key", "x-api-key"}  # never written to a log line


STATUS_OF = {errors.NotFound: 404, errors.Conflict: 409, errors.Invalid: 400}


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_error(error: pydantic.ValidationError) -> ApiError:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return ApiError(400, f"{field}: {message}", field)


def json_body(request: flask.Request, required: bool) -> dict:
    """The request's JSON object body; {} when absent and not required."""
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, f"body is larger than {MAX_BODY_BYTES} bytes", "body")
    raw = request.environ.get(_RAW_BODY)
    if raw is None:  # read once: a degraded answer parses the request again
        raw = request.stream.read(MAX_BODY_BYTES + 1)  # bounded even when no Content-Length was sent
        request.environ[_RAW_BODY] = raw
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"body is larger than {MAX_BODY_BYTES} bytes", "body")
    if not raw.strip():
        if required:
            raise ApiError(400, "a JSON object body is required", "body")
        return {}
    try:
        parsed = nesting.loads(raw, MAX_BODY_DEPTH)
    except nesting.TooDeep:
        raise ApiError(400, f"body nests deeper than {MAX_BODY_DEPTH} levels", "body") from None
    except ValueError:
        raise ApiError(400, "body is not valid JSON", "body") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "body must be a JSON object", "body")
    return parsed


def query_and_body(request: flask.Request) -> dict:
    """Fields from the query string, falling back to a JSON body for those not in the query."""
    fields = json_body(request, required=False)
    fields.update(request.args.to_dict())
    return fields


def trace_fields(request: flask.Request) -> dict:
    """Ties the log line to the request's trace in Cloud Logging, when the platform sent one."""
    header = request.headers.get("X-Cloud-Trace-Context", "")
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not header or not project:
        return {}
    return {"logging.googleapis.com/trace": f"projects/{project}/traces/{header.split('/')[0]}"}


def logged_url(request: flask.Request) -> str:
    """The path and query as logged: without the API key, however the client spelled its name."""
    pairs = [(k, v) for k, v in request.args.items(multi=True) if k.lower() not in SECRET_PARAMS]
    return request.path + ("?" + urllib.parse.urlencode(pairs) if pairs else "")


def log_fields(request: flask.Request, **fields) -> None:
    """Fields for this request's log line (the decision made, the reward recorded): the log-based
    metrics of infra/monitoring.tf read them. Plain values only, never a secret."""
    request.environ.setdefault(_LOG_FIELDS, {}).update(fields)


def tenant(request: flask.Request) -> Namespace:
    """The namespace of the tenant the request is made as (checked by `endpoint` before the handler)."""
    return request.environ[_TENANT]


def degraded_mode() -> bool:
    """DEGRADED_MODE=on: while Firestore is unreachable, endpoints that have a fallback answer
    without it (nothing recorded) rather than 503."""
    return os.environ.get("DEGRADED_MODE", "off").strip().lower() in ("on", "1", "true", "yes")


def unavailable_error() -> ApiError:
    return ApiError(503, "the datastore is unreachable; retry later")


def _answer(
    handler: Callable, request: flask.Request, fallback: Callable | None, identified: bool
) -> tuple[dict, int, dict]:
    """(body, status, extra log fields) of one request, every error mapped to its status."""
    try:
        if identified:
            space = request.environ[_TENANT] = identity.tenant_of(request)
            wait = limits.from_env().wait_for(space.tenant)
            if wait:
                request.environ[_RETRY_AFTER] = max(1, math.ceil(wait))  # the header says what the message does
                raise ApiError(
                    429, f"this client's requests are over its allowance; retry in {wait:.1f} s", "x-api-key"
                )
        return _attempt(handler, request, fallback)
    except ApiError as error:
        return error.body(), error.status, {}
    except errors.DomainError as error:
        api_error = ApiError(STATUS_OF[type(error)], error.message, error.field)
        return api_error.body(), api_error.status, {}
    except pydantic.ValidationError as error:
        api_error = validation_error(error)
        return api_error.body(), api_error.status, {}
    except Exception:  # a bug, never the client's input
        log("ERROR", "unhandled error", function=handler.__name__, path=request.path, exc_info=True)
        return {"error": "internal error"}, 500, {}


def _attempt(handler: Callable, request: flask.Request, fallback: Callable | None) -> tuple[dict, int, dict]:
    if not breaker.is_open():
        try:
            body, status = handler(request)
        except errors.DomainError:
            breaker.succeeded()  # Firestore answered
            raise
        except Exception as error:
            if not is_unavailable(error):
                raise
            breaker.failed()
            log("WARNING", "Firestore unreachable", function=handler.__name__, exception=repr(error)[:300])
        else:
            breaker.succeeded()
            return body, status, {}
    if fallback is not None and degraded_mode():
        body, status = fallback(request)
        return body, status, {"degraded": True}
    raise unavailable_error()


def endpoint(*methods: str, degraded: Callable | None = None, identified: bool = False) -> Callable:
    """Wraps a handler `(request) -> (body, status)` as a Cloud Functions HTTP entry point.

    With `identified`, the request is made as the tenant of its API key (shared/web/identity.py;
    `tenant(request)`), 401 without a valid key: every entry point a client calls says so (the
    operators' admin function does not: the platform verifies its caller). Firestore unreachable
    (shared/platform/firestore.py) is a 503 with Retry-After; with DEGRADED_MODE on,
    `degraded(request) -> (body, status)` answers instead.
    """

    def wrap(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def entry(request: flask.Request) -> flask.Response:
            started = time.perf_counter()
            headers = {}
            extra = {}
            if request.method not in methods:
                allowed = ", ".join(methods)
                status, body = 405, {"error": f"method {request.method} not allowed; use {allowed}", "field": "method"}
                headers["Allow"] = ", ".join(methods)
            else:
                body, status, extra = _answer(handler, request, degraded, identified)
            if status in (429, 503):
                headers["Retry-After"] = str(request.environ.get(_RETRY_AFTER, RETRY_AFTER_S))
            log(
                "WARNING" if status >= 400 else "INFO",
                f"{request.method} {request.path} {status}",
                function=handler.__name__,
                **trace_fields(request),
                tenant=request.environ[_TENANT].tenant if _TENANT in request.environ else None,
                **extra,
                **(request.environ.get(_LOG_FIELDS, {}) if status < 400 else {}),
                httpRequest={
                    "requestMethod": request.method,
                    "requestUrl": logged_url(request),
                    "status": status,
                    "latency": f"{time.perf_counter() - started:.6f}s",
                },
                error=body.get("error") if status >= 400 else None,
            )
            return json_response(body, status, headers)

        return entry

    return wrap
