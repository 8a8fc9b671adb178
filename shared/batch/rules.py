"""Each batch client's eligibility rules, kept as data: `clients/<client>.json`, read at run time.

    {"client": "company_b",
     "exclusions": [{"when": {"region": ["Europa"]}, "offers": ["OFFER_4"], "reason": "..."},
                    {"when": {"age_above": 65}, "offers": ["OFFER_1"]}]}

An exclusion removes its offers from a customer that meets every condition of its `when`:
`region` / `gender` (lists, spelled as the API accepts them), `age_above` / `age_below` (strict).
Files are validated strictly: an unknown key or value is an error, never silently ignored.
"""

import json
import math
import os
import pathlib
import re
from dataclasses import dataclass

from shared.customer.models import parse_gender, parse_region

CLIENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
OFFER_COLUMN = re.compile(r"^offer_[0-9]{1,4}$", re.IGNORECASE)
DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[2] / "clients"
_RULE_KEYS = {"when", "offers", "reason"}
_CONDITIONS = {"region", "gender", "age_above", "age_below"}


class RulesError(ValueError):
    """The client has no usable rules file; the whole upload is rejected with this reason."""


@dataclass(frozen=True)
class Exclusion:
    offers: frozenset[str]
    regions: frozenset[str] | None = None
    genders: frozenset[str] | None = None
    age_above: float | None = None
    age_below: float | None = None

    def applies(self, age: float, gender: str, region: str) -> bool:
        return (
            (self.regions is None or region in self.regions)
            and (self.genders is None or gender in self.genders)
            and (self.age_above is None or age > self.age_above)
            and (self.age_below is None or age < self.age_below)
        )


@dataclass(frozen=True)
class ClientRules:
    client: str
    exclusions: tuple[Exclusion, ...]

    def eligible(self, offered: list[str], age: float, gender: str, region: str) -> list[str]:
        excluded = set()
        for exclusion in self.exclusions:
            if exclusion.applies(age, gender, region):
                excluded |= exclusion.offers
        return [offer for offer in offered if offer not in excluded]


def rules_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("CLIENT_RULES_DIR") or DEFAULT_DIR)


def load_rules(client: str) -> ClientRules:
    return rules_from(rules_document(client), client)


def rules_from(document, client: str) -> ClientRules:
    """The rules in a document read by rules_document (a batch plan keeps the document it read)."""
    try:
        return parse_rules(document, client)
    except ValueError as error:
        raise RulesError(f"clients/{client}.json: {error}") from None


def rules_document(client: str):
    """The client's rules file as data; RulesError when there is none or it is not JSON."""
    if not CLIENT_NAME.match(client):
        raise RulesError(f"{client[:70]!r} is not a client name (lower-case letters, digits, _ or -)")
    path = rules_dir() / f"{client}.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"client {client!r} has no eligibility rules (clients/{client}.json)") from None
    except ValueError as error:
        raise RulesError(f"clients/{client}.json is not valid JSON: {error}") from None
    rules_from(document, client)  # a file that does not parse fails the upload here, not in every task
    return document


def parse_rules(document, client: str) -> ClientRules:
    if not isinstance(document, dict) or set(document) - {"client", "description", "exclusions"}:
        raise ValueError("must be an object with client, exclusions and optionally description")
    if document.get("client") != client:
        raise ValueError(f"client must be {client!r}")
    exclusions = document.get("exclusions")
    if not isinstance(exclusions, list):
        raise ValueError("exclusions must be a list")
    return ClientRules(client, tuple(_exclusion(rule, index) for index, rule in enumerate(exclusions)))


def _exclusion(rule, index: int) -> Exclusion:
    where = f"exclusions[{index}]"
    if not isinstance(rule, dict) or set(rule) - _RULE_KEYS or not {"when", "offers"} <= set(rule):
        raise ValueError(f"{where} must be an object with when, offers and optionally reason")
    when, offers = rule["when"], rule["offers"]
    if not isinstance(when, dict) or not when or set(when) - _CONDITIONS:
        raise ValueError(f"{where}.when must hold one or more of {', '.join(sorted(_CONDITIONS))}")
    if (
        not isinstance(offers, list)
        or not offers
        or not all(isinstance(o, str) and OFFER_COLUMN.match(o) for o in offers)
    ):
        raise ValueError(f"{where}.offers must be a non-empty list of OFFER_<n> names")
    if not isinstance(rule.get("reason", ""), str):
        raise ValueError(f"{where}.reason must be text")
    return Exclusion(
        offers=frozenset(offer.upper() for offer in offers),
        regions=_names(when, "region", parse_region, where),
        genders=_names(when, "gender", parse_gender, where),
        age_above=_age(when, "age_above", where),
        age_below=_age(when, "age_below", where),
    )


def _names(when: dict, key: str, parse, where: str) -> frozenset[str] | None:
    if key not in when:
        return None
    values = when[key]
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}.when.{key} must be a non-empty list")
    try:
        return frozenset(parse(value) for value in values)
    except ValueError as error:
        raise ValueError(f"{where}.when.{key}: {error}") from None


def _age(when: dict, key: str, where: str) -> float | None:
    if key not in when:
        return None
    value = when[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}.when.{key} must be a number")
    return float(value)
