"""The `contextual` environment's learning bounds (bench/context_bounds.py): the full-information
learner reads its outcomes through the sampler's effect model, so more of them earn more."""

from bench import context_bounds


def test_the_full_information_learner_earns_with_the_context_and_with_more_outcomes():
    everything = context_bounds.full_information(seeds=3)
    no_context = context_bounds.full_information(seeds=3, features=())
    one_per_click = context_bounds.full_information(seeds=3, revealed=1)
    assert no_context < one_per_click < everything - 5
    assert everything < 100
