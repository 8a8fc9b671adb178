"""infra/ read offline: its HCL parsed, and the parts computed from variables alone evaluated by Terraform.

Providers cannot be downloaded here, so `terraform validate` and `plan` cannot run. Instead the HCL
is parsed with python-hcl2 (which resources exist, how they are wired), and the locals that need no
resource, data source or module are copied into a provider-less configuration beside variables.tf,
where `terraform console` computes them for any set of variables.
"""

import base64
import functools
import json
import pathlib
import re
import shutil
import subprocess
import tempfile

import hcl2
from hcl2 import SerializationOptions

ROOT = pathlib.Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)


def parse(path: pathlib.Path) -> dict:
    return hcl2.loads(path.read_text(), serialization_options=OPTIONS)


def _load_infra() -> dict:
    merged = {"resource": {}, "data": {}, "locals": {}, "variable": {}, "module": {}}
    for path in sorted(INFRA.glob("*.tf")):
        parsed = parse(path)
        for kind in ("resource", "data"):
            for entry in parsed.get(kind, []):
                for rtype, named in entry.items():
                    for name, body in named.items():
                        assert (rtype, name) not in merged[kind], f"{kind} {rtype}.{name} declared twice"
                        merged[kind][(rtype, name)] = body
        for kind in ("locals", "variable", "module"):
            for entry in parsed.get(kind, []):
                assert not entry.keys() & merged[kind].keys(), f"{kind} {entry.keys()} declared twice"
                merged[kind].update(entry)
    return merged


HCL = _load_infra()
RESOURCES = HCL["resource"]


def resources(rtype: str) -> dict:
    return {name: body for (kind, name), body in RESOURCES.items() if kind == rtype}


def _is_expression(value: str) -> bool:
    """One `${...}` spanning the whole string: python-hcl2's form of a bare expression."""
    depth = 0
    for index, char in enumerate(value):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "}" and depth == 0:
            return value.startswith("${") and index == len(value) - 1
    return False


def hcl(value) -> str:
    """A python-hcl2 value written back as an HCL expression."""
    if isinstance(value, str):
        return value[2:-1] if _is_expression(value) else json.dumps(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dict):
        return "{\n" + "\n".join(f"{json.dumps(k)} = {hcl(v)}" for k, v in value.items()) + "\n}"
    if isinstance(value, list):
        return "[" + ", ".join(hcl(v) for v in value) + "]"
    return str(value)


def console(directory: pathlib.Path, expression: str, variables: dict | None = None):
    """The value of an expression in a provider-less configuration, computed by Terraform."""
    args = ["terraform", "console", "-no-color"]
    for name, value in (variables or {}).items():
        args += ["-var", f"{name}={value if isinstance(value, str) else hcl(value)}"]
    result = subprocess.run(
        args,
        cwd=directory,
        input=f"base64encode(jsonencode({expression}))\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={"TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/local/bin:/usr/bin:/bin", "CHECKPOINT_DISABLE": "1"},
    )
    # console exits 0 after some errors (a failed variable validation, a failed local) and prints a
    # value computed around them: any error is a failure here.
    if result.returncode != 0 or "Error:" in result.stderr:
        raise RuntimeError(result.stdout + result.stderr)
    return json.loads(base64.b64decode(result.stdout.strip().strip('"')))


def pure_locals() -> dict:
    """The locals whose value needs no resource, data source or module: only var, local, path."""
    pure = dict(HCL["locals"])
    changed = True
    while changed:
        changed = False
        for name, value in list(pure.items()):
            text = json.dumps(value)
            used = set(re.findall(r"\blocal\.([a-z0-9_]+)", text))
            if re.search(r"\b(google_[a-z0-9_]+|data|module)\.[a-z0-9_]+", text) or used - pure.keys():
                del pure[name]
                changed = True
    return pure


@functools.cache
def workdir(extra_locals: tuple[tuple[str, str], ...] = ()) -> pathlib.Path:
    """A provider-less configuration: variables.tf, every pure local, and extra (name, HCL) locals."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="tf-console-"))
    shutil.copy(INFRA / "variables.tf", directory)
    values = {k: hcl(v) for k, v in pure_locals().items()} | {"repo_root": json.dumps(str(ROOT))}
    values |= dict(extra_locals)  # path.module differs in the copy, hence repo_root
    (directory / "locals.tf").write_text("locals {\n" + "\n".join(f"{k} = {v}" for k, v in values.items()) + "\n}\n")
    return directory


def evaluate(variables: dict, names: list[str] | None = None) -> dict:
    """The pure locals named (all by default) as Terraform computes them with these variables."""
    names = names if names is not None else list(pure_locals())
    return console(workdir(), "{" + ", ".join(f"{name} = local.{name}" for name in names) + "}", variables)
