"""The holdout's assignment and baseline choice (shared/platform/holdout.py, shared/cpa/holdout.py,
shared/customer/holdout.py), and the serving config's `holdout` share: pure."""

import math

import numpy as np
import pytest

from shared.cpa import holdout as cpa_holdout
from shared.cpa import serving as cpa_serving
from shared.cpa.serving import CpaServing
from shared.customer import holdout as customer_holdout
from shared.customer import serving as customer_serving
from shared.customer.serving import CustomerServing
from shared.platform import holdout

CLICKS = 20_000
OFFERS = [101, 102, 103, 104, 105]


def binomial_interval(n: int, p: float, z: float = 3.29) -> tuple[float, float]:
    """Where the observed share of n draws with probability p falls with 99.9 % probability."""
    half = z * math.sqrt(p * (1 - p) / n)
    return p - half, p + half


@pytest.mark.parametrize("share", [0.02, 0.1])
def test_the_held_out_share_of_20000_seeded_clicks_is_within_its_binomial_interval(share):
    rng = np.random.default_rng(25)
    click_ids = rng.choice(10**12, size=CLICKS, replace=False)
    served = CpaServing(holdout=share)
    held = [cpa_holdout.choice(served, "default", int(click), OFFERS) for click in click_ids]
    observed = sum(found is not None for found in held) / CLICKS
    low, high = binomial_interval(CLICKS, share)
    assert low <= observed <= high, (observed, low, high)
    # the baseline: uniform among the candidates, with the probability it logs
    chosen = np.bincount([found[0].index for found in held if found is not None], minlength=len(OFFERS))
    expected = chosen.sum() / len(OFFERS)
    assert ((chosen - expected) ** 2 / expected).sum() < 18.47  # chi-square, 4 dof, p = 0.001
    assert {found[0].probability for found in held if found is not None} == {1 / len(OFFERS)}
    assert all(
        found[1] == {"sampler": "random", "served_by": "holdout:random", "holdout": True} for found in held if found
    )


def test_assignment_is_per_tenant_and_product_and_the_same_on_a_retry():
    ids = range(5_000)
    default = [holdout.assigned(0.2, "default", "cpa", i) for i in ids]
    assert default == [holdout.assigned(0.2, "default", "cpa", i) for i in ids]  # a retried click: same side
    other_tenant = [holdout.assigned(0.2, "adnet", "cpa", i) for i in ids]
    other_product = [holdout.assigned(0.2, "default", "customer", i) for i in ids]
    both = sum(a and b for a, b in zip(default, other_tenant, strict=True)) / len(ids)
    assert abs(both - 0.04) < 0.015  # independent: 0.2 x 0.2
    assert default != other_product
    assert not any(holdout.assigned(0.0, "default", "cpa", i) for i in ids)


def test_a_forced_offer_is_never_held_out_and_a_share_of_zero_holds_nothing():
    forced = CpaServing(offer_id=102, holdout=0.5)
    assert all(cpa_holdout.choice(forced, "default", click, OFFERS) is None for click in range(2_000))
    off = CpaServing(holdout=0.0)
    assert all(cpa_holdout.choice(off, "default", click, OFFERS) is None for click in range(2_000))
    # an offer forced but not among this click's candidates: the click is served as usual
    assert any(cpa_holdout.choice(CpaServing(offer_id=999, holdout=0.5), "default", c, OFFERS) for c in range(50))


def test_customer_episodes_are_held_out_to_the_static_agent():
    served = CustomerServing(holdout=0.1)
    plans = [customer_holdout.plan(served, "company_a", f"episode-{i}") for i in range(CLICKS)]
    observed = sum(plan is not None for plan in plans) / CLICKS
    low, high = binomial_interval(CLICKS, 0.1)
    assert low <= observed <= high
    assert {plan for plan in plans if plan} == {("static", "holdout:static")}
    assert customer_holdout.learns_from({}) and not customer_holdout.learns_from({"holdout": True})


def test_the_share_comes_from_the_config_then_the_environment(monkeypatch):
    monkeypatch.delenv("HOLDOUT_SHARE", raising=False)
    assert cpa_serving.parse(None)[0].holdout_share == holdout.DEFAULT_SHARE
    monkeypatch.setenv("HOLDOUT_SHARE", "0.05")
    assert cpa_serving.parse(None)[0].holdout_share == 0.05
    assert cpa_serving.parse({"cpa": {"holdout": 0.1}})[0].holdout_share == 0.1
    assert customer_serving.parse({"customer": {"holdout": 0}})[0].holdout_share == 0.0
    serving, problems = cpa_serving.parse({"cpa": {"holdout": 0.9}})
    assert serving.holdout_share == 0.05 and problems == ["cpa.holdout: '0.9' is not a share between 0 and 0.5"]
    # the operators' override wins for every tenant
    both, _ = cpa_serving.parse_both({"cpa": {"holdout": 0}}, {"cpa": {"holdout": 0.2}})
    assert both.holdout_share == 0.0
    monkeypatch.setenv("HOLDOUT_SHARE", "2")
    with pytest.raises(ValueError, match="HOLDOUT_SHARE"):
        holdout.share_from_env()
