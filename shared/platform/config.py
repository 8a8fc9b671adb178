"""A configuration document in Firestore (the kill switch, `config/serving`), cached per instance.

Each instance reads the document at most once per SERVING_CONFIG_TTL_SECONDS (default 5), never
per request: a change serves everywhere within that time. Each product reads its own section
through a parser (`cached(parse)`) that returns what it understood and what it had to ignore; the
problems are logged once per read, the other fields still apply. A read that fails keeps the last
good copy (or none) and is logged: a configuration never turns a request into a 500.
"""

import os
import threading
import time
from collections.abc import Callable

from google.cloud import firestore

from shared.platform.firestore import PerClient
from shared.platform.log import log

DEFAULT_TTL = 5.0
OFF = "off"  # a setting turned off explicitly (for one whose default comes from the environment)


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


def choice(value, allowed, name: str, problems: list[str]) -> str | None:
    """A setting that must be one of `allowed` (None when absent or "off")."""
    if value is None or value == OFF:
        return None
    if isinstance(value, str) and value in allowed:
        return value
    problems.append(f"{name}: {str(value)[:60]!r} is not one of {sorted(allowed)}")
    return None


def choice_or_env(values: dict, key: str, name: str, env: str | None, allowed, problems: list[str]) -> str | None:
    """`choice` of values[key]; when the key is absent, the environment variable `env`'s value."""
    value = values.get(key) if key in values else (os.environ.get(env) or None if env else None)
    return choice(value, allowed, name, problems)


class ConfigDocument:
    """The instance's copy of one document, read again once it is `ttl` seconds old: one read per
    instance per `ttl`, by whichever request finds it stale (the others wait on that read)."""

    def __init__(self, db: firestore.Client, path: str, ttl: float | None = None, clock=time.monotonic):
        self.db = db
        self.path = path
        self.ttl = ttl if ttl is not None else ttl_from_env()
        self.clock = clock
        self.reads = 0
        self._document: dict | None = None
        self._version = 0  # bumped by every read: parsed values are kept per version
        self._expires = 0.0
        self._parsed: dict[Callable, tuple[int, object]] = {}
        self._lock = threading.Lock()

    def get(self) -> dict | None:
        """The document's fields (None when it does not exist), at most `ttl` old."""
        if self._version and self.clock() < self._expires:
            return self._document
        with self._lock:
            if not self._version or self.clock() >= self._expires:
                self._read()
                self._expires = self.clock() + self.ttl
            return self._document

    def cached(self, parse: Callable[[dict | None], tuple[object, list[str]]], fresh: bool = True):
        """parse(document)'s value, parsed once per read; `fresh=False` does no I/O (the copy held,
        or the defaults: a degraded answer while Firestore is unreachable)."""
        document = self.get() if fresh else self._document
        version = self._version
        with self._lock:
            kept = self._parsed.get(parse)
            if kept is not None and kept[0] == version:
                return kept[1]
        value, problems = parse(document)
        if problems:
            log("WARNING", "configuration: fields ignored", document=self.path, problems=problems)
        with self._lock:
            self._parsed[parse] = (version, value)
        return value

    def _read(self) -> None:
        self.reads += 1
        try:
            snapshot = self.db.document(self.path).get()
        except Exception as error:  # unreachable: keep serving as before; the request finds out itself
            log("WARNING", "configuration unreadable; keeping the last copy", exception=repr(error)[:300])
            self._version = self._version or 1
            return
        self._document = snapshot.to_dict() if snapshot.exists else None
        self._version += 1


_shared = PerClient(ConfigDocument)


def overridden(fields: tuple, override: tuple) -> tuple:
    """Each of `override`'s values where it is set (not None), else the one of `fields`."""
    return tuple(mine if mine is not None else theirs for mine, theirs in zip(override, fields, strict=True))


def for_db(db: firestore.Client, path: str) -> ConfigDocument:
    """The process-wide copy of the document at `path` for this client (one per deployed instance)."""
    return _shared.get(db, path)
