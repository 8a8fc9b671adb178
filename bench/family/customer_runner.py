"""Every customer agent over one generated customer world, paired: the same customers, eligible offers
and acceptance coins (bench.rand) for every agent.

Customers come in batches of BATCH; an agent decides a batch on the rewards reported before it (a
reward is reported `world.delay` customers after its customer: at once, i.e. before the next batch,
or later in the delayed class), as bench/contextual.py does it: the segment agent (`thompson-slate`)
draws Beta(prior + counts) per segment and offer and credits a reward to all three offers of the
slate; the linear agents run shared/customer/linear.py's Model; the static agent and the oracle
slate (the three highest acceptance rates) learn nothing.
Regret is pseudo-regret: the oracle slate's expected acceptance 1 - prod(1 - p) minus the agent's,
summed over customers.
"""

import time
from dataclasses import dataclass

import numpy as np

from bench import rand
from bench.family.customer_envs import CUSTOMER_NUMBER, CustomerWorld
from bench.segment_start import segment_start
from shared.customer import agents, segments
from shared.customer.agents import linear

BATCH = 100
AGENTS = (agents.STATIC, agents.LEARNING, agents.LINEAR_TS, agents.LINEAR_UCB)
GRID = np.unique(np.round(np.geomspace(BATCH, 200_000, 31) / BATCH).astype(int) * BATCH)


@dataclass
class WorldRun:
    key: str
    cls: str
    customers: int
    clicks: np.ndarray  # checkpoints (customers)
    oracle: np.ndarray  # the oracle slate's cumulative expected acceptances at each checkpoint
    regret: dict  # agent -> cumulative pseudo-regret at each checkpoint
    unseen: dict  # agent -> mean expected acceptance on the customers of the unseen segment (NaN if none)
    seconds: float

    def lost_points(self, name: str) -> float:
        """Points of the oracle's acceptances lost: 100 x regret / the oracle's expected acceptances."""
        return 100.0 * self.regret[name][-1] / self.oracle[-1]


def _top(scores: np.ndarray, eligible: np.ndarray, policy: str = "") -> np.ndarray:
    return linear.top(np.where(eligible, scores, -np.inf), policy)


def simulate(world: CustomerWorld, names=AGENTS) -> WorldRun:
    started = time.perf_counter()
    total, k = world.eligible.shape
    offers = list(world.offers)
    start = segment_start(offers)
    static, alpha, beta, shown, taken = start.static, start.alpha, start.beta, start.shown, start.taken
    models = {name: linear.Model() for name in names if name in (linear.TS, linear.UCB)}
    rngs = {name: np.random.default_rng([CUSTOMER_NUMBER, world.rand_seed, 10 + i]) for i, name in enumerate(AGENTS)}
    slates = {name: np.zeros((total, segments.SLATE_SIZE), dtype=int) for name in names}
    accepted = {name: np.zeros(total, dtype=bool) for name in names}
    expected = {name: np.zeros(total) for name in (*names, "oracle")}
    arrival = np.arange(total) + world.delay  # the batch starting at or after it sees the reward
    order = np.argsort(arrival, kind="stable")
    delivered = 0
    for first in range(0, total, BATCH):
        due = delivered + int(np.searchsorted(arrival[order[delivered:]], first, side="right"))
        if due > delivered:
            who = np.sort(order[delivered:due])
            _learn(world, who, models, slates, accepted, shown, taken, offers, names)
            delivered = due
        i = np.arange(first, min(first + BATCH, total))
        p, eligible, seg = world.rates(i), world.eligible[i], world.segment[i]
        coins = rand.uniform(CUSTOMER_NUMBER, world.rand_seed, i[:, None], np.arange(k)[None, :], 0)
        batch = [world.customers[j] for j in i]
        picked = {"oracle": _top(p, eligible)}
        if agents.STATIC in names:
            picked[agents.STATIC] = _top(static[seg], eligible)
        if agents.LEARNING in names:
            draws = rngs[agents.LEARNING].beta(alpha[seg] + taken[seg], beta[seg] + shown[seg] - taken[seg])
            picked[agents.LEARNING] = _top(draws, eligible)
        for name, model in models.items():
            picked[name] = _top(model.scores(batch, offers, rngs[name], name), eligible, name)
        rows = np.arange(len(i))[:, None]
        for name, top3 in picked.items():
            chosen = p[rows, top3]
            expected[name][i] = 1.0 - np.prod(1.0 - chosen, axis=1)
            if name != "oracle":
                slates[name][i] = top3
                accepted[name][i] = (coins[rows, top3] < chosen).any(axis=1)
    return _result(world, expected, names, time.perf_counter() - started)


def _learn(world, who, models, slates, accepted, shown, taken, offers, names) -> None:
    """The rewards of customers `who` reach every learning agent."""
    seg = world.segment[who]
    if agents.LEARNING in names:
        picks = slates[agents.LEARNING][who]
        np.add.at(shown, (seg[:, None], picks), 1.0)
        np.add.at(taken, (seg[:, None], picks), accepted[agents.LEARNING][who][:, None].astype(float))
    batch = [world.customers[j] for j in who]
    for name, model in models.items():
        model.observe_batch(batch, [[offers[c] for c in row] for row in slates[name][who]], accepted[name][who])


def _result(world: CustomerWorld, expected: dict, names, seconds: float) -> WorldRun:
    total = len(world.customers)
    points = np.unique(np.concatenate([GRID[total > GRID], [total // 2, total]]))
    oracle = np.cumsum(expected["oracle"])
    regret = {name: np.cumsum(expected["oracle"] - expected[name])[points - 1] for name in names}
    unseen = {
        name: float(expected[name][world.unseen].mean()) if world.unseen.any() else float("nan")
        for name in (*names, "oracle")
    }
    return WorldRun(world.key, world.cls, total, points.astype(float), oracle[points - 1], regret, unseen, seconds)
