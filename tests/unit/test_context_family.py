"""The generated click-context environments that choose the default for clicks with context."""

import dataclasses

import numpy as np

from bench.context_bench import run
from bench.context_family import FAMILY_SALT, environment, split


def test_the_family_is_fixed_by_its_index_and_split_by_parity():
    assert environment(13) == environment(13)
    assert environment(13) != environment(15)
    assert [split(i) for i in range(4)] == ["train", "test", "train", "test"]
    env = environment(7)
    assert env.number == FAMILY_SALT + 7 and env.k in (10, 20, 30) and env.k % 10 == 0
    kinds = {any(environment(i).sigmas) for i in range(1, 40, 2)}
    assert kinds == {True, False}  # the test split holds context that matters and context that does not


def test_a_generated_environment_runs_both_policies_on_the_same_draws():
    env = dataclasses.replace(environment(1), horizon=3_000)
    thompson, contextual = (run(env, policy, seeds=2) for policy in ("thompson", "contextual"))
    assert thompson["env"] == contextual["env"] == "C1"
    assert np.array_equal(thompson["optimum"], contextual["optimum"])  # one oracle: the same contexts
    for found in (thompson, contextual):  # expected revenue per click: never above the best offer of its context
        assert (found["revenue"] > 0).all() and (found["revenue"] <= found["optimum"] * (1 + 1e-12)).all()
