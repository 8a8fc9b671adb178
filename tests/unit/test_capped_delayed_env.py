"""The capped-delayed benchmark environment's postbacks (bench/context_envs.py, bench/context_bench.py)."""

import numpy as np
import pytest

from bench.context_bench import Postbacks
from bench.context_envs import ENVS, ContextWorld


def test_each_clicks_postback_arrives_once_after_an_exponential_delay_of_an_hour():
    env = ENVS["capped-delayed"]
    world = ContextWorld(env, np.arange(1000, 1004))
    postbacks = Postbacks(world, world.day_length(), 4)
    steps, seeds = world.day_length() * env.days, 4
    arrived = np.concatenate([postbacks.order[postbacks.bounds[s] : postbacks.bounds[s + 1]] for s in range(steps + 1)])
    assert np.array_equal(np.sort(arrived), np.arange(steps * seeds))  # every click's, exactly once
    at, _ = np.divmod(np.arange(steps * seeds), seeds)
    arrival = world.arrivals(postbacks.times)
    landed = arrival.ravel() < steps
    delay = postbacks.times[arrival.ravel()[landed]] - postbacks.times[at[landed]]
    assert (arrival.ravel() >= at).all() and delay.mean() == pytest.approx(1 / 24, rel=0.02)
    assert np.array_equal(arrival, ContextWorld(env, np.arange(1000, 1004)).arrivals(postbacks.times))  # paired


def test_a_postback_brings_its_clicks_context_with_it():
    """A delayed conversion reaches the context counts when its postback arrives, as the store counts
    it at /feedback: the postback carries the context its click had."""
    world = ContextWorld(ENVS["capped-delayed"], np.arange(1000, 1002))
    postbacks = Postbacks(world, world.day_length(), 2)
    for step in range(world.day_length()):
        contexts = np.array([[step % 30, 1, 7], [step % 30, 2, 9]])
        postbacks.take(step, np.array([3, 4]), np.array([True, False]), np.array([1.0, 0.0]), contexts)
    arrived = [got for step in range(world.day_length()) for got in postbacks.arriving(step)]
    rows = np.concatenate([got.row for got in arrived])
    columns = np.concatenate([got.columns for got in arrived])
    positions = np.concatenate([got.position for got in arrived])
    assert len(rows) > 1000
    assert np.array_equal(columns[:, 1:], np.where(rows[:, None] == 0, [1, 7], [2, 9]))
    assert np.array_equal(positions, np.where(rows == 0, 3, 4))
