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
            body = json.dumps({"error": f"no route for {environ.get('PATH_INFO')}"}).encode()
            start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return self.apps[target](environ, start_response)


app = Gateway()
