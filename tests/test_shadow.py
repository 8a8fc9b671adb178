"""Shadow decisions and their propensities (shared/cpa/serving.py, shared/customer/serving.py,
shared/customer/propensity.py): pure
checks first, then through the local gateway against the Firestore emulator."""

import itertools
import os
import time

import numpy as np
import pytest
import requests

from shared.cpa import serving as cpa_serving
from shared.cpa.policies import OfferStats, SamplerParams
from shared.cpa.serving import CpaServing
from shared.cpa.store import CLICKS, click_doc_id
from shared.customer import agents, propensity, segments
from shared.customer import serving as customer_serving
from shared.customer.serving import CustomerServing
from shared.platform import config as platform_config

STATS = [
    OfferStats(clicks=400, conversions=8, reward=2000, reward_sq=500_000),
    OfferStats(clicks=300, conversions=9, reward=1800, reward_sq=360_000),
    OfferStats(clicks=50, conversions=1, reward=300, reward_sq=90_000),
]
OFFERS = [11, 22, 33]
SEGMENT = "30-44|Europa|M"
ELIGIBLE = [f"OFFER_{n}" for n in range(1, 11)]
COUNTS = {"OFFER_1": (40.0, 9.0), "OFFER_4": (30.0, 2.0), "OFFER_7": (5.0, 3.0)}


@pytest.mark.parametrize("sampler", ["thompson", "epsilon", "klucb", "random", "greedy"])
def test_the_live_choice_and_generator_are_the_same_with_or_without_a_shadow(sampler):
    for seed in range(20):
        answers = []
        for config in (CpaServing(), CpaServing(shadow="thompson"), CpaServing(shadow="random")):
            live = np.random.default_rng(seed)
            choice, fields = cpa_serving.decide(
                config, sampler, OFFERS, STATS, 1000, SamplerParams(), live, np.random.default_rng(seed)
            )
            answers.append((choice, fields["served_by"], live.random()))  # the generator's next draw too
            if config.shadow:
                logged = fields["shadow"]
                assert logged["sampler"] == config.shadow and logged["offer_id"] in OFFERS
                assert 0 < logged["probability"] <= 1
            else:
                assert "shadow" not in fields
        assert answers[0] == answers[1] == answers[2], (sampler, seed)


def test_the_shadow_logs_its_own_propensity():
    """Thompson's logged probability is its exact propensity: over many seeds, the share of times
    the shadow chose each offer matches the probability it logged for that offer."""
    chosen, logged = [], {}
    rng = np.random.default_rng(7)
    for _ in range(4000):
        _, fields = cpa_serving.decide(
            CpaServing(shadow="thompson"), "random", OFFERS, STATS, 1000, SamplerParams(), rng, rng
        )
        chosen.append(fields["shadow"]["offer_id"])
        logged[fields["shadow"]["offer_id"]] = fields["shadow"]["probability"]
    for offer, probability in logged.items():
        share = chosen.count(offer) / len(chosen)
        assert abs(share - probability) < 4 * np.sqrt(probability * (1 - probability) / len(chosen)) + 1e-3


def test_the_config_forces_an_offer_among_the_candidates_or_a_sampler():
    rng = np.random.default_rng(0)
    choice, fields = cpa_serving.decide(
        CpaServing(offer_id=22, sampler="greedy"), "thompson", OFFERS, STATS, 0, SamplerParams(), rng
    )
    assert (choice.index, choice.probability, fields["served_by"]) == (1, 1.0, "config:offer")
    choice, fields = cpa_serving.decide(
        CpaServing(offer_id=99, sampler="greedy"), "thompson", OFFERS, STATS, 10**6, SamplerParams(), rng
    )
    assert fields == {"sampler": "greedy", "served_by": "config:greedy"}
    assert choice.probability > 0.99  # greedy after its warm-up: the best, but for the floor


def _exact_static(segment, eligible):
    slate = agents.static_slate(segment, eligible)
    return {offer: float(offer in slate) for offer in eligible}


