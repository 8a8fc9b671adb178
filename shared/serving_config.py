"""The kill switch: one Firestore document that changes how decisions are served, without a redeploy.

`config/serving` (every field optional; a missing document, field or null means the default):

    {"cpa":      {"sampler": "greedy", "offer_id": 42, "shadow": "epsilon"},
     "customer": {"policy": "static", "shadow": "linear-ts"}}

- cpa.sampler: every /sample decision uses this sampler, whatever the request asks for;
- cpa.offer_id: /sample answers this offer whenever it is among the candidates (probability 1);
  other clicks are served as usual. It wins over cpa.sampler;
- customer.policy: /predict and /predict-v2 use this agent instead of AGENT_POLICY;
- cpa.shadow / customer.shadow: the shadow policy logged beside each decision (shared/shadow.py);
  default CPA_SHADOW_SAMPLER / AGENT_SHADOW_POLICY from the environment, "off" for none.

Each instance reads the document at most once per SERVING_CONFIG_TTL_SECONDS (default 5), never
per request: a change serves everywhere within that time. A field that is not valid (an unknown
sampler, an offer id that is not an integer) is logged and ignored, the other fields still apply;
a document that is not an object, or a read that fails, keeps the defaults (or, after a failed
read, the last good copy) and is logged: the config never turns a request into a 500.
"""

import dataclasses
import os
import threading
import time
from collections.abc import Callable

from google.cloud import firestore

from shared.cpa.policies import SAMPLERS
from shared.customer import agent
from shared.log import log

DOCUMENT = "config/serving"
DEFAULT_TTL = 5.0
OFF = "off"
CONFIG_PREFIX = "config:"  # served_by of a decision the config forced


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    cpa_sampler: str | None = None
    cpa_offer_id: int | None = None
    cpa_shadow: str | None = None
    agent_policy: str | None = None
    agent_shadow: str | None = None

    def cpa_plan(self, sampler: str, candidates: list[int]) -> tuple[str, int | None, str]:
        """(sampler to run, index of a forced offer or None, served_by) for one /sample request."""
        if self.cpa_offer_id is not None and self.cpa_offer_id in candidates:
            return sampler, candidates.index(self.cpa_offer_id), f"{CONFIG_PREFIX}offer"
        if self.cpa_sampler is not None:
            return self.cpa_sampler, None, f"{CONFIG_PREFIX}{self.cpa_sampler}"
        return sampler, None, sampler

    def agent_plan(self, policy: str) -> tuple[str, str]:
        """(agent policy to run, served_by) for one /predict request."""
        if self.agent_policy is not None:
            return self.agent_policy, f"{CONFIG_PREFIX}{self.agent_policy}"
        return policy, policy


def _choice(value, allowed, name: str, problems: list[str]) -> str | None:
    if value is None or value == OFF:
        return None
    if isinstance(value, str) and value in allowed:
        return value
    problems.append(f"{name}: {str(value)[:60]!r} is not one of {sorted(allowed)}")
    return None


def _shadow(section: dict, name: str, env: str, allowed, problems: list[str]) -> str | None:
    value = section.get("shadow") if "shadow" in section else os.environ.get(env) or None
    return _choice(value, allowed, name, problems)


def parse(document: dict | None) -> tuple[ServingConfig, list[str]]:
    """The config a document asks for, and what was wrong with it (ignored fields). Pure."""
    problems: list[str] = []
    if document is None:
        document = {}
    if not isinstance(document, dict):
        return parse({})[0], ["the document is not an object"]
    sections = {}
    for name in ("cpa", "customer"):
        section = document.get(name)
        if section is not None and not isinstance(section, dict):
            problems.append(f"{name}: not an object")
            section = None
        sections[name] = section or {}
    cpa, customer = sections["cpa"], sections["customer"]
    offer_id = cpa.get("offer_id")
    if offer_id is not None and (isinstance(offer_id, bool) or not isinstance(offer_id, int) or offer_id < 0):
        problems.append(f"cpa.offer_id: {str(offer_id)[:60]!r} is not a non-negative integer")
        offer_id = None
    config = ServingConfig(
        cpa_sampler=_choice(cpa.get("sampler"), SAMPLERS, "cpa.sampler", problems),
        cpa_offer_id=offer_id,
        cpa_shadow=_shadow(cpa, "cpa.shadow", "CPA_SHADOW_SAMPLER", SAMPLERS, problems),
        agent_policy=_choice(customer.get("policy"), agent.AGENT_VERSIONS, "customer.policy", problems),
        agent_shadow=_shadow(customer, "customer.shadow", "AGENT_SHADOW_POLICY", agent.AGENT_VERSIONS, problems),
    )
    return config, problems


def ttl_from_env() -> float:
    value = float(os.environ.get("SERVING_CONFIG_TTL_SECONDS", DEFAULT_TTL))
    if not value > 0:
        raise ValueError("SERVING_CONFIG_TTL_SECONDS must be a positive number of seconds")
    return value


class ConfigCache:
    """The instance's copy of the document, read again once it is `ttl` seconds old: one read
    per instance per `ttl`, by whichever request finds it stale (the others wait on that read,
    which happens at most once per period)."""

    def __init__(self, db: firestore.Client, ttl: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.db = db
        self.ttl = ttl if ttl is not None else ttl_from_env()
        self.clock = clock
        self.reads = 0
        self._config: ServingConfig | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def get(self) -> ServingConfig:
        if self._config is not None and self.clock() < self._expires:
            return self._config
        with self._lock:
            if self._config is None or self.clock() >= self._expires:
                self._config = self._read(self._config)
                self._expires = self.clock() + self.ttl
            return self._config

    def peek(self) -> ServingConfig:
        """The copy held, without I/O (degraded answers: Firestore is unreachable); defaults if none."""
        return self._config or parse(None)[0]

    def _read(self, previous: ServingConfig | None) -> ServingConfig:
        self.reads += 1
        try:
            snapshot = self.db.document(DOCUMENT).get()
        except Exception as error:  # unreachable: keep serving as before; the request finds out itself
            log("WARNING", "serving config unreadable; keeping the last copy", exception=repr(error)[:300])
            return previous or parse(None)[0]
        config, problems = parse(snapshot.to_dict() if snapshot.exists else None)
        if problems:
            log("WARNING", "serving config: fields ignored", document=DOCUMENT, problems=problems)
        return config


_shared: dict[int, ConfigCache] = {}
_shared_lock = threading.Lock()


def for_db(db: firestore.Client) -> ConfigCache:
    """The process-wide cache of this client (one per deployed instance)."""
    with _shared_lock:
        cache = _shared.get(id(db))
        if cache is None or cache.db is not db:
            cache = _shared[id(db)] = ConfigCache(db)
        return cache
