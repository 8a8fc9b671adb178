"""Parsing of the customer-offers requests: string dicts, eligibility, limits. Pure."""

import pydantic
import pytest

from shared.customer.models import PredictRequest, RewardRequest, parse_dict_literal

STATES = '{"age": 54, "gender": "F", "client-since": "2015-12-18", "region": "Asia", "last_offer": "OFFER_5"}'
OFFERS = '{"OFFER_1": True, "OFFER_2": False, "OFFER_3": True, "OFFER_4": True}'


def predict(**fields):
    body = {"customer_id": "153734", "timestamp": "2022-03-12", "states": STATES, "offers": OFFERS} | fields
    return PredictRequest.model_validate(body)


def error_field(**fields) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        predict(**fields)
    return ".".join(str(part) for part in caught.value.errors()[0]["loc"])


@pytest.mark.parametrize(
    "text",
    [
        "{'OFFER_1': True, 'OFFER_2': False}",
        '{"OFFER_1": True, "OFFER_2": False}',
        '{"OFFER_1": true, "OFFER_2": false}',
        "  {'OFFER_1': True, \"OFFER_2\": False}  ",
    ],
)
def test_string_dicts_parse_as_json_or_python_literals(text):
    assert parse_dict_literal(text) == {"OFFER_1": True, "OFFER_2": False}


def test_objects_pass_through():
    request = predict(states={"age": 30, "gender": "m", "region": " europa "}, offers={"OFFER_9": True})
    assert (request.states.age, request.states.gender, request.states.region) == (30.0, "M", "Europa")
    assert request.eligible == ["OFFER_9"]


def test_the_case_study_strings_parse_and_only_true_offers_are_eligible():
    request = predict()
    assert request.states.region == "Asia" and request.states.model_dump()["client-since"] == "2015-12-18"
    assert request.eligible == ["OFFER_1", "OFFER_3", "OFFER_4"]


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch /tmp/pwned')",
        "{'a': (lambda: 1)()}",
        "{'a': open('/etc/passwd').read()}",
        "[1, 2, 3]",
        "{" * 200 + "}" * 200,
        "{'a': '" + "x" * 5000 + "'}",
        "{'a': 1",
    ],
)
def test_anything_but_a_small_dict_literal_is_refused(text):
    with pytest.raises(ValueError):
        parse_dict_literal(text)


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"customer_id": ""}, "customer_id"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"states": "{'gender': 'F', 'region': 'Asia'}"}, "states.age"),
        ({"states": "{'age': 'old', 'gender': 'F', 'region': 'Asia'}"}, "states.age"),
        ({"states": "{'age': 40, 'gender': 'F', 'region': 'Atlantis'}"}, "states.region"),
        ({"states": "{'age': 40, 'gender': 'X', 'region': 'Asia'}"}, "states.gender"),
        ({"states": "{'age': 40, 'region': 'Asia'}"}, "states.gender"),
        ({"states": "not a dict"}, "states"),
        ({"offers": "{'OFFER_1': False, 'OFFER_2': False}"}, "offers"),
        ({"offers": "{'OFFER_1': 'maybe'}"}, "offers"),
        ({"offers": "{'bad name!': True}"}, "offers"),
    ],
)
def test_bad_fields_are_named(fields, field):
    assert error_field(**fields) == field


def test_missing_fields_are_named():
    with pytest.raises(pydantic.ValidationError) as caught:
        PredictRequest.model_validate({"customer_id": "1"})
    assert {error["loc"][0] for error in caught.value.errors()} == {"timestamp", "states", "offers"}


def test_rewards_accept_the_case_study_spelling_with_a_space():
    spaced = RewardRequest.model_validate(
        {"customer_id": "1", "timestamp": "2022-03-12", "accepted_one_of the_three_offers": True}
    )
    plain = RewardRequest.model_validate(
        {"customer_id": "1", "timestamp": "2022-03-12", "accepted_one_of_the_three_offers": "false"}
    )
    assert spaced.accepted is True and plain.accepted is False
    with pytest.raises(pydantic.ValidationError) as caught:
        RewardRequest.model_validate({"customer_id": "1", "timestamp": "2022-03-12"})
    assert caught.value.errors()[0]["loc"] == ("accepted_one_of_the_three_offers",)
