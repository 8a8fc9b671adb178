"""Runs one policy over one environment for many seeds, all seeds in lockstep.

Project policies run through `shared.cpa.policies.choose_batch`, i.e. the same batched cores that
`choose()` (the service) calls on a batch of one. A MABWiser peer runs seed by seed through its
own public API (bench/peers.py). Both draw every outcome from bench.rand, keyed on
(environment, seed, step, offer): paired seeds.
"""

from dataclasses import dataclass

import numpy as np

from bench import rand
from bench.envs import Env
from shared.cpa.policies import SamplerParams, Stats, choose_batch

CHECKPOINTS = 200  # cumulative regret is recorded at this many evenly spaced steps
DELAY_WINDOW = 1 << 15  # conversions later than this many clicks (p < 1e-7 at mean 2,000) arrive at its end

STREAM_CONVERSION, STREAM_DELAY, STREAM_PAYOUT = 0, 1, 2


@dataclass
class Run:
    """Per-seed results of one policy on one environment."""

    steps: np.ndarray  # (P,) checkpoint steps
    regret: np.ndarray  # (B, P) cumulative pseudo-regret at each checkpoint
    oracle: np.ndarray  # (B,) the oracle's expected revenue over the horizon
    seconds: float = 0.0

    @property
    def final(self) -> np.ndarray:
        return self.regret[:, -1]

    @property
    def oracle_share(self) -> np.ndarray:
        return 1.0 - self.final / self.oracle


class World:
    """The environment's per-seed tables and outcome draws, shared by every policy."""

    def __init__(self, env: Env, seeds: np.ndarray):
        self.env, self.seeds = env, np.asarray(seeds)
        tables = [env.instance(int(s)) for s in self.seeds]
        self.rates = np.array([t[0] for t in tables])  # (B, E, K) by offer
        self.payouts = np.array([t[1] for t in tables])
        self.values = self.rates * self.payouts
        self.best = self.values.max(axis=2)  # (B, E)
        self.order = np.array([env.arm_order(int(s)) for s in self.seeds])  # (B, K) offer at position
        self.steps = np.linspace(0, env.horizon, CHECKPOINTS + 1).astype(int)[1:]
        epoch_lengths = np.diff([0, *(e * env.horizon // env.epochs() for e in range(1, env.epochs())), env.horizon])
        self.oracle = self.best @ epoch_lengths

    def outcome(self, step: int, rows: np.ndarray, offers: np.ndarray):
        """Conversion (bool), payout (cents) and delay (clicks) of showing `offers` at `step`,
        and the expected value lost against the best offer (pseudo-regret)."""
        env, seeds = self.env, self.seeds[rows]
        epoch = np.minimum(np.asarray(step) * env.epochs() // env.horizon, env.changes)
        rate = self.rates[rows, epoch, offers]
        converted = rand.uniform(env.number, seeds, step, offers, STREAM_CONVERSION) < rate
        payout = self.payouts[rows, epoch, offers]
        if env.lognormal_sigma:
            z = rand.normal(env.number, seeds, step, offers, STREAM_PAYOUT)
            payout = payout * np.exp(env.lognormal_sigma * z - env.lognormal_sigma**2 / 2)
        if env.delay_mean:
            u = rand.uniform(env.number, seeds, step, offers, STREAM_DELAY)
            delay = np.ceil(np.log(u) / np.log1p(-1.0 / env.delay_mean)).astype(int)
        else:
            delay = np.zeros(len(rows), dtype=int)
        lost = self.best[rows, epoch] - self.values[rows, epoch, offers]
        return converted, payout * converted, np.clip(delay, 0, DELAY_WINDOW - 1), lost


def run_project_policy(world: World, sampler: str, params: SamplerParams, policy_seed: int = 0) -> Run:
    """All seeds in lockstep through the project's batched policy core."""
    import time

    started = time.perf_counter()
    env, batch = world.env, len(world.seeds)
    rng = np.random.default_rng([policy_seed, env.number, 99])
    stats = Stats.zeros(batch, env.k)
    clicks, conversions, reward, reward_sq, log_conversions, log_reward, log_reward_sq = stats
    total_clicks = np.zeros(batch)
    rows = np.arange(batch)
    regret = np.zeros(batch)
    curve = np.zeros((batch, len(world.steps)))
    # pending conversions, reward, reward_sq, log_reward, log_reward_sq, by arrival slot
    pending = np.zeros((DELAY_WINDOW, 5, batch, env.k)) if env.delay_mean else None
    checkpoint = 0
    for step in range(env.horizon):
        if pending is not None:
            slot = pending[step % DELAY_WINDOW]
            conversions += slot[0]
            reward += slot[1]
            reward_sq += slot[2]
            log_conversions += slot[0]
            log_reward += slot[3]
            log_reward_sq += slot[4]
            slot[:] = 0.0
        position = choose_batch(sampler, stats, total_clicks, params, rng, propensity=False).index
        converted, payout, delay, lost = world.outcome(step, rows, world.order[rows, position])
        regret += lost
        # what the store adds per conversion: ln(payout in cents) and its square (0 without one)
        log_payout = np.log(np.where(converted, payout, 1.0))
        clicks[rows, position] += 1.0
        total_clicks += 1.0
        if pending is None:
            conversions[rows, position] += converted
            reward[rows, position] += payout
            reward_sq[rows, position] += payout * payout
            log_conversions[rows, position] += converted
            log_reward[rows, position] += log_payout
            log_reward_sq[rows, position] += log_payout * log_payout
        else:
            hit = np.flatnonzero(converted)
            arrival = (step + delay[hit]) % DELAY_WINDOW
            pending[arrival, 0, hit, position[hit]] += 1.0
            pending[arrival, 1, hit, position[hit]] += payout[hit]
            pending[arrival, 2, hit, position[hit]] += payout[hit] ** 2
            pending[arrival, 3, hit, position[hit]] += log_payout[hit]
            pending[arrival, 4, hit, position[hit]] += log_payout[hit] ** 2
        if step + 1 == world.steps[checkpoint]:
            curve[:, checkpoint] = regret
            checkpoint += 1
    return Run(world.steps, curve, world.oracle, time.perf_counter() - started)
