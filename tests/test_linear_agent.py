"""The contextual linear agent (shared/customer/agents/linear.py) and its place behind agents.slates. Pure."""

import itertools
import re

import numpy as np
import pytest

from shared.customer import agents, segments
from shared.customer.agents import linear
from shared.customer.agents.linear import Customer

TS, UCB, MEAN = agents.LINEAR_TS, agents.LINEAR_UCB, linear.MEAN
AGES = {"18-29": (18, 25, 29), "30-44": (30, 44), "45-64": (45, 64), "65+": (65, 90)}


def sum_amounts(*amounts: dict) -> dict:
    total: dict = {}
    for one in amounts:
        for field, delta in one.items():
            total[field] = total.get(field, 0.0) + delta
    return total


@pytest.mark.parametrize("segment", linear.SEGMENTS)
def test_with_no_data_the_slate_is_the_static_agents_for_every_segment(segment):
    band, region, gender = segment.split("|")
    rng = np.random.default_rng(0)
    eligibles = [list(segments.OFFERS)] + [
        [o for o in segments.OFFERS if rng.random() < 0.5] or ["OFFER_1"] for _ in range(20)
    ]
    for age, eligible in itertools.product(AGES[band], eligibles):
        expected = agents.static_slate(segment, eligible)
        customer = Customer(age, gender, region)
        for policy in (UCB, MEAN):
            assert linear.slates_from_stats({}, customer, eligible, rng, policy=policy) == [expected]
        assert agents.slates(UCB, segment, eligible, {}, rng, customer=customer) == [expected]
    # Thompson sampling draws around that prior: the offer shown most often has the top static
    # score, and an offer with twice another's static weight is shown more often than it.
    draws = agents.slates(TS, segment, list(segments.OFFERS), {}, np.random.default_rng(1), rows=3000)
    shown = {offer: sum(offer in slate for slate in draws) for offer in segments.OFFERS}
    scores = segments.static_scores(segment)
    assert scores[max(shown, key=shown.get)] == max(scores.values())
    assert all(shown[a] > shown[b] for a in scores for b in scores if scores[a] >= 2 * scores[b])


def test_slates_are_three_distinct_eligible_offers_and_fewer_when_fewer_are_eligible():
    rng = np.random.default_rng(3)
    customer = Customer(37, "M", "Asia")
    stats = linear.update_amounts(customer, ["OFFER_9", "OFFER_12", "OFFER_2"], True, "OFFER_12")
    for policy in (TS, UCB):
        for eligible in (["OFFER_2", "OFFER_5", "OFFER_9", "OFFER_12"], list(segments.OFFERS) + ["OFFER_12", "X-1"]):
            for slate in linear.slates_from_stats(stats, customer, eligible, rng, rows=50, policy=policy):
                assert len(slate) == 3 == len(set(slate)) and set(slate) <= set(eligible)
        assert sorted(linear.slates_from_stats(stats, customer, ["OFFER_4", "OFFER_1"], rng, policy=policy)[0]) == [
            "OFFER_1",
            "OFFER_4",
        ]


def test_a_group_of_rows_gets_the_slates_of_one_call_each_and_each_row_its_own_customer():
    segment = segments.segment_of(70, "F", "Europa")
    eligible = ["OFFER_2", "OFFER_7", "OFFER_8", "OFFER_9", "OFFER_10"]
    stats = linear.update_amounts(Customer(71, "F", "Europa"), ["OFFER_9", "OFFER_2", "OFFER_7"], True)
    grouped = agents.slates(TS, segment, eligible, stats, np.random.default_rng(7), rows=200)
    rng = np.random.default_rng(7)
    assert grouped == [agents.slates(TS, segment, eligible, stats, rng)[0] for _ in range(200)]
    # rows of different customers: each row scored for its own age
    young, old = Customer(18, "F", "Europa"), Customer(90, "F", "Europa")
    eligible = ["OFFER_1", "OFFER_2", "OFFER_3", "OFFER_4"]
    loved_by_the_old = sum_amounts(
        *(linear.update_amounts(old, ["OFFER_3", "OFFER_1", "OFFER_2"], True, "OFFER_3") for _ in range(200)),
        *(linear.update_amounts(young, ["OFFER_3", "OFFER_1", "OFFER_2"], False) for _ in range(200)),
    )
    rows = linear.slates_from_stats(loved_by_the_old, [young, old], eligible, rng, rows=2, policy=MEAN)
    assert rows[1][0] == "OFFER_3" and rows[0][0] != "OFFER_3"
    with pytest.raises(ValueError):
        linear.slates_from_stats({}, [young, old], eligible, rng, rows=3)


