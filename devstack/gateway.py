"""Every HTTP function behind one local URL, dispatched by the OpenAPI spec's routing table.

Each function is the WSGI app functions-framework builds for its entry point, exactly as deployed;
a path the spec routes to a function but with another method goes to that function, which answers
405 itself.
"""

import json
import pathlib

import functions_framework

from devstack.routes import entry_points, load_routes, resolve

SOURCE = str(pathlib.Path(__file__).resolve().parent.parent / "functions" / "main.py")


class Gateway:
    def __init__(self):
        self.routes = load_routes()
        self.apps = {
            target: functions_framework.create_app(target, SOURCE, "http")
            for target in sorted(entry_points(self.routes))
        }

    def __call__(self, environ, start_response):
        target, _ = resolve(self.routes, environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        if target is None:
            return _json_error(start_response, "404 Not Found", f"no route for {_path(environ)}", "path")
        return _errors_as_json(self.apps[target], environ, start_response)


_FIELD_OF = {404: "path", 405: "method", 413: "body", 414: "path"}


def _path(environ) -> str:
    return environ.get("PATH_INFO", "")[:200].encode("unicode_escape").decode("ascii")


def _json_error(start_response, status: str, message: str, field: str) -> list[bytes]:
    body = json.dumps({"error": message, "field": field}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _errors_as_json(app, environ, start_response):
    """The function's answer; an error page the framework itself wrote (Flask's HTML 404 for a path
    its routes refuse, such as one with a newline in it) becomes a JSON error like the others."""
    answer = {}

    def capture(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, headers
        return lambda data: None  # write() is not used by Flask

    body = app(environ, capture)
    status, headers = answer["status"], answer["headers"]
    code = int(status.split()[0])
    content_type = next((value for name, value in headers if name.lower() == "content-type"), "")
    if code < 400 or content_type.startswith("application/json"):
        start_response(status, headers)
        return body
    if hasattr(body, "close"):
        body.close()
    reason = status.split(" ", 1)[1] if " " in status else status
    return _json_error(
        start_response,
        f"{code} {reason.title()}",
        f"{reason.lower()}: {environ['REQUEST_METHOD']} {_path(environ)}",
        _FIELD_OF.get(code, "request"),
    )


app = Gateway()
