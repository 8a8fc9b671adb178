"""MABWiser 2.7.4 peers, run through MABWiser's own public API (fit / predict / partial_fit).

MABWiser decides one request at a time at about 4-6k decisions a second, far too slow for
100 seeds x 100k clicks x 6 environments in the 30-minute budget, so each peer here:
- runs on the first MAB_SEEDS seeds only (the same paired draws as the project's policies on those
  seeds; the paired comparison uses just those seeds);
- predicts MAB_BATCH clicks at once (`predict` with MAB_BATCH context rows: a context-free
  policy returns one independent decision per row) and then learns them with one `partial_fit`,
  i.e. it learns with a lag of at most MAB_BATCH clicks (0.02 % of the horizon);
- starts with one click on each offer (`fit`), because after `fit([], [])` its UCB1 never tries
  an offer it has not seen;
- learns revenue in units of the environment's largest mean payout (UCB1's bonus assumes rewards
  in [0, 1]; for epsilon-greedy the scale changes nothing). ThompsonSampling only takes 0/1
  rewards: its binarizer turns a payout r into a coin with success probability min(1, r / scale)
  (Agrawal & Goyal's trick), so it learns revenue per click, not the conversion rate;
- with delayed conversions it is told a click's outcome when the conversion arrives, or at once
  for a click that never converts: more than the project's policies know (they count the click at
  once and its conversion later), so the comparison favours the peer, not us.
"""

import time
import warnings

import numpy as np

from bench.harness import Run, World

MAB_SEEDS = 30
MAB_BATCH = 20

PEERS = ("mabwiser-ts", "mabwiser-ucb1", "mabwiser-eps")


def _policy(name: str, coin: np.random.Generator):
    from mabwiser.mab import LearningPolicy

    if name == "mabwiser-ts":
        return LearningPolicy.ThompsonSampling(binarizer=lambda arm, reward: coin.random() < min(1.0, reward))
    if name == "mabwiser-ucb1":
        return LearningPolicy.UCB1(alpha=1.0)
    return LearningPolicy.EpsilonGreedy(epsilon=0.1)


def run_peer(world: World, name: str, seeds: int = MAB_SEEDS, batch: int = MAB_BATCH) -> Run:
    from mabwiser.mab import MAB

    started = time.perf_counter()
    env = world.env
    scale = float(world.payouts.max())
    seeds = min(seeds, len(world.seeds))
    curve = np.zeros((seeds, len(world.steps)))
    for row in range(seeds):
        rows = np.full(max(batch, env.k), row)
        coin = np.random.default_rng([int(world.seeds[row]), env.number, 5])
        mab = MAB(list(range(env.k)), _policy(name, coin), seed=int(world.seeds[row]) + 1)
        pending: dict[int, list] = {}
        regret = np.zeros(env.horizon)

        def observe(step0, positions, rows=rows, row=row, regret=regret, pending=pending):
            steps = np.arange(step0, step0 + len(positions))
            converted, payout, delay, lost = world.outcome(steps, rows[: len(positions)], world.order[row, positions])
            regret[steps] = lost
            rewards = payout / scale
            if not env.delay_mean:
                return positions, rewards
            now = ~converted
            for i in np.flatnonzero(converted):
                pending.setdefault(int(steps[i] + delay[i]), []).append((positions[i], rewards[i]))
            return positions[now], rewards[now]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = np.arange(env.k)
            decisions, rewards = observe(0, first)
            mab.fit(decisions.tolist(), rewards.tolist())
            step = env.k
            while step < env.horizon:
                size = min(batch, env.horizon - step)
                positions = np.array(mab.predict(np.zeros((size, 1))) if size > 1 else [mab.predict()])
                decisions, rewards = observe(step, positions)
                arrived = [pending.pop(s) for s in range(step, step + size) if s in pending]
                for late in arrived:
                    decisions = np.concatenate([decisions, [d for d, _ in late]])
                    rewards = np.concatenate([rewards, [r for _, r in late]])
                if len(decisions):
                    mab.partial_fit(decisions.tolist(), rewards.tolist())
                step += size
        curve[row] = np.cumsum(regret)[world.steps - 1]
    return Run(world.steps, curve, world.oracle[:seeds], time.perf_counter() - started)