@pytest.mark.parametrize("policy, rank", [(TS, 9), (UCB, 3)])
def test_learning_moves_the_slate_to_an_offer_customers_accept(policy, rank):
    """Young men in Asia love an offer the static agent ranks low: Thompson sampling finds even the
    last-ranked one; LinUCB explores only within its bonus, so it is shown the first offer left out."""
    rng = np.random.default_rng(42)
    customer = Customer(25, "M", "Asia")
    segment = segments.segment_of(*customer)
    eligible = list(segments.OFFERS)
    ranked = sorted(eligible, key=lambda o: -segments.static_scores(segment)[o])
    loved = ranked[rank]
    assert loved not in agents.static_slate(segment, eligible)
    accept_rate = {offer: 0.03 for offer in eligible} | {loved: 0.6}
    stats: dict = {}
    for _ in range(300):
        slate = agents.slates(policy, segment, eligible, stats, rng, customer=customer)[0]
        accepted = [offer for offer in slate if rng.random() < accept_rate[offer]][:1]
        stats = sum_amounts(stats, linear.update_amounts(customer, slate, bool(accepted)))
    recent = agents.slates(policy, segment, eligible, stats, rng, rows=100, customer=customer)
    assert sum(loved in slate for slate in recent) >= 95


def test_a_segment_never_seen_is_scored_from_the_effects_it_shares():
    """Asia customers and customers over 65 elsewhere accept OFFER_3; no woman over 65 in Asia was
    ever seen, yet her slate leads with OFFER_3, which the static agent ranks last for her."""
    unseen = Customer(75, "F", "Asia")
    eligible = list(segments.OFFERS)
    assert "OFFER_3" not in agents.static_slate(segments.segment_of(*unseen), eligible)
    slate = ["OFFER_3", "OFFER_1", "OFFER_2"]
    seen = [Customer(a, g, r) for a in (25, 35, 50, 70, 80) for g in segments.GENDERS for r in segments.REGIONS]
    seen = [c for c in seen if segments.segment_of(*c) != segments.segment_of(*unseen)]
    stats = sum_amounts(
        *(
            linear.update_amounts(c, slate, c.region == "Asia" or c.age >= 65, "OFFER_3")
            for c in seen
            for _ in range(30)
        )
    )
    assert not any(f".seg_{linear._name(segments.segment_of(*unseen))}" in field for field in stats)
    assert linear.slates_from_stats(stats, unseen, eligible, np.random.default_rng(0), policy=MEAN)[0][0] == "OFFER_3"


