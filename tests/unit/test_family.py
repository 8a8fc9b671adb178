"""The generated benchmark family (bench/family, issue 26), pure and fast: the generators are
deterministic per seed and stay in their documented ranges, the written split holds and a tuning
script refuses test seeds, the runners keep their contracts (masks, pairing, delays)."""

import numpy as np
import pytest

from bench.family import cpa_envs, customer_envs, lai_robbins, split, tune
from bench.family.choose import choose
from bench.family.cpa_runner import run_batch
from shared.cpa.drift import DriftParams
from shared.cpa.policies import SamplerParams, Stats


def _same(a, b) -> bool:
    fields = [f for f in vars(a) if not f.startswith("_")]
    return all(
        np.array_equal(getattr(a, f), getattr(b, f))
        if isinstance(getattr(a, f), np.ndarray)
        else getattr(a, f) == getattr(b, f)
        for f in fields
        if f != "customers"
    )


@pytest.mark.parametrize("cls", cpa_envs.CLASSES)
def test_a_cpa_environment_is_a_function_of_its_class_and_seed(cls):
    assert _same(cpa_envs.draw(cls, 17), cpa_envs.draw(cls, 17))
    assert not _same(cpa_envs.draw(cls, 17), cpa_envs.draw(cls, 18))


@pytest.mark.parametrize("cls", customer_envs.CLASSES)
def test_a_customer_world_is_a_function_of_its_class_and_seed(cls):
    seed = next(s for s in range(100) if customer_envs.sizes(cls, s)[1] <= 10_000)
    a, b = customer_envs.draw(cls, seed), customer_envs.draw(cls, seed)
    assert _same(a, b) and a.customers == b.customers
    assert customer_envs.sizes(cls, seed) == (len(a.offers), len(a.customers))


