"""The doubly robust slate estimate promotion uses for customers (shared/customer/evaluation.py
slate_doubly_robust): its interval covers a target slate policy's true acceptance, with the offers'
model or with a wrong one (the logged inclusion keeps it unbiased): pure."""

import itertools

import numpy as np

from shared.customer import evaluation

OFFERS = ["OFFER_1", "OFFER_2", "OFFER_3", "OFFER_4"]
ACCEPT = np.array([0.05, 0.10, 0.20, 0.30])  # per offer shown; additive credit
PAIRS = list(itertools.combinations(range(4), 2))


def logged(n: int, rng: np.random.Generator) -> evaluation.Episodes:
    """Slates of two drawn uniformly among the six pairs: every offer's inclusion is 1/2."""
    shown = np.zeros((n, 4), dtype=bool)
    for i, pair in enumerate(rng.integers(len(PAIRS), size=n)):
        shown[i, list(PAIRS[pair])] = True
    credit = shown * (rng.random((n, 4)) < ACCEPT)
    return evaluation.Episodes(OFFERS, shown, np.full((n, 4), 0.5), credit.astype(float))


def test_the_interval_covers_the_target_slates_true_acceptance_with_a_right_or_a_wrong_model():
    target = np.tile([0.0, 0.0, 1.0, 1.0], (2000, 1))  # always offers 3 and 4
    truth = ACCEPT[2] + ACCEPT[3]
    covered = {"model": 0, "wrong model": 0}
    for seed in range(200):
        episodes = logged(2000, np.random.default_rng(seed))
        for name, model in (("model", evaluation.offer_model(episodes)), ("wrong model", np.full(4, 0.5))):
            found = evaluation.slate_doubly_robust(episodes, target, model)
            covered[name] += found.low <= truth <= found.high
    assert covered["model"] >= 0.9 * 200 and covered["wrong model"] >= 0.9 * 200, covered


def test_for_the_logged_policy_it_is_the_acceptance_rate_whatever_the_model():
    episodes = logged(500, np.random.default_rng(3))
    found = evaluation.slate_doubly_robust(episodes, episodes.inclusion, np.full(4, 0.3))
    assert abs(found.value - episodes.credit.sum(axis=1).mean()) < 0.02
