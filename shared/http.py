"""HTTP plumbing every entry point shares: JSON in, JSON out, 4xx that name the field, one log line."""

import functools
import json
import os
import time
from collections.abc import Callable

import flask
import pydantic

from shared import errors
from shared.log import log

MAX_BODY_BYTES = 64 * 1024


STATUS_OF = {errors.NotFound: 404, errors.Conflict: 409, errors.Invalid: 400}


class ApiError(Exception):
    """A client-visible error: the status, a message, and the field at fault when there is one."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def body(self) -> dict:
        body = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


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
    raw = request.stream.read(MAX_BODY_BYTES + 1)  # bounded even when no Content-Length was sent
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"body is larger than {MAX_BODY_BYTES} bytes", "body")
    if not raw.strip():
        if required:
            raise ApiError(400, "a JSON object body is required", "body")
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
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


def endpoint(*methods: str) -> Callable:
    """Wraps a handler `(request) -> (body, status)` as a Cloud Functions HTTP entry point."""

    def wrap(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def entry(request: flask.Request) -> flask.Response:
            started = time.perf_counter()
            headers = {}
            if request.method not in methods:
                status, body = 405, {"error": f"method {request.method} not allowed; use {', '.join(methods)}"}
                headers["Allow"] = ", ".join(methods)
            else:
                try:
                    body, status = handler(request)
                except ApiError as error:
                    status, body = error.status, error.body()
                except errors.DomainError as error:
                    api_error = ApiError(STATUS_OF[type(error)], error.message, error.field)
                    status, body = api_error.status, api_error.body()
                except pydantic.ValidationError as error:
                    api_error = validation_error(error)
                    status, body = api_error.status, api_error.body()
                except Exception:  # a bug or an outage, never the client's input
                    log("ERROR", "unhandled error", function=handler.__name__, path=request.path, exc_info=True)
                    status, body = 500, {"error": "internal error"}
            log(
                "WARNING" if status >= 400 else "INFO",
                f"{request.method} {request.path} {status}",
                function=handler.__name__,
                **trace_fields(request),
                httpRequest={
                    "requestMethod": request.method,
                    "requestUrl": request.full_path.rstrip("?"),
                    "status": status,
                    "latency": f"{time.perf_counter() - started:.6f}s",
                },
                error=body.get("error") if status >= 400 else None,
            )
            return json_response(body, status, headers)

        return entry

    return wrap