def test_inclusion_is_exact_for_the_static_agent_and_a_shadow_leaves_the_live_slate_alone():
    rng = np.random.default_rng(1)
    slate = agents.slates(agents.STATIC, SEGMENT, ELIGIBLE, {}, rng)[0]
    assert propensity.inclusion(agents.STATIC, SEGMENT, ELIGIBLE, {}, slate, rng) == _exact_static(SEGMENT, ELIGIBLE)
    # the live slate, drawn first with the live generator, is the same whatever the shadow does
    for seed in range(10):
        slates = []
        for config in (
            CustomerServing(),
            CustomerServing(shadow=agents.STATIC),
            CustomerServing(shadow="linear-ts"),
        ):
            live = np.random.default_rng(seed)
            slate = agents.slates(agents.LEARNING, SEGMENT, ELIGIBLE, COUNTS, live)[0]
            fields = customer_serving.slate_fields(
                config,
                agents.LEARNING,
                agents.LEARNING,
                SEGMENT,
                ELIGIBLE,
                slate,
                lambda p: COUNTS if p == agents.LEARNING else {},
                rng=np.random.default_rng(seed),
            )
            slates.append((slate, live.random()))
            assert fields["inclusion"].keys() == set(ELIGIBLE)
            assert all(fields["inclusion"][offer] > 0 for offer in slate)
            if config.shadow:
                assert fields["shadow"]["policy"] == config.shadow
                assert len(fields["shadow"]["slate"]) == 3 and set(fields["shadow"]["slate"]) <= set(ELIGIBLE)
                assert sum(fields["shadow"]["inclusion"].values()) == pytest.approx(3.0)
        assert slates[0] == slates[1] == slates[2]


def test_estimated_inclusion_is_within_its_stated_bound_of_the_true_value():
    """Four offers, slates of three: an offer is left out exactly when its Beta draw is the lowest.
    The reference: 2,000,000 draws of the four posteriors (standard error <= 0.00035, negligible
    beside the bound), independent of the agent's code path."""
    eligible = ["OFFER_1", "OFFER_2", "OFFER_3", "OFFER_4"]
    counts = {"OFFER_1": (20.0, 6.0), "OFFER_2": (10.0, 1.0), "OFFER_3": (3.0, 1.0)}
    reference_rng = np.random.default_rng(11)
    draws = np.column_stack(
        [
            reference_rng.beta(a + counts.get(offer, (0, 0))[1], b + np.subtract(*counts.get(offer, (0, 0))), 2_000_000)
            for offer in eligible
            for a, b in [agents.prior(SEGMENT, offer)]
        ]
    )
    lowest = np.bincount(draws.argmin(axis=1), minlength=4) / len(draws)
    exact = {offer: 1 - lowest[i] for i, offer in enumerate(eligible)}
    bound = propensity.error_bound(confidence=0.999)
    assert bound == pytest.approx(0.0616, abs=1e-4)
    rng = np.random.default_rng(3)
    for _ in range(20):
        served = agents.slates(agents.LEARNING, SEGMENT, eligible, counts, rng)[0]
        estimate = propensity.inclusion(agents.LEARNING, SEGMENT, eligible, counts, served, rng)
        assert sum(estimate.values()) == pytest.approx(3.0)
        for offer in eligible:
            assert abs(estimate[offer] - exact[offer]) <= bound, (offer, estimate[offer], exact[offer])


def test_inclusion_of_every_draw_counts_the_served_slate():
    rng = np.random.default_rng(5)
    served = ["OFFER_2", "OFFER_9", "OFFER_10"]
    estimate = propensity.inclusion(agents.LEARNING, SEGMENT, ELIGIBLE, COUNTS, served, rng, draws=0)
    assert estimate == {offer: float(offer in served) for offer in ELIGIBLE}


# --- through the gateway ------------------------------------------------------------------------

TTL = float(os.environ.get("SERVING_CONFIG_TTL_SECONDS", "0.5"))
PREDICT = {
    "customer_id": "c-1",
    "timestamp": "2024-05-01",
    "states": {"age": 33, "gender": "M", "region": "Europa"},
    "offers": {offer: True for offer in ELIGIBLE},
}


@pytest.fixture
def serving(db):
    """Writes config/serving; removed afterwards, and every server's copy with it."""

    def write(document):
        db.document(platform_config.SERVING_DOCUMENT).set(document)
        time.sleep(float(os.environ["SERVING_CONFIG_TTL_SECONDS"]) + 0.3)  # every instance's copy expired

    yield write
    db.document(platform_config.SERVING_DOCUMENT).delete()
    time.sleep(float(os.environ["SERVING_CONFIG_TTL_SECONDS"]) + 0.3)


def test_shadow_decisions_are_logged_with_propensities(api, db, serving):
    serving({"cpa": {"shadow": "epsilon"}, "customer": {"shadow": agents.STATIC}})
    for click in range(1, 6):
        answer = requests.get(f"{api}/sample", params={"click_id": click, "offer_ids": "4,5,6"}, timeout=30).json()
        assert answer["served_by"] == "thompson" and answer["recorded"] is True
        document = db.collection(CLICKS).document(click_doc_id(click)).get().to_dict()
        assert document["served_by"] == "thompson" and document["offer_id"] == answer["offer_id"]
        logged = document["shadow"]
        assert logged["sampler"] == "epsilon" and logged["offer_id"] in (4, 5, 6)
        # epsilon's propensity: its best offer 1 - eps + eps/K (and the floor), any other eps/K (and the floor)
        assert 0 < logged["probability"] <= 1

    answer = requests.post(f"{api}/predict", json=PREDICT, timeout=30).json()
    assert answer["served_by"] == agents.LEARNING and answer["policy"] == agents.LEARNING
    episode = db.collection("episodes").document(answer["episode_id"]).get().to_dict()
    assert episode["served_by"] == agents.LEARNING
    assert set(episode["inclusion"]) == set(ELIGIBLE) and sum(episode["inclusion"].values()) == pytest.approx(3.0)
    assert all(episode["inclusion"][offer] > 0 for offer in answer["best-three-offers"])
    segment = segments.segment_of(33, "M", "Europa")
    assert episode["shadow"] == {
        "policy": agents.STATIC,
        "slate": agents.static_slate(segment, ELIGIBLE),
        "inclusion": _exact_static(segment, ELIGIBLE),
    }