def test_cpa_environments_stay_in_their_documented_ranges():
    for cls in cpa_envs.CLASSES:
        for seed in range(60):
            env = cpa_envs.draw(cls, seed)
            assert 2 <= env.k <= 200 and cpa_envs.HORIZON_RANGE[0] <= env.horizon <= cpa_envs.HORIZON_RANGE[1]
            assert env.horizon % cpa_envs.BUCKET == 0
            for click in (0, env.horizon // 2, env.horizon - 1):
                rates = env.rates_at(click)
                assert rates.min() >= 1e-4 and rates.max() <= 0.2
                assert env.present_at(click).sum() >= 2
            assert 0 <= env.payout_sigma <= 2 and env.delay_mean <= 3000
            if cls == "close":
                values = env.values_at(0)
                assert env.k == 2 and 0.05 <= 1 - values.min() / values.max() <= 0.2
            if cls == "rotating":
                assert 2 <= env.shown < env.k


def test_the_split_is_written_disjoint_and_large_enough():
    data = split.load()
    for family, by_class in data["test"].items():
        for cls, seeds in by_class.items():
            assert not set(seeds) & set(data["train"][family][cls])
    assert sum(len(s) for s in data["test"]["cpa"].values()) >= 200
    assert len(data["test"]["lock_on"]["close"]) >= 300
    assert sum(len(s) for s in data["test"]["customer"].values()) >= 200
    assert not set(data["test"]["lock_on"]["close"]) & set(data["test"]["cpa"]["close"] + data["train"]["cpa"]["close"])


def test_the_extra_test_seeds_are_new_test_seeds_that_tuning_refuses(tmp_path):
    every = split.every_seed()
    for cls in ("rotating", "delayed", "drifting"):
        extra = split.extra_test_seeds("cpa", cls)
        assert len(extra) == len(set(extra)) == 200 and not set(extra) & every
        assert split.seeds_of("test+extra", "cpa", cls) == split.test_seeds("cpa", cls) + extra
        with pytest.raises(split.TestSeedError):
            split.require_training("cpa", cls, extra[:1])
    with pytest.raises(FileExistsError):
        split.write_extra("cpa", {"drifting": 10})
    again = split.write_extra("cpa", {"drifting": 10}, tmp_path / "extra.json")
    assert not set(again["test"]["cpa"]["drifting"]) & every


def test_tuning_refuses_test_seeds():
    held_out = split.test_seeds("cpa", "drifting")[0]
    with pytest.raises(split.TestSeedError):
        split.require_training("cpa", "drifting", [held_out])
    with pytest.raises(SystemExit, match="refused"):
        tune.main(["--policies", "greedy", "--seeds", f"cpa/drifting:{held_out}", "--tabulate-only"])
    trained = split.training_seeds("cpa", "drifting")[:2]
    assert split.require_training("cpa", "drifting", trained) == trained
    assert tune.training_keys("cpa", 1, None) == [
        (cls, split.training_seeds("cpa", cls)[0]) for cls in split.classes("cpa")
    ]


def test_a_masked_choice_is_a_choice_among_the_candidates_alone():
    rng = np.random.default_rng(0)
    clicks = rng.integers(0, 500, (300, 6)).astype(float)
    conversions = np.floor(clicks * rng.uniform(0, 0.2, (300, 6)))
    stats = Stats(
        clicks,
        conversions,
        conversions * 100,
        conversions * 1e4,
        conversions,
        conversions * np.log(100),
        conversions * np.log(100) ** 2,
    )
    mask = rng.random((300, 6)) < 0.5
    mask[np.arange(300), rng.integers(6, size=300)] = True
    for sampler in ("thompson", "klucb", "greedy", "ucb"):
        chosen = choose(sampler, stats, clicks.sum(axis=1), SamplerParams(), rng, mask)
        assert mask[np.arange(300), chosen].all()


def _tiny(cls, seed, horizon=3000, **changes):
    env = cpa_envs.draw(cls, seed)
    env.horizon = horizon
    env.leaves = np.minimum(env.leaves, horizon)
    env.joins = np.minimum(env.joins, horizon // 2)
    for name, value in changes.items():
        setattr(env, name, value)
    return env


def test_the_runner_is_deterministic_and_keeps_its_curves():
    envs = [_tiny("stationary", 3), _tiny("rotating", 5), _tiny("arrivals", 1), _tiny("delayed", 2, delay_mean=300.0)]
    a = run_batch(envs, "greedy", SamplerParams())
    b = run_batch(envs, "greedy", SamplerParams())
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.regret, y.regret) and x.clicks[-1] == 3000 and 1500 in x.clicks
        assert (np.diff(x.regret) >= -1e-9).all() and x.oracle[-1] > 0 and x.late_clicks.sum() == 300


def test_a_discounted_run_forgets_and_with_an_endless_half_life_is_the_cumulative_run():
    envs = [_tiny("stationary", 3), _tiny("drifting", 2)]
    never = DriftParams(float("inf"), float("inf"))  # discounts nothing, never restarts
    cumulative = run_batch(envs, "thompson", SamplerParams())
    endless = run_batch(envs, "thompson", SamplerParams(), never, discounted=True)
    short = run_batch(envs, "thompson", SamplerParams(), DriftParams(200.0, float("inf")), discounted=True)
    for x, y, z in zip(cumulative, endless, short, strict=True):
        assert np.array_equal(x.regret, y.regret) and x.restarts == y.restarts == z.restarts == 0
    assert any(not np.array_equal(x.regret, z.regret) for x, z in zip(cumulative, short, strict=True))


def test_conversions_reported_after_the_horizon_never_reach_the_policy():
    # every delay is capped at MAX_DELAY (10,000 clicks), past this 2,000-click horizon: greedy never
    # sees a conversion, so after its warm-up it keeps the first candidate
    env = _tiny("stationary", 4, horizon=2000, delay_mean=1e9)
    run = run_batch([env], "greedy", SamplerParams(floor=0.0))[0]
    assert run.late_clicks[0] == run.late_clicks.sum() == 200


def test_lai_robbins_constant_of_the_canonical_instance():
    rates = np.array([0.10, 0.05, 0.05, 0.05, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01])
    env = cpa_envs.CpaEnvironment(
        "stationary", 0, 10, 20_000, np.ones(10), 0.0, np.zeros(1, dtype=int), np.log(rates)[None]
    )
    assert lai_robbins.constant(env) == pytest.approx(17.45, abs=0.01)
    # a payout that may move too gives more ways to look best: smaller divergences, a larger constant
    env.payout_sigma = 1.0
    assert lai_robbins.constant(env) > 17.45


def test_an_environment_whose_worse_offers_could_never_be_best_says_nothing_about_the_bound():
    # fixed payouts, offer 0 worth 0.10 x 100 a click; offer 1 pays 5 a conversion, so even
    # converting every click it could not be best: C = 0, and the ratio regret / (C ln T) means nothing
    env = cpa_envs.CpaEnvironment(
        "stationary", 0, 2, 20_000, np.array([100.0, 5.0]), 0.0, np.zeros(1, dtype=int), np.log([[0.10, 0.10]])
    )
    assert lai_robbins.constant(env) == 0.0
    assert not lai_robbins.informative(env, 0.0)
    env.mean_payouts = np.array([100.0, 80.0])  # offer 1 would be best at a rate of 12.5 %
    assert lai_robbins.constant(env) > 0 and lai_robbins.informative(env, lai_robbins.constant(env))


def test_the_target_line_names_every_miss_overall_and_per_class():
    from bench.family.report import target_line

    members = {"a": np.array([True, True, False, False]), "b": np.array([False, False, True, True])}
    members["overall"] = np.ones(4, dtype=bool)
    lost = {"default": np.array([10.0, 10.0, 10.0, 10.0])}
    lost["close"] = np.array([10.0, 10.0, 9.0, 9.2])  # default behind by 0.9 on b, by 0.45 overall
    lost["far"] = np.array([20.0, 20.0, 20.0, 20.0])
    line = target_line(lost, "default", ["close", "far"], members, ["a", "b"], "customer agent")[0]
    assert line.startswith("Target (default ≥ every other customer agent") and "not met" in line
    assert "overall behind `close` (-0.45" in line and "b behind `close` by more than 0.5 (-0.90" in line
    assert "`far`" not in line and "a behind" not in line
    met = target_line(lost, "default", ["far"], members, ["a", "b"], "customer agent")[0]
    assert met.endswith(": met.")
