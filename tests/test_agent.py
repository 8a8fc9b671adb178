"""The customer-offers agent: the repaired static agent and the learning slate. Pure."""

import numpy as np
import pytest

from shared.customer import agents, segments

SEGMENTS = [
    segments.segment_of(age, gender, region)
    for age in (20, 35, 50, 70)
    for gender in segments.GENDERS
    for region in segments.REGIONS
]


@pytest.mark.parametrize("segment", SEGMENTS)
def test_static_slate_is_three_distinct_eligible_offers_by_weight(segment):
    eligible = ["OFFER_2", "OFFER_5", "OFFER_7", "OFFER_9", "OFFER_10"]
    slate = agents.static_slate(segment, eligible)
    assert len(slate) == 3 == len(set(slate)) and set(slate) <= set(eligible)
    scores = segments.static_scores(segment)
    assert [scores[o] for o in slate] == sorted((scores[o] for o in slate), reverse=True)
    assert min(scores[o] for o in slate) >= max(scores[o] for o in eligible if o not in slate)


def test_static_agent_combines_every_weight_list():
    # Gender alone would not change the top offer if one list overwrote the others.
    young_f = segments.static_scores(segments.segment_of(20, "F", "Americas"))
    young_m = segments.static_scores(segments.segment_of(20, "M", "Americas"))
    old_f = segments.static_scores(segments.segment_of(80, "F", "Americas"))
    assert young_f != young_m and young_f != old_f
    assert young_f["OFFER_1"] == 3 * 3 * 3


def test_fewer_than_three_eligible_offers_returns_them_all():
    rng = np.random.default_rng(0)
    segment = SEGMENTS[0]
    assert sorted(agents.slates(agents.LEARNING, segment, ["OFFER_4", "OFFER_1"], {}, rng)[0]) == ["OFFER_1", "OFFER_4"]
    assert agents.static_slate(segment, ["OFFER_4"]) == ["OFFER_4"]


def test_unknown_offers_get_an_average_prior_rather_than_failing():
    slate = agents.slates(
        agents.LEARNING, SEGMENTS[0], ["OFFER_11", "OFFER_12", "OFFER_1", "OFFER_3"], {}, np.random.default_rng(1)
    )[0]
    assert len(set(slate)) == 3


def test_learning_agent_moves_to_a_clearly_better_offer_within_a_few_hundred_rewards():
    """OFFER_3 is the static agent's last choice in this segment, yet customers love it."""
    rng = np.random.default_rng(42)
    segment = segments.segment_of(25, "M", "Asia")
    eligible = list(segments.OFFERS)
    assert "OFFER_3" not in agents.static_slate(segment, eligible)
    accept_rate = {offer: 0.03 for offer in eligible} | {"OFFER_3": 0.6}
    counts = {offer: [0.0, 0.0] for offer in eligible}
    for _ in range(300):
        slate = agents.slates(agents.LEARNING, segment, eligible, {o: tuple(c) for o, c in counts.items()}, rng)[0]
        accepted = any(rng.random() < accept_rate[offer] for offer in slate)
        for offer in slate:
            counts[offer][0] += 1
            counts[offer][1] += accepted
    recent = [
        agents.slates(agents.LEARNING, segment, eligible, {o: tuple(c) for o, c in counts.items()}, rng)[0]
        for _ in range(100)
    ]
    assert sum("OFFER_3" in slate for slate in recent) >= 95


def test_a_named_accepted_offer_is_the_only_one_credited():
    assert agents.credited_offers(["OFFER_1", "OFFER_2", "OFFER_3"], "OFFER_2") == ["OFFER_2"]
    assert agents.credited_offers(["OFFER_1", "OFFER_2", "OFFER_3"], None) == ["OFFER_1", "OFFER_2", "OFFER_3"]
