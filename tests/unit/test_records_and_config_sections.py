"""The two pieces the products now share (shared/platform): typed records read from any stored
version of a document, and a product's section of the kill switch document with the operators'
override laid over it."""

import pytest

from shared.cpa import serving as cpa_serving
from shared.cpa.records import Click
from shared.cpa.serving import CpaServing
from shared.customer import serving as customer_serving
from shared.customer.records import Episode, RewardOutcome
from shared.customer.serving import CustomerServing
from shared.platform import config

EPISODE = {
    "customer_id": "c-1",
    "policy": "thompson-slate",
    "agent_version": "2.0.0",
    "predicted_offer_1": "OFFER_2",
    "predicted_offer_2": "OFFER_7",
    "predicted_offer_3": "",
    "accepted": True,
}


def test_records_read_old_documents_with_their_defaults():
    click = {"click_id": 7, "offer_id": 3, "sampler": "epsilon", "probability": 0.25}
    assert Click.from_document(click) == Click(7, 3, "epsilon", 0.25, "epsilon")  # before served_by
    assert Click.from_document(click | {"served_by": "config:offer"}).served_by == "config:offer"
    assert Episode.from_document("e1", EPISODE) == Episode(
        "e1", "c-1", ["OFFER_2", "OFFER_7"], "thompson-slate", "2.0.0", "thompson-slate"
    )
    outcome = RewardOutcome.from_document("e1", EPISODE)  # before late and accepted_offer
    assert (outcome.accepted, outcome.accepted_offer, outcome.late, outcome.slate) == (
        True,
        None,
        False,
        ["OFFER_2", "OFFER_7"],
    )
    assert RewardOutcome.from_document("e1", EPISODE | {"late": True, "accepted_offer": "OFFER_7"}).late is True
    with pytest.raises(KeyError, match="accepted"):
        RewardOutcome.from_document("e1", {key: v for key, v in EPISODE.items() if key != "accepted"})


def test_the_operators_override_takes_nothing_from_the_environment_and_wins_field_by_field(monkeypatch):
    monkeypatch.setenv("CPA_SHADOW_SAMPLER", "epsilon")
    monkeypatch.setenv("AGENT_SHADOW_POLICY", "static")
    tenant = {"cpa": {"sampler": "ucb", "offer_id": 4}, "customer": {"policy": "static"}}
    assert cpa_serving.parse(tenant) == (CpaServing(sampler="ucb", offer_id=4, shadow="epsilon"), [])
    operator = {"cpa": {"sampler": "greedy"}}
    assert cpa_serving.parse_both(operator, tenant) == (CpaServing("greedy", 4, "epsilon"), [])
    assert cpa_serving.parse_both({"cpa": {"shadow": "off"}}, tenant)[0].shadow == "epsilon"  # "off" sets nothing
    assert customer_serving.parse_both({"customer": {"shadow": "nope"}}, None) == (
        CustomerServing(shadow="static"),
        ["customer.shadow: 'nope' is not one of ['linear-ts', 'linear-ucb', 'static', 'thompson-slate']"],
    )
    assert customer_serving.parse_both({"customer": {"policy": "linear-ts"}}, tenant)[0] == CustomerServing(
        "linear-ts", "static"
    )
    assert config.over(CustomerServing(), CustomerServing("static", "linear-ts")) == CustomerServing(
        "static", "linear-ts"
    )
