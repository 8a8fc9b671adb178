"""Request models of the CPA API (`/sample`, `/feedback`), validated the same from a query or a JSON body."""

import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from shared.cpa import context
from shared.cpa.policies import DEFAULT_SAMPLER, SAMPLERS, SamplerParams
from shared.cpa.settlement import EVENT_ID_PATTERN

MAX_ID = 2**63 - 1
MAX_OFFERS = 100
# A conversion's payout in cents, at most $100,000: its square (1e14) adds to the offer's reward_sq,
# an int64 in Firestore, and stays below 2^53, where floats are still exact integers.
MAX_REWARD_CENTS = 10**7
MAX_PARAM = 1e6  # epsilon_decay, ucb_c and the Thompson prior: far beyond any useful value
# The Thompson prior's least weight: below it a Beta's mass sits within a denormal of 0 or 1, and
# its exact propensity (policies.thompson_propensities) is no longer a number.
MIN_PRIOR = 1e-3
MAX_COMPARED = 20  # offers in one /offers/compare: each is 1 + its shards' reads, exact
_INTEGER = re.compile(r"^\s*\d+\s*$")
# A whole list of ids, checked in one match (not one per id) for the query string's usual form
_ID_LIST = re.compile(r"\s*\d+\s*(?:,\s*\d+\s*)*")


def parse_id(value):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("must be a non-negative integer")
    if isinstance(value, str):
        if not _INTEGER.match(value):
            raise ValueError("must be a non-negative integer")
        value = int(value)
    if not 0 <= value <= MAX_ID:
        raise ValueError("must be a non-negative integer below 2^63")
    return value


def _offer_ids(value):
    if isinstance(value, str):
        value = value.split(",") if value.strip() else []
    if not isinstance(value, list):
        raise ValueError("must be a comma-separated list of integers")
    if not value:
        raise ValueError("must name at least one offer")
    if len(value) > MAX_OFFERS:
        raise ValueError(f"must name at most {MAX_OFFERS} offers")
    ids = _well_formed_ids(value)
    if ids is None:  # something is wrong with an id: the first one at fault names it
        ids = [parse_id(item) for item in value]
    if len(set(ids)) != len(ids):
        raise ValueError("must not repeat an offer")
    return ids


def _well_formed_ids(items: list) -> list[int] | None:
    """The ids of a list of digit strings within range, converted without a Python step per id
    (at 100 candidates per-id parsing was a visible part of /sample); None when any item is not one."""
    if not all(isinstance(item, str) for item in items) or not _ID_LIST.fullmatch(",".join(items)):
        return None
    ids = list(map(int, items))
    return ids if max(ids) <= MAX_ID else None


def _number(value):
    """A finite number from JSON or a query string; never a bool, NaN or infinity. An integer too
    large for a float (a 400-digit one) is out of range, not an error."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("must be a number")
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("must be a number of at most 64 characters")
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a number") from None
    except OverflowError:
        raise ValueError("is out of range") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _payouts(value):
    """Contractual payouts in cents per conversion, one per candidate: "250,,400" in a query or
    [250, null, 400] in JSON, an empty item or null where the payout is unknown (learned then)."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        raise ValueError("must be a comma-separated list of payouts in cents")
    if len(value) > MAX_OFFERS:
        raise ValueError(f"must give at most {MAX_OFFERS} payouts")
    payouts = []
    for item in value:
        if item is None or (isinstance(item, str) and not item.strip()):
            payouts.append(None)
            continue
        payout = _number(item)
        if not 0 < payout <= MAX_REWARD_CENTS:
            raise ValueError(f"a payout must be above 0 and at most {MAX_REWARD_CENTS} cents (empty: unknown)")
        payouts.append(payout)
    return payouts


Id = Annotated[int, BeforeValidator(parse_id)]
EventId = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
    StringConstraints(pattern=EVENT_ID_PATTERN),
]
Number = Annotated[float, BeforeValidator(_number)]


class SampleRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    click_id: Id
    offer_ids: Annotated[list[int], BeforeValidator(_offer_ids)]
    sampler: Literal[tuple(SAMPLERS)] = DEFAULT_SAMPLER
    epsilon: Annotated[Number, Field(ge=0, le=1)] = 0.1
    epsilon_decay: Annotated[Number, Field(ge=0, le=MAX_PARAM)] = 0.0
    ucb_c: Annotated[Number, Field(ge=0, le=MAX_PARAM)] = 1.0
    thompson_a: Annotated[Number, Field(ge=MIN_PRIOR, le=MAX_PARAM)] | None = None
    thompson_b: Annotated[Number, Field(ge=MIN_PRIOR, le=MAX_PARAM)] | None = None
    # Known payouts (cents per conversion) aligned with offer_ids, None where unknown; the policy
    # uses them instead of the learned mean payout.
    payouts: Annotated[list[float | None], BeforeValidator(_payouts)] | None = None
    # The exploration floor (policies.SamplerParams.floor); None: the service's default.
    floor: Annotated[Number, Field(ge=0, le=1)] | None = None
    # The click's context (shared/cpa/context.py): stored on the click, learned from by `contextual`.
    geo: Annotated[str, BeforeValidator(context.parse_geo)] | None = None
    device: Annotated[str, BeforeValidator(context.parse_device)] | None = None
    os: Annotated[str, BeforeValidator(context.parse_os)] | None = None
    source: Annotated[str, BeforeValidator(context.parse_source)] | None = None

    @field_validator("payouts")
    @classmethod
    def _one_payout_per_offer(cls, payouts, info: ValidationInfo):
        offers = info.data.get("offer_ids")
        if payouts is not None and offers is not None and len(payouts) != len(offers):
            raise ValueError(f"must give {len(offers)} payouts, one per offer in offer_ids (empty: unknown)")
        return payouts

    def params(self) -> SamplerParams:
        prior_given = self.thompson_a is not None or self.thompson_b is not None
        given = {}
        if self.payouts is not None:
            given["payouts"] = tuple(math.nan if payout is None else payout for payout in self.payouts)
        if self.floor is not None:
            given["floor"] = self.floor
        return SamplerParams(
            epsilon=self.epsilon,
            epsilon_decay=self.epsilon_decay,
            ucb_c=self.ucb_c,
            thompson_a=(self.thompson_a or 1.0) if prior_given else None,
            thompson_b=(self.thompson_b or 1.0) if prior_given else None,
            **given,
        )

    def logged(self) -> dict:
        """What the click document records of the request's policy inputs beyond the sampler
        (offline evaluation replays the policy with them): payouts, floor and context, when given."""
        given = {name: getattr(self, name) for name in ("payouts", "floor") if getattr(self, name) is not None}
        click_context = self.context()
        return given | ({"context": click_context} if click_context else {})

    def context(self) -> dict[str, str]:
        """The context fields the click came with (none: {})."""
        return context.of({feature: getattr(self, feature) for feature in context.FEATURES})

    @property
    def sampler_given(self) -> bool:
        """Whether the request named its sampler (else the service chooses: shared/cpa/caps.py)."""
        return "sampler" in self.model_fields_set


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    offer_ids: Annotated[list[int], BeforeValidator(_offer_ids)]

    @field_validator("offer_ids")
    @classmethod
    def _at_most_compared(cls, offers):
        if len(offers) > MAX_COMPARED:
            raise ValueError(f"must name at most {MAX_COMPARED} offers to compare")
        return offers


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    click_id: Id
    reward: Annotated[Number, Field(ge=0, le=MAX_REWARD_CENTS)]
    # One of several rewards of the click (a registration, then a deposit): summed per click.
    event_id: EventId | None = None

    @property
    def reward_value(self) -> int | float:
        """Cents as an int when whole, so JSON answers read 250 rather than 250.0."""
        return int(self.reward) if self.reward.is_integer() else self.reward
