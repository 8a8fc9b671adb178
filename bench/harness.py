"""Runs one policy over one environment for many seeds, all seeds in lockstep.

Project policies run through `shared.cpa.policies.choose_batch`, i.e. the same batched cores that
`choose()` (the service) calls on a batch of one. A MABWiser peer runs seed by seed through its
own public API (bench/peers.py). Both draw every outcome from bench.rand, keyed on
(environment, seed, step, offer): paired seeds.
"""

from dataclasses import dataclass, replace

import numpy as np

from bench import rand
from bench.envs import Env
from shared.cpa import drift
from shared.cpa.drift import DriftParams
from shared.cpa.policies import SAMPLERS, SamplerParams, Stats, choose_batch

CHECKPOINTS = 200  # cumulative regret is recorded at this many evenly spaced steps
DELAY_WINDOW = 1 << 15  # conversions later than this many clicks (p < 1e-7 at mean 2,000) arrive at its end

STREAM_CONVERSION, STREAM_DELAY, STREAM_PAYOUT, STREAM_SHOWN = 0, 1, 2, 4
DISCOUNT_BUCKET = 100  # discounting is applied per bucket of this many clicks (time-bucketed windows)


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
        if env.joins:
            # positions in the order their offers join (stable), and how many have joined by a step
            join_of_position = np.asarray(env.joins)[self.order]
            self.join_order = np.argsort(join_of_position, axis=1, kind="stable")
        if env.shown or env.joins:
            self.oracle = self._oracle_of_shown()

    def shown(self, step: int) -> np.ndarray | None:
        """(B, k) positions of the candidates of this click, or None when every offer is a candidate."""
        env = self.env
        if env.joins:
            joined = int(np.sum(np.asarray(env.joins) * env.horizon <= step))
            return self.join_order[:, :joined]
        if env.shown:
            u = rand.uniform(env.number, self.seeds[:, None], step, np.arange(env.k)[None, :], STREAM_SHOWN)
            return np.argsort(u, axis=1)[:, : env.shown]
        return None

    def _oracle_of_shown(self) -> np.ndarray:
        """(B,) expected revenue of always taking the best of each click's candidates."""
        rows = np.arange(len(self.seeds))[:, None]
        total = np.zeros(len(self.seeds))
        for step in range(self.env.horizon):
            offers = self.order[rows, self.shown(step)]
            total += self.values[rows, self.env.epoch_of(step), offers].max(axis=1)
        return total

    def outcome(self, step: int, rows: np.ndarray, offers: np.ndarray, best_shown: np.ndarray | None = None):
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
        if best_shown is not None:
            lost = best_shown - self.values[rows, epoch, offers]
        return converted, payout * converted, np.clip(delay, 0, DELAY_WINDOW - 1), lost


def add_outcomes(stats: Stats, rows: np.ndarray, position: np.ndarray, converted, payout) -> None:
    """What the store adds for each row's click at `position`, converted or not: the conversion, its
    reward and square, and per conversion ln(payout in cents) and its square (0 without one)."""
    log_payout = np.log(np.where(converted, payout, 1.0))
    stats.conversions[rows, position] += converted
    stats.reward[rows, position] += payout
    stats.reward_sq[rows, position] += payout * payout
    stats.log_conversions[rows, position] += converted
    stats.log_reward[rows, position] += log_payout
    stats.log_reward_sq[rows, position] += log_payout * log_payout


def run_project_policy(
    world: World,
    sampler: str,
    params: SamplerParams,
    policy_seed: int = 0,
    half_life: float | None = None,
    lag_clicks: int = 0,
    lag_fraction: float = 0.0,
    lag_min: int = 0,
    drift_params: DriftParams | None = None,
) -> Run:
    """All seeds in lockstep through the project's batched policy core.

    half_life: statistics forget (policies.discounted, applied per DISCOUNT_BUCKET clicks with the
    factor 2^(-bucket / half_life)), as a store would with time-bucketed windows of counts.
    lag_clicks: decisions read a snapshot of the statistics refreshed every lag_clicks clicks, as a
    per-instance cache with a freshness bound would serve them (counts still exact underneath);
    with lag_fraction, every min(lag_clicks, max(lag_min, lag_fraction x clicks so far)) clicks:
    the cache's rule for young counters (shared/platform/stats_cache.py age_limit).
    drift_params: the store's restarts on a detected market change (shared/cpa/drift.py), its clock
    in clicks: every DISCOUNT_BUCKET clicks, as a roll-up, each offer's recent window decays and
    gains what the totals gained (drift.roll, the store's own rule), and a sampler that forgets
    (the registry's trait) decides on drift.since_arrays.
    """
    import time

    started = time.perf_counter()
    env, batch = world.env, len(world.seeds)
    rng = np.random.default_rng([policy_seed, env.number, 99])
    stats = Stats.zeros(batch, env.k)
    clicks, conversions, reward, reward_sq, log_conversions, log_reward, log_reward_sq = stats
    seen = stats
    total_clicks = np.zeros(batch)
    rows = np.arange(batch)
    regret = np.zeros(batch)
    curve = np.zeros((batch, len(world.steps)))
    # pending conversions, reward, reward_sq, log_reward, log_reward_sq, by arrival slot
    pending = np.zeros((DELAY_WINDOW, 5, batch, env.k)) if env.delay_mean else None
    factor = 2.0 ** (-DISCOUNT_BUCKET / half_life) if half_life else None
    forgets = drift_params is not None and SAMPLERS[sampler].forgets
    drift_state, rolled_totals = drift.DriftState.zeros((batch, env.k)), np.zeros((7, batch, env.k))
    checkpoint = 0
    refreshed = -(10**9)
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
        if factor is not None and step % DISCOUNT_BUCKET == 0 and step:
            for counts in stats:
                counts *= factor
        if forgets and step % DISCOUNT_BUCKET == 0 and step:
            totals = np.stack(stats)
            drift_state = drift.roll(drift_state, totals, rolled_totals, DISCOUNT_BUCKET, drift_params)
            rolled_totals = totals
        if lag_clicks and step - refreshed >= (
            min(lag_clicks, max(lag_min, lag_fraction * refreshed)) if lag_fraction else lag_clicks
        ):
            seen = Stats(*(counts.copy() for counts in stats))
            refreshed = step
        elif not lag_clicks:
            seen = stats
        decided = Stats(*drift.since_arrays(np.stack(seen), drift_state.baseline)) if forgets else seen
        epoch = env.epoch_of(step)
        step_params = params
        if env.payouts_known:
            known = world.payouts[rows[:, None], epoch, world.order]  # (B, K) by position
            step_params = replace(params, payouts=known)
        shown = world.shown(step)
        if shown is None:
            position = choose_batch(sampler, decided, total_clicks, step_params, rng, propensity=False).index
            best_shown = None
        else:
            sub = Stats(*(counts[rows[:, None], shown] for counts in decided))
            if env.payouts_known:
                step_params = replace(step_params, payouts=step_params.payouts[rows[:, None], shown])
            pick = choose_batch(sampler, sub, total_clicks, step_params, rng, propensity=False).index
            position = shown[rows, pick]
            best_shown = world.values[rows[:, None], epoch, world.order[rows[:, None], shown]].max(axis=1)
        converted, payout, delay, lost = world.outcome(step, rows, world.order[rows, position], best_shown)
        regret += lost
        clicks[rows, position] += 1.0
        total_clicks += 1.0
        if pending is None:
            add_outcomes(stats, rows, position, converted, payout)
        else:  # held until they arrive: the same sums as add_outcomes'
            log_payout = np.log(np.where(converted, payout, 1.0))
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