def test_the_config_document_switches_policy_within_its_cache_time(api, db, serving):
    def served(click_id):
        return requests.get(f"{api}/sample", params={"click_id": click_id, "offer_ids": "4,5,6"}, timeout=30).json()

    assert served(1)["served_by"] == "thompson"
    db.document(platform_config.SERVING_DOCUMENT).set({"cpa": {"offer_id": 5}, "customer": {"policy": agents.STATIC}})
    changed = time.monotonic()  # the write has committed
    click = itertools.count(2)
    # Every copy read before the write expires within TTL of it: a request that starts later than
    # that must be served by the new config (however long requests take on a loaded machine).
    while True:
        started = time.monotonic()
        answer = served(next(click))
        if answer["served_by"] == "config:offer":
            break
        assert started - changed < TTL + 0.05, f"old config served {started - changed:.2f} s after the change"
        assert time.monotonic() - changed < 30
    switched = started - changed
    assert answer["offer_id"] == 5 and answer["probability"] == 1.0
    print(f"switched: first request served by the new config started {switched:.2f} s after the write (TTL {TTL} s)")
    assert served(next(click))["served_by"] == "config:offer"
    # an offer that is not a candidate: served as usual
    assert (
        requests.get(f"{api}/sample", params={"click_id": 99, "offer_ids": "7,8"}, timeout=30).json()["served_by"]
        == "thompson"
    )
    answer = requests.post(f"{api}/predict", json=PREDICT, timeout=30).json()
    assert (answer["policy"], answer["served_by"]) == (agents.STATIC, "config:static")
    assert answer["best-three-offers"] == agents.static_slate(segments.segment_of(33, "M", "Europa"), ELIGIBLE)

    # a malformed document is ignored field by field, never a 500
    serving({"cpa": "nonsense", "customer": {"policy": "no-such-agent", "shadow": 3}})
    assert served(500)["served_by"] == "thompson"
    answer = requests.post(f"{api}/predict", json=PREDICT | {"customer_id": "c-2"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["served_by"] == agents.LEARNING


def test_the_config_is_read_once_per_period_whatever_the_requests(db):
    now = [1000.0]
    cache = platform_config.ConfigDocuments(db, (platform_config.SERVING_DOCUMENT,), ttl=5.0, clock=lambda: now[0])
    assert cache.cached(customer_serving.parse) == CustomerServing() and cache.reads == 1  # no document: defaults
    db.document(platform_config.SERVING_DOCUMENT).set({"customer": {"policy": agents.STATIC}})
    for _ in range(100):
        assert cache.cached(customer_serving.parse).policy is None  # the copy held until it is 5 s old
    assert cache.reads == 1
    now[0] += 5.0
    assert cache.cached(customer_serving.parse).policy == agents.STATIC and cache.reads == 2
    for _ in range(100):
        cache.cached(customer_serving.parse)
    assert cache.reads == 2


def test_a_malformed_document_is_ignored_field_by_field(monkeypatch):
    document = {"cpa": {"sampler": "nope", "offer_id": True, "shadow": "ucb"}, "customer": ["static"]}
    cpa, cpa_problems = cpa_serving.parse(document)
    customer, customer_problems = customer_serving.parse(document)
    assert (cpa, customer) == (CpaServing(shadow="ucb"), CustomerServing())
    problems = cpa_problems + customer_problems
    assert len(problems) == 3 and any(p.startswith("cpa.sampler") for p in problems)
    assert cpa_serving.parse("not an object") == (CpaServing(), ["the document is not an object"])
    monkeypatch.setenv("AGENT_SHADOW_POLICY", agents.STATIC)
    assert customer_serving.parse(None)[0].shadow == agents.STATIC  # the environment's default
    assert customer_serving.parse({"customer": {"shadow": "off"}})[0].shadow is None  # turned off
    assert cpa_serving.parse({"cpa": {"offer_id": 42, "sampler": "greedy"}})[0].plan("thompson", [1, 2]) == (
        "greedy",
        None,
        "config:greedy",
    )
