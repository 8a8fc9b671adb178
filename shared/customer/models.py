"""Requests of the customer-offers API (`/predict`, `/predict-v2`, `/rewards`) and the customer
fields the batch CSVs share with them.

`states` and `offers` arrive as JSON objects or as strings holding a dict written as JSON text or
with Python literals (True/False, either quote style). Strings are parsed with `ast.literal_eval`
after size and nesting limits, never `eval`: a literal cannot run code.
"""

import ast
import datetime
import hashlib
import math
import re
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from shared.customer.segments import GENDERS, REGIONS
from shared.web import nesting

MAX_LITERAL_CHARS = 4096
MAX_NESTING = 4
MAX_SYNTAX_DEPTH = 32  # syntax-tree levels: literal_eval recurses over them
MAX_OFFERS = 50
MAX_AGE = 130
# Offer names become Firestore field names (the agent's counters): a letter first, so never a
# reserved `__name__`, and no dots, which would be read as a field path.
OFFER_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
OFFER_NAME = re.compile(OFFER_NAME_PATTERN)
_GENDER_ALIASES = {"f": "F", "female": "F", "w": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}
_REGION_ALIASES = {region.lower(): region for region in REGIONS} | {"europe": "Europa", "america": "Americas"}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def parse_dict_literal(value: Any) -> dict:
    """A dict from a JSON object, JSON text, or a Python dict literal; ValueError otherwise.

    A string is bounded in size first, then parsed, and the nesting measured on what the parser
    built (never by counting brackets, which brackets inside strings defeat)."""
    if isinstance(value, dict):
        parsed = value
    elif not isinstance(value, str):
        raise ValueError("must be an object or a string holding one")
    elif len(value) > MAX_LITERAL_CHARS:
        raise ValueError(f"must be at most {MAX_LITERAL_CHARS} characters")
    else:
        parsed = _parse_text(value.strip())
    if not isinstance(parsed, dict):
        raise ValueError("must hold a dict")
    if nesting.json_depth(parsed) > MAX_NESTING:
        raise ValueError(f"must not nest deeper than {MAX_NESTING} levels")
    return parsed


def _parse_text(text: str) -> Any:
    try:
        return nesting.loads(text, MAX_NESTING)
    except nesting.TooDeep:
        raise ValueError(f"must not nest deeper than {MAX_NESTING} levels") from None
    except ValueError:
        pass  # not JSON: maybe a Python literal
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ValueError("is not a dict written as JSON or as a Python literal") from None
    if nesting.literal_depth(tree) > MAX_NESTING or nesting.node_depth(tree) > MAX_SYNTAX_DEPTH:
        raise ValueError(f"must not nest deeper than {MAX_NESTING} levels")
    try:
        return ast.literal_eval(tree)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("is not a dict written as JSON or as a Python literal") from None


def parse_age(value: Any) -> float:
    """Years, range-checked before any conversion: a 400-digit integer is out of range, not an error."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 32:
            raise ValueError("must be a number between 0 and 130")
        try:
            value = float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    if not 0 <= value <= MAX_AGE:
        raise ValueError(f"must be between 0 and {MAX_AGE}")
    return float(value)


def parse_gender(value: Any) -> str:
    gender = _GENDER_ALIASES.get(str(value).strip().lower()) if isinstance(value, str) else None
    if gender is None:
        raise ValueError(f"must be one of {', '.join(GENDERS)}")
    return gender


def parse_region(value: Any) -> str:
    region = _REGION_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
    if region is None:
        raise ValueError(f"must be one of {', '.join(REGIONS)}")
    return region


def parse_flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be true or false")


class States(BaseModel):
    """The customer's state; fields other than age, gender and region are kept as sent."""

    model_config = ConfigDict(extra="allow")

    age: Annotated[float, BeforeValidator(parse_age)]
    gender: Annotated[str, BeforeValidator(parse_gender)]
    region: Annotated[str, BeforeValidator(parse_region)]


def _states(value: Any) -> Any:
    parsed = parse_dict_literal(value)
    for key, item in parsed.items():
        if not isinstance(key, str) or not isinstance(item, (str, int, float, bool, type(None))):
            raise ValueError("must map names to plain values")
    return parsed


def _offers(value: Any) -> dict[str, bool]:
    parsed = parse_dict_literal(value)
    if len(parsed) > MAX_OFFERS:
        raise ValueError(f"must list at most {MAX_OFFERS} offers")
    flags = {}
    for offer, flag in parsed.items():
        if not isinstance(offer, str) or not OFFER_NAME.fullmatch(offer):
            raise ValueError(f"offer name {str(offer)[:70]!r} must be a letter then up to 63 letters, digits, _ or -")
        try:
            flags[offer] = parse_flag(flag)
        except ValueError:
            raise ValueError(f"{offer} must be true or false") from None
    if not any(flags.values()):
        raise ValueError("no eligible offer: flag at least one offer true")
    return flags


def _timestamp(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 date-time")
    text = value.strip()
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        try:
            datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
    return text


CustomerId = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
]
Timestamp = Annotated[str, BeforeValidator(_timestamp)]
EpisodeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,128}$")]
RequestId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    customer_id: CustomerId
    timestamp: Timestamp
    states: Annotated[States, BeforeValidator(_states)]
    offers: Annotated[dict[str, bool], BeforeValidator(_offers)]
    request_id: RequestId | None = None

    @property
    def eligible(self) -> list[str]:
        return [offer for offer, flag in self.offers.items() if flag]

    @property
    def episode_id(self) -> str:
        """The request's identity, so a retry finds the episode its first attempt created: the
        request id when given, else the customer and timestamp. A hash, so ids spread over the
        key range."""
        identity = f"request\x1f{self.request_id}" if self.request_id else f"timestamp\x1f{self.timestamp}"
        return hashlib.sha256(f"{self.customer_id}\x1f{identity}".encode()).hexdigest()[:32]


class RewardRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    customer_id: CustomerId
    timestamp: Timestamp
    accepted: Annotated[bool, BeforeValidator(parse_flag)] = Field(
        validation_alias=AliasChoices(
            "accepted_one_of_the_three_offers", "accepted_one_of the_three_offers", "accepted"
        ),
    )
    episode_id: EpisodeId | None = None
    accepted_offer: Annotated[str, StringConstraints(pattern=OFFER_NAME_PATTERN)] | None = None
