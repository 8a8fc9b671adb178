"""One project policy over a batch of generated CPA environments, all of them in lockstep.

Each row of the batch is one environment (its own K, horizon, candidates, delays and drift); the
policy core sees every row's candidates through a mask (bench/family/choose.py). Outcomes are
bench.rand draws keyed on (environment, click, offer): every policy that shows offer x at click t
of an environment sees the same conversion, payout and delay (paired).

Statistics are read per block of `block_of(T)` clicks (1 up to T = 100,000, then the smallest of
2, 4, 5, 10 that keeps T / block <= 100,000): the clicks of a block decide on the statistics as they
were at its start, as the service decides on cached statistics (which may be seconds old); a block
is at most 10 clicks, 0.001 % of such a horizon. Drift roll-ups (the store's restarts, see
shared/cpa/drift.py) run every BUCKET clicks of each environment, as in bench/harness.py.
Regret is pseudo-regret against the best candidate of each click, in cents.
"""

import time
from dataclasses import dataclass

import numpy as np

from bench import rand
from bench.family.choose import choose
from bench.family.cpa_envs import BUCKET, FAMILY_NUMBER, MAX_DELAY, CpaEnvironment
from shared.cpa import drift
from shared.cpa.drift import DriftParams
from shared.cpa.policies import SamplerParams, Stats

STREAM_CONVERSION, STREAM_DELAY, STREAM_PAYOUT, STREAM_SHOWN = 0, 1, 2, 4
BLOCKS = (1, 2, 4, 5, 10)  # divisors of BUCKET
MAX_STEPS = 100_000
# Cumulative regret and oracle revenue are recorded at these clicks (those within the horizon) and at T.
GRID = np.unique(np.round(np.geomspace(BUCKET, 1_000_000, 41) / BUCKET).astype(int) * BUCKET)
LATE_SHARE = 0.1  # clicks per offer are counted over the last 10 % of the horizon (lock-on)