def test_update_amounts_are_additive_and_rebuild_the_same_posterior():
    a, b = Customer(33, "F", "Americas"), Customer(68, "M", "Europa")
    first = linear.update_amounts(a, ["OFFER_1", "OFFER_2", "OFFER_3"], True)
    second = linear.update_amounts(b, ["OFFER_2", "OFFER_5", "OFFER_11"], True, "OFFER_5")
    both = sum_amounts(first, second)
    assert both["OFFER_2.n"] == 2 and both["OFFER_2.xx.bias.bias"] == 2
    assert both["OFFER_2.xx.bias.age"] == pytest.approx((33 - 50) / 20 + (68 - 50) / 20)

    added = linear.Model()
    added.add(first)
    added.add(second)
    observed = linear.Model()
    observed.observe(a, ["OFFER_1", "OFFER_2", "OFFER_3"], True)
    observed.observe(b, ["OFFER_2", "OFFER_5", "OFFER_11"], True, "OFFER_5")
    nested: dict = {}
    for field, value in both.items():  # as Firestore returns the dotted paths: nested maps
        node = nested
        *parents, leaf = field.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    offers = ["OFFER_1", "OFFER_2", "OFFER_5", "OFFER_11", "OFFER_7"]
    expected = linear.Model.from_stats(both).posterior(offers)
    batched = linear.Model()
    batched.observe_batch([a], [["OFFER_1", "OFFER_2", "OFFER_3"]], [True])
    batched.add(second)
    for model in (added, observed, batched, linear.Model.from_stats(nested)):
        for got, want in zip(model.posterior(offers), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the posterior is the ridge solution: A = A0 + Σ x xᵀ, b = A0 θ0 + Σ r x, where A0 holds the
    # segment precision that EM estimated from OFFER_5's own statistics
    x = linear.customer_features(b)
    mu, a_inv = expected
    a0 = np.linalg.inv(a_inv[2]) - np.outer(x, x)
    np.testing.assert_allclose(a0, np.diag(np.diagonal(a0)), atol=1e-8)
    precision = np.diagonal(a0)
    assert np.allclose(precision[~linear.SEGMENT], linear.PRIOR_PRECISION[~linear.SEGMENT])
    assert len(set(np.round(precision[linear.SEGMENT], 8))) == 1  # one precision for every segment
    np.testing.assert_allclose(
        mu[2],
        np.linalg.solve(np.diag(precision) + np.outer(x, x), precision * linear.prior_mean("OFFER_5") + x),
        rtol=1e-8,
    )


def test_the_segment_precision_follows_how_far_segments_stray_from_the_shared_effects():
    """EM on each offer's own data: segments that disagree (each its own world) loosen the prior on
    segment effects; segments that agree tighten it; no data leaves it at PRIOR_PRECISION."""

    def segment_precision(stats: dict, offer="OFFER_1") -> float:
        a_inv = linear.Model.from_stats(stats).posterior([offer])[1][0]
        xx = linear.Model.from_stats(stats)._xx[0] if stats else 0
        return float(np.diagonal(np.linalg.inv(a_inv) - xx)[linear.SEGMENT][0])

    rng = np.random.default_rng(5)
    agree, disagree = [], []
    for segment in linear.SEGMENTS:
        band, region, gender = segment.split("|")
        customer = Customer(np.mean(AGES[band]), gender, region)
        odd = rng.random() < 0.5
        for k in range(60):
            slate = ["OFFER_1", "OFFER_2", "OFFER_3"]
            agree.append(linear.update_amounts(customer, slate, k % 4 == 0, "OFFER_1"))
            disagree.append(linear.update_amounts(customer, slate, (k % 10 < 8) if odd else False, "OFFER_1"))
    assert segment_precision({}) == pytest.approx(linear.PRIOR_PRECISION[linear.SEGMENT][0])
    loose, tight = segment_precision(sum_amounts(*disagree)), segment_precision(sum_amounts(*agree))
    assert loose < linear.PRIOR_PRECISION[0] / 5 and tight > linear.PRIOR_PRECISION[0]


def test_slate_credit_is_one_third_each_unless_the_offer_is_named():
    customer = Customer(40, "M", "Asia")
    slate = ["OFFER_1", "OFFER_2", "OFFER_3"]
    unnamed = linear.update_amounts(customer, slate, True)
    assert [unnamed[f"{o}.xr.bias"] for o in slate] == [pytest.approx(1 / 3)] * 3
    named = linear.update_amounts(customer, slate, True, "OFFER_2")
    assert named["OFFER_2.xr.bias"] == 1 and not any(f.startswith(("OFFER_1.xr", "OFFER_3.xr")) for f in named)
    refused = linear.update_amounts(customer, slate, False)
    assert not any(".xr." in field for field in refused)
    # every shown offer counts as shown, whatever the outcome
    for amounts in (unnamed, named, refused):
        assert [amounts[f"{o}.n"] for o in slate] == [1, 1, 1]
        assert [amounts[f"{o}.xx.bias.bias"] for o in slate] == [1, 1, 1]
    assert linear.credit(slate, True, "OFFER_9") == {o: pytest.approx(1 / 3) for o in slate}


def test_one_reward_writes_few_fields_with_names_firestore_takes_unquoted():
    amounts = linear.update_amounts(Customer(90, "F", "Europa"), ["OFFER_1", "OFFER_2", "OFFER_3"], True)
    assert len(amounts) <= 3 * (1 + linear.ACTIVE * (linear.ACTIVE + 1) // 2 + linear.ACTIVE) <= 500
    simple = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
    assert all(simple.match(part) for field in amounts for part in field.split(".")[1:])
    assert all(v != 0 for v in amounts.values())


def test_which_statistics_each_policy_reads():
    evidence = {name: agent.evidence for name, agent in agents.AGENTS.items()}
    assert evidence == {
        agents.STATIC: None,
        agents.LEARNING: agents.SEGMENT_COUNTS,
        TS: agents.LINEAR_STATISTICS,
        UCB: agents.LINEAR_STATISTICS,
    }


def test_without_a_customer_the_middle_of_the_segments_age_band_is_scored():
    assert linear.representative("65+|Asia|F") == Customer(77.5, "F", "Asia")
    assert linear.representative("18-29|Europa|M") == Customer(24.0, "M", "Europa")
    segment = "30-44|Americas|M"
    assert agents.slates(UCB, segment, segments.OFFERS, {}, np.random.default_rng(0)) == [
        agents.static_slate(segment, segments.OFFERS)
    ]


def test_the_store_keeps_each_offers_sums_apart_and_rebuilds_the_same_posterior():
    from shared.customer import linear_store

    a, b = Customer(33, "F", "Americas"), Customer(68, "M", "Europa")
    both = sum_amounts(
        linear.update_amounts(a, ["OFFER_1", "OFFER_2", "OFFER_3"], True),
        linear.update_amounts(b, ["OFFER_2", "OFFER_5", "OFFER_11"], True, "OFFER_5"),
    )
    grouped = linear_store.per_offer(both)
    assert set(grouped) == {"OFFER_1", "OFFER_2", "OFFER_3", "OFFER_5", "OFFER_11"}
    assert grouped["OFFER_2"]["n"] == 2 and grouped["OFFER_5"]["xr.bias"] == 1
    assert linear_store.counter_path("OFFER_11") == "agent_linear/OFFER_11"
    offers = ["OFFER_1", "OFFER_2", "OFFER_5", "OFFER_11", "OFFER_7"]
    # an offer with no statistics yet (OFFER_7) reads as empty totals
    sums = {offer: linear.offer_sums(grouped.get(offer, {})) for offer in offers}
    expected = linear.Model.from_stats(both).posterior(offers)
    for got, want in zip(linear.Model.from_sums(sums).posterior(offers), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_the_customer_of_an_episode_is_read_from_its_stored_states():
    from shared.customer import linear_store

    stored = {"states": '{"age": 70.0, "gender": "F", "region": "Europa", "extra": "y"}'}
    assert linear_store.customer_of(stored) == Customer(70.0, "F", "Europa")
    assert linear_store.customer_of({"states": {"age": 30, "gender": "M", "region": "Asia"}}) == Customer(
        30.0, "M", "Asia"
    )
    for broken in ({}, {"states": "not json"}, {"states": '{"age": 30}'}, {"states": None}):
        assert linear_store.customer_of(broken) is None


def test_models_solved_one_offer_at_a_time_combine_into_the_same_posterior():
    stats = sum_amounts(
        linear.update_amounts(Customer(33, "F", "Americas"), ["OFFER_1", "OFFER_2", "OFFER_3"], True),
        linear.update_amounts(Customer(68, "M", "Europa"), ["OFFER_2", "OFFER_5", "OFFER_3"], True, "OFFER_5"),
    )
    offers = ["OFFER_3", "OFFER_1", "OFFER_2", "OFFER_5", "OFFER_9"]
    parts = {}
    for offer in offers:
        part = linear.Model.from_stats({k: v for k, v in stats.items() if k.startswith(offer + ".")})
        part.posterior([offer])
        parts[offer] = part
    expected = linear.Model.from_stats(stats).posterior(offers)
    for got, want in zip(linear.Model.combine(parts).posterior(offers), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
