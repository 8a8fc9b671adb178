"""Checks an answer against infra/openapi.json: the status is declared for the operation and the
body matches its schema. A small validator for the subset of Swagger 2.0 schemas the spec uses
(type, x-nullable, required, properties, additionalProperties, items, enum, bounds, lengths,
pattern, $ref), so the suite needs no JSON Schema package."""

import json
import re

from devstack.routes import SPEC_PATH, load_routes

SPEC = json.loads(SPEC_PATH.read_text())
ROUTES = load_routes()
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def violations(value, schema: dict, where: str = "$") -> list[str]:
    if "$ref" in schema:
        schema = SPEC["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    if value is None:
        return [] if schema.get("x-nullable") else [f"{where}: null is not allowed"]
    kind = schema.get("type")
    if kind and not _TYPES[kind](value):
        return [f"{where}: {value!r} is not {kind}"]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and (
            value <= schema["minimum"] if schema.get("exclusiveMinimum") else value < schema["minimum"]
        ):
            found.append(f"{where}: {value} below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{where}: {value} above {schema['maximum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            found.append(f"{where}: length {len(value)} out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            found.append(f"{where}: {len(value)} items out of bounds")
        for index, item in enumerate(value):
            found += violations(item, schema.get("items", {}), f"{where}[{index}]")
    if isinstance(value, dict):
        found += [f"{where}: missing {name}" for name in schema.get("required", []) if name not in value]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                found += violations(item, properties[name], f"{where}.{name}")
            elif extra is False:
                found.append(f"{where}: unexpected {name}")
            elif isinstance(extra, dict):
                found += violations(item, extra, f"{where}.{name}")
    return found


def operation(method: str, path: str) -> dict:
    for route in ROUTES:
        if route.pattern.match(path):
            return SPEC["paths"][route.path].get(method.lower()) or {}
    raise AssertionError(f"no path in the spec matches {path}")


def check(method: str, path: str, status: int, body) -> list[str]:
    """Everything wrong with this answer against the spec; [] when it conforms."""
    found = operation(method, path)
    if not found:  # a method the path does not have: the function's own 405
        if status != 405:
            return [f"{method} {path}: a method the spec does not declare answered {status}, not 405"]
        return violations(body, {"$ref": "#/definitions/Error"}, f"{method} {path} 405")
    declared = found["responses"]
    if str(status) not in declared:
        return [f"{method} {path}: status {status} is not declared ({sorted(declared)})"]
    return violations(body, declared[str(status)].get("schema", {}), f"{method} {path} {status}")