def block_of(horizon: int) -> int:
    return next(b for b in BLOCKS if horizon // b <= MAX_STEPS) if horizon > MAX_STEPS else 1


@dataclass
class EnvRun:
    """One environment's results under one policy."""

    key: str
    cls: str
    horizon: int
    clicks: np.ndarray  # checkpoint clicks (GRID within the horizon, then the horizon)
    regret: np.ndarray  # cumulative pseudo-regret at each checkpoint, cents
    oracle: np.ndarray  # the oracle's cumulative expected revenue at each checkpoint, cents
    restarts: int  # drift restarts over all offers (0 for a policy without them)
    late_clicks: np.ndarray  # (K,) clicks per offer over the last LATE_SHARE of the horizon
    seconds: float  # this environment's share of the batch's time

    @property
    def lost_points(self) -> float:
        """Points of oracle revenue lost: 100 x regret / oracle over the horizon."""
        return 100.0 * self.regret[-1] / max(self.oracle[-1], 1e-12)


def _gather(stats: Stats, rows: np.ndarray) -> Stats:
    return Stats(*(part[rows] for part in stats))


class _Batch:
    """The per-environment constants of the rows still running, (B, K) arrays padded to the largest K."""

    def __init__(self, envs: list[CpaEnvironment]):
        self.envs = envs
        self.kmax = max(e.k for e in envs)
        b = len(envs)
        self.valid = np.zeros((b, self.kmax), dtype=bool)
        self.payouts = np.zeros((b, self.kmax))
        self.log_weight = np.zeros((b, self.kmax))
        for i, env in enumerate(envs):
            self.valid[i, : env.k] = True
            self.payouts[i, : env.k] = env.mean_payouts
            self.log_weight[i, : env.k] = np.log(env.eligibility)
        self.horizon = np.array([e.horizon for e in envs])
        self.block = np.array([block_of(e.horizon) for e in envs])
        self.steps = self.horizon // self.block
        self.seed = np.array([e.rand_seed for e in envs], dtype=np.uint64)
        self.sigma = np.array([e.payout_sigma for e in envs])
        self.delay_mean = np.array([e.delay_mean for e in envs])
        self.shown = np.array([e.shown for e in envs])


def run_batch(
    envs: list[CpaEnvironment],
    sampler: str,
    params: SamplerParams,
    drift_params: DriftParams | None = None,
    policy_seed: int = 0,
    discounted: bool = False,
) -> list[EnvRun]:
    """The policy over every environment of `envs`, in lockstep; results in the order of `envs`.
    `discounted`: the policy decides on the drift state's recent window (counts discounted at
    drift_params.half_life) plus what the totals gained since the last roll-up, not on `since`."""
    started = time.perf_counter()
    batch = _Batch(envs)
    b, kmax = len(envs), batch.kmax
    rng = np.random.default_rng([policy_seed, FAMILY_NUMBER, *sorted(int(s) for s in batch.seed)[:8], b])
    stats = Stats.zeros(b, kmax)
    state, rolled = drift.DriftState.zeros((b, kmax)), np.zeros((7, b, kmax))
    rates = np.zeros((b, kmax))
    present = np.zeros((b, kmax), dtype=bool)
    regret, oracle = np.zeros(b), np.zeros(b)
    late = np.zeros((b, kmax))
    checkpoints = [[] for _ in envs]  # (clicks, regret, oracle) per environment
    targets = _targets(batch)
    next_point = np.zeros(b, dtype=int)
    pending: dict[int, list] = {}  # step -> [(environment index, position, payout)]
    alive = np.arange(b)  # environment index of each row still running
    results: dict[int, EnvRun] = {}
    rowmap = offsets = None
    for step in range(int(batch.steps.max())):
        finished = batch.steps[alive] <= step
        if finished.any() or rowmap is None:
            for i in alive[finished]:
                row = int(np.flatnonzero(alive == i)[0])
                results[i] = _result(envs[i], checkpoints[i], state.restarts[row].sum(), late[row], started, b)
            keep = ~finished
            alive = alive[keep]
            stats = _gather(stats, keep)
            state = drift.DriftState(state.recent[:, keep], state.baseline[:, keep], state.restarts[keep])
            rolled = rolled[:, keep]
            rates, present, regret, oracle, late = rates[keep], present[keep], regret[keep], oracle[keep], late[keep]
            next_point = next_point[keep]
            blocks = batch.block[alive]
            rowmap = np.repeat(np.arange(len(alive)), blocks)
            offsets = np.arange(len(rowmap)) - np.repeat(np.cumsum(blocks) - blocks, blocks)
        done = step * batch.block[alive]  # clicks before this step, per row
        if step in pending:
            _deliver(stats, pending.pop(step), alive)
        rolling = np.flatnonzero(done % BUCKET == 0)
        for row in rolling:  # rates, arrivals and departures change per bucket
            env = envs[alive[row]]
            rates[row, : env.k] = env.rates_at(int(done[row]))
            present[row, : env.k] = env.present_at(int(done[row]))
        if drift_params is not None and step:
            rolling = rolling[done[rolling] > 0]
            if len(rolling):
                _roll_up(stats, state, rolled, rolling, drift_params)
        decided = stats
        if discounted:
            decided = Stats(*(state.recent + np.stack(stats) - rolled))
        elif drift_params is not None and state.restarts.any():  # since_arrays is the totals before any restart
            decided = Stats(*drift.since_arrays(np.stack(stats), state.baseline))
        click = done[rowmap] + offsets
        env_of = alive[rowmap]
        mask = _candidates(batch, present, rowmap, env_of, click)
        seen = decided if len(rowmap) == len(alive) else _gather(decided, rowmap)  # blocks of one click: rows
        position = choose(sampler, seen, done[rowmap].astype(float), params, rng, mask)
        values = rates * batch.payouts[alive]
        best = np.where(mask, values[rowmap], -1.0).max(axis=1)
        chosen_value = values[rowmap, position]
        regret += np.bincount(rowmap, best - chosen_value, minlength=len(alive))
        oracle += np.bincount(rowmap, best, minlength=len(alive))
        _outcomes(batch, stats, pending, step, rates, rowmap, env_of, click, position)
        is_late = click >= (1.0 - LATE_SHARE) * batch.horizon[env_of]
        if is_late.any():
            np.add.at(late, (rowmap[is_late], position[is_late]), 1.0)
        after = (step + 1) * batch.block[alive]
        for row in np.flatnonzero(after >= targets[alive, next_point]):
            checkpoints[alive[row]].append((int(targets[alive[row], next_point[row]]), regret[row], oracle[row]))
            next_point[row] += 1
    for row, i in enumerate(alive):
        results[i] = _result(envs[i], checkpoints[i], state.restarts[row].sum(), late[row], started, b)
    return [results[i] for i in range(b)]


def _targets(batch: _Batch) -> np.ndarray:
    """(B, P + 1) clicks at which each environment's curve is recorded: GRID within its horizon,
    T / 2 and T (a block's last click at or after each), padded with a click never reached."""
    rows = []
    for horizon, block in zip(batch.horizon, batch.block, strict=True):
        rows.append(np.unique(np.concatenate([GRID[horizon > GRID], [horizon // 2 // block * block, horizon]])))
    width = max(len(r) for r in rows) + 1
    return np.array([np.concatenate([r, np.full(width - len(r), np.iinfo(np.int64).max)]) for r in rows])


def _result(env, points, restarts, late, started, batch_size) -> EnvRun:
    clicks, regret, oracle = (np.array(column, dtype=float) for column in zip(*points, strict=True))
    seconds = (time.perf_counter() - started) / batch_size
    return EnvRun(env.key, env.cls, env.horizon, clicks, regret, oracle, int(restarts), late[: env.k].copy(), seconds)


def _candidates(batch: _Batch, present, rowmap, env_of, click) -> np.ndarray:
    """(R, K) candidates of each click: the offers present, or `shown` of them drawn per click."""
    mask = present[rowmap]
    shown = batch.shown[env_of]
    rotating = np.flatnonzero(shown > 0)
    if len(rotating):
        kmax = mask.shape[1]
        u = rand.uniform(
            FAMILY_NUMBER, batch.seed[env_of[rotating], None], click[rotating, None], np.arange(kmax), STREAM_SHOWN
        )
        # weighted draw without replacement (Gumbel top-k): the `shown` largest log w - log(-log u)
        keys = np.where(mask[rotating], batch.log_weight[env_of[rotating]] - np.log(-np.log(u)), -np.inf)
        rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
        mask[rotating] &= rank < shown[rotating, None]
    return mask


def _outcomes(batch: _Batch, stats: Stats, pending: dict, step: int, rates, rowmap, env_of, click, position):
    """Draw each click's conversion, payout and delay; count the clicks, and the conversions now or later."""
    seeds = batch.seed[env_of]
    converted = rand.uniform(FAMILY_NUMBER, seeds, click, position, STREAM_CONVERSION) < rates[rowmap, position]
    np.add.at(stats.clicks, (rowmap, position), 1.0)
    hit = np.flatnonzero(converted)
    if not len(hit):
        return
    rows, where, env_hit = rowmap[hit], position[hit], env_of[hit]
    payout = batch.payouts[env_hit, where]
    sigma = batch.sigma[env_hit]
    if sigma.any():
        z = rand.normal(FAMILY_NUMBER, seeds[hit], click[hit], where, STREAM_PAYOUT)
        payout = payout * np.exp(sigma * z - sigma**2 / 2)
    mean = batch.delay_mean[env_hit]
    late = mean > 0
    if late.any():
        u = rand.uniform(FAMILY_NUMBER, seeds[hit[late]], click[hit[late]], where[late], STREAM_DELAY)
        delay = np.minimum(np.ceil(np.log(u) / np.log1p(-1.0 / np.maximum(mean[late], 1.0 + 1e-9))), MAX_DELAY)
        arrival = np.maximum((click[hit[late]] + delay).astype(int) // batch.block[env_hit[late]], step + 1)
        for when in np.unique(arrival):
            at = arrival == when
            pending.setdefault(int(when), []).append((env_hit[late][at], where[late][at], payout[late][at]))
    now = ~late
    _add_conversions(stats, rows[now], where[now], payout[now])


def _add_conversions(stats: Stats, rows, where, payout) -> None:
    log_payout = np.log(payout)
    for part, amount in (
        (stats.conversions, 1.0),
        (stats.reward, payout),
        (stats.reward_sq, payout * payout),
        (stats.log_conversions, 1.0),
        (stats.log_reward, log_payout),
        (stats.log_reward_sq, log_payout * log_payout),
    ):
        np.add.at(part, (rows, where), amount)


def _deliver(stats: Stats, arrivals: list, alive: np.ndarray) -> None:
    """Conversions reported now, of the environments still running."""
    env_index = np.concatenate([a[0] for a in arrivals])
    row_of = np.full(int(max(alive.max(), env_index.max())) + 1, -1)
    row_of[alive] = np.arange(len(alive))
    rows = row_of[env_index]
    keep = rows >= 0
    where = np.concatenate([a[1] for a in arrivals])
    payout = np.concatenate([a[2] for a in arrivals])
    _add_conversions(stats, rows[keep], where[keep], payout[keep])


def _roll_up(stats: Stats, state: drift.DriftState, rolled: np.ndarray, rows: np.ndarray, params: DriftParams):
    """The store's roll-up (drift.roll, the rule the store and bench/harness.py run) for `rows`, in place."""
    totals = np.stack(stats)[:, rows]
    part = drift.DriftState(state.recent[:, rows], state.baseline[:, rows], state.restarts[rows])
    new = drift.roll(part, totals, rolled[:, rows], BUCKET, params)
    state.recent[:, rows], state.baseline[:, rows], state.restarts[rows] = new
    rolled[:, rows] = totals
