"""The CPA request models' offer_ids: a well-formed list is read in one match, and anything else
gets the message of the first id at fault, as when every id was parsed on its own. Pure."""

import pytest
from pydantic import ValidationError

from shared.cpa.models import MAX_ID, SampleRequest


def offer_ids(value):
    return SampleRequest.model_validate({"click_id": 1, "offer_ids": value}).offer_ids


def message(value) -> str:
    with pytest.raises(ValidationError) as caught:
        offer_ids(value)
    (error,) = caught.value.errors()
    assert error["loc"] == ("offer_ids",)
    return error["msg"]


def test_a_well_formed_list_is_read_whole():
    ids = list(range(100_000, 100_100))
    assert offer_ids(",".join(map(str, ids))) == ids
    assert offer_ids(" 3 , 4 ") == [3, 4]
    assert offer_ids(f"0,{MAX_ID}") == [0, MAX_ID]
    assert offer_ids([1, 2, "3"]) == [1, 2, 3]  # JSON: numbers, or strings of digits


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,2,x", "must be a non-negative integer"),
        ("1,,2", "must be a non-negative integer"),
        ("1,-2", "must be a non-negative integer"),
        ([True], "must be a non-negative integer"),
        (f"1,{MAX_ID + 1}", "must be a non-negative integer below 2^63"),
        ("7,8,7", "must not repeat an offer"),
        ("", "must name at least one offer"),
        (",".join(map(str, range(101))), "must name at most 100 offers"),
    ],
)
def test_a_list_with_an_id_at_fault_says_what_is_wrong(value, expected):
    assert message(value) == f"Value error, {expected}"
