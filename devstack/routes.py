"""The routing table, read from the OpenAPI spec that the API Gateway is deployed with.

Each operation's `x-google-backend.address` is a Terraform template variable `${backend_<entry
point>}`; Terraform fills in the deployed function's URL, the local gateway the entry point.
"""

import json
import pathlib
import re
from dataclasses import dataclass

SPEC_PATH = pathlib.Path(__file__).resolve().parent.parent / "infra" / "openapi.json"
_BACKEND = re.compile(r"^\$\{backend_([a-z0-9_]+)\}$")


@dataclass(frozen=True)
class Route:
    path: str  # as in the spec, e.g. /offer_ids/{offer_id}/stats
    pattern: re.Pattern
    methods: dict[str, str]  # HTTP method -> entry point


def load_routes(spec_path: pathlib.Path = SPEC_PATH) -> list[Route]:
    spec = json.loads(spec_path.read_text())
    routes = []
    for path, operations in spec["paths"].items():
        methods = {}
        for method, operation in operations.items():
            address = operation["x-google-backend"]["address"]
            match = _BACKEND.match(address)
            if not match:
                raise ValueError(f"{path} {method}: backend address {address!r} is not ${{backend_<entry point>}}")
            methods[method.upper()] = match.group(1)
        # Each path is written once, without the trailing slash; both spellings route (the
        # deployed gateway gets the slash variants generated in infra/gateway.tf).
        regex = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path.rstrip("/"))) + "/?\\Z"
        routes.append(Route(path, re.compile(regex), methods))
    return routes


def resolve(routes: list[Route], method: str, path: str) -> tuple[str | None, bool]:
    """(entry point, method allowed) for a request; (None, False) when no path matches."""
    for route in routes:
        if route.pattern.match(path):
            if method in route.methods:
                return route.methods[method], True
            return next(iter(route.methods.values())), False
    return None, False


def entry_points(routes: list[Route]) -> set[str]:
    return {target for route in routes for target in route.methods.values()}
