"""Configuration documents in Firestore (the kill switch: a tenant's `config/serving` under the
operators' `config/operator`), cached per instance.

Each instance reads them at most once per SERVING_CONFIG_TTL_SECONDS (default 5), all in one call,
never per request: a change serves everywhere within that time, and an unreachable Firestore costs a
request at most one call's deadline. Each product declares its section of the kill switch (a
`Section`: its settings and each field's rule) and reads both documents through the section's
`parse_both`, the tenant's settings with every field the operators set replaced by theirs; it
returns what it understood and what it had to ignore: the problems are logged once per read, the
other fields still apply. A read that fails keeps the last good copy (or none) and is logged: a
configuration never turns a request into a 500.
"""

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from google.cloud import firestore

from shared.platform import holdout
from shared.platform.firestore import PerClient
from shared.platform.log import log

DEFAULT_TTL = 5.0
OFF = "off"  # a setting turned off explicitly (for one whose default comes from the environment)
# The kill switch, one pair of documents for every product (each reads its own section of them):
SERVING_DOCUMENT = "config/serving"  # in the tenant's namespace
OPERATOR_DOCUMENT = "config/operator"  # at the root: the operators' override for every tenant
FORCED_PREFIX = "config:"  # served_by of a decision the configuration forced


def ttl_from_env() -> float:
    value = float(os.environ.get("SERVING_CONFIG_TTL_SECONDS", DEFAULT_TTL))
    if not value > 0:
        raise ValueError("SERVING_CONFIG_TTL_SECONDS must be a positive number of seconds")
    return value


def section(document, name: str, problems: list[str]) -> dict:
    """The named object of a configuration document ({} when absent); a problem noted otherwise."""
    if document is None:
        return {}
    if not isinstance(document, dict):
        problems.append("the document is not an object")
        return {}
    found = document.get(name)
    if found is not None and not isinstance(found, dict):
        problems.append(f"{name}: not an object")
        return {}
    return found or {}


@dataclass(frozen=True)
class Choice:
    """A setting that must be one of `allowed`, or "off"; absent, the value of the environment
    variable `env` (tenants' documents only: the operators' override sets nothing it does not name)."""

    allowed: Collection[str]
    env: str | None = None


def serving_rules(policy: str, policies: Collection[str], shadow_env: str) -> dict[str, Choice | Callable]:
    """The rules every product's serving section shares: the policy forced on every request (`policy`,
    one of `policies`), the shadow logged beside the live one (default: `shadow_env`'s value) and the
    holdout's share."""
    return {
        policy: Choice(policies),
        "shadow": Choice(policies, env=shadow_env),
        "holdout": holdout.parse_share,
    }


@dataclass(frozen=True)
class Section:
    """One product's section of the kill switch documents, as the dataclass `settings` (every field
    None by default), field by field by `rules`: a Choice, or a function (value, "<section>.<field>",
    problems) -> the field's value. An invalid field is None, and noted in the problems; the others
    still apply."""

    name: str
    settings: type
    rules: dict[str, Choice | Callable]

    def parse(self, document, env_defaults: bool = True) -> tuple:
        """The settings a document asks for, and what was wrong with it (ignored fields)."""
        problems: list[str] = []
        values = section(document, self.name, problems)
        parsed = {}
        for key, rule in self.rules.items():
            where = f"{self.name}.{key}"
            if isinstance(rule, Choice):
                env = rule.env if env_defaults else None
                value = values.get(key) if key in values else (os.environ.get(env) or None if env else None)
                parsed[key] = _choice(value, rule.allowed, where, problems)
            else:
                parsed[key] = rule(values.get(key), where, problems)
        return self.settings(**parsed), problems

    def parse_both(self, operator_document, tenant_document) -> tuple:
        """What serves a tenant: its document under the operators' (read together, the operators'
        first), whose fields win where they are set; the operators' take nothing from the environment."""
        operator, operator_problems = self.parse(operator_document, env_defaults=False)
        tenant, tenant_problems = self.parse(tenant_document)
        return over(operator, tenant), operator_problems + tenant_problems


def over(operator, tenant):
    """The tenant's settings (a dataclass) with every field the operators set (not None) replaced by theirs."""
    chosen = {field.name: getattr(operator, field.name) for field in dataclasses.fields(operator)}
    return dataclasses.replace(tenant, **{name: value for name, value in chosen.items() if value is not None})


def _choice(value, allowed, name: str, problems: list[str]) -> str | None:
    if value is None or value == OFF:
        return None
    if isinstance(value, str) and value in allowed:
        return value
    problems.append(f"{name}: {str(value)[:60]!r} is not one of {sorted(allowed)}")
    return None


class ConfigDocuments:
    """The instance's copy of some documents, read again (together) once it is `ttl` seconds old: one
    read per instance per `ttl`, by whichever request finds it stale (the others wait on that read)."""

    def __init__(self, db: firestore.Client, paths: tuple[str, ...], ttl: float | None = None, clock=time.monotonic):
        self.db = db
        self.paths = tuple(paths)
        self.ttl = ttl if ttl is not None else ttl_from_env()
        self.clock = clock
        self.reads = 0
        self._documents: tuple[dict | None, ...] = (None,) * len(self.paths)
        self._version = 0  # bumped by every read: parsed values are kept per version
        self._expires = 0.0
        self._parsed: dict[Callable, tuple[int, object]] = {}
        self._lock = threading.Lock()

    def get(self) -> tuple[dict | None, ...]:
        """Each document's fields (None where it does not exist), at most `ttl` old."""
        if self._version and self.clock() < self._expires:
            return self._documents
        with self._lock:
            if not self._version or self.clock() >= self._expires:
                self._read()
                self._expires = self.clock() + self.ttl
            return self._documents

    def cached(self, parse: Callable[..., tuple[object, list[str]]], fresh: bool = True):
        """parse(*documents)'s value, parsed once per read; `fresh=False` does no I/O (the copy held,
        or the defaults: a degraded answer while Firestore is unreachable)."""
        documents = self.get() if fresh else self._documents
        version = self._version
        with self._lock:
            kept = self._parsed.get(parse)
            if kept is not None and kept[0] == version:
                return kept[1]
        value, problems = parse(*documents)
        if problems:
            log("WARNING", "configuration: fields ignored", documents=list(self.paths), problems=problems)
        with self._lock:
            self._parsed[parse] = (version, value)
        return value

    def _read(self) -> None:
        self.reads += 1
        try:
            found = {s.reference.path: s for s in self.db.get_all([self.db.document(path) for path in self.paths])}
        except Exception as error:  # unreachable: keep serving as before; the request finds out itself
            log("WARNING", "configuration unreadable; keeping the last copy", exception=repr(error)[:300])
            self._version = self._version or 1
            return
        self._documents = tuple(
            found[path].to_dict() if path in found and found[path].exists else None for path in self.paths
        )
        self._version += 1


_shared = PerClient(lambda db, paths: ConfigDocuments(db, paths))


def for_db(db: firestore.Client, *paths: str) -> ConfigDocuments:
    """The process-wide copy of the documents at `paths` for this client (one per deployed instance)."""
    return _shared.get(db, paths)
