"""Request models of the CPA API (`/sample`, `/feedback`), validated the same from a query or a JSON body."""

import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from shared.cpa.policies import DEFAULT_SAMPLER, SAMPLERS, SamplerParams
from shared.settlement import EVENT_ID_PATTERN

MAX_ID = 2**63 - 1
MAX_OFFERS = 100
# A conversion's payout in cents, at most $100,000: its square (1e14) adds to the offer's reward_sq,
# an int64 in Firestore, and stays below 2^53, where floats are still exact integers.
MAX_REWARD_CENTS = 10**7
MAX_PARAM = 1e6  # epsilon_decay, ucb_c and the Thompson prior: far beyond any useful value
# The Thompson prior's least weight: below it a Beta's mass sits within a denormal of 0 or 1, and
# its exact propensity (policies.thompson_propensities) is no longer a number.
MIN_PRIOR = 1e-3
_INTEGER = re.compile(r"^\s*\d+\s*$")


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
    ids = [parse_id(item) for item in value]
    if len(set(ids)) != len(ids):
        raise ValueError("must not repeat an offer")
    return ids


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

    def params(self) -> SamplerParams:
        prior_given = self.thompson_a is not None or self.thompson_b is not None
        return SamplerParams(
            epsilon=self.epsilon,
            epsilon_decay=self.epsilon_decay,
            ucb_c=self.ucb_c,
            thompson_a=(self.thompson_a or 1.0) if prior_given else None,
            thompson_b=(self.thompson_b or 1.0) if prior_given else None,
        )


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
