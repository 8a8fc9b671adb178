"""E7: Company A's customers and the top-3 slate agents of shared/customer/agents/.

Customers: age uniform 18-90, gender F/M, region Americas/Asia/Europa, a random eligible subset
of the 10 offers (3 to 10 of them). Each (segment, offer) has a hidden acceptance rate: partly what
the case study's static weights say, partly not (log-rate = log 6 % + STATIC_WEIGHT (0.5) x the standardised log
static score + 0.8 x N(0, 1), clipped to 0.5-60 %), drawn per seed. The customer looks at each offer
of the slate and accepts it with its rate, so accepts at most one: P(accept) = 1 - prod(1 - p).
The client only says whether one was accepted, so the learning agent credits all three (slate
credit, as the service does). Oracle: the three eligible offers with the highest hidden rates.
Paired: the same customers and the same acceptance coins (bench.rand) for every agent.
The contextual linear agents (`linear-ts`, `linear-ucb`; shared/customer/agents/linear.py) run when asked
(`agents=`), each with its own random stream, learning after every reward (`Model.observe`,
the sums of `linear.update_amounts`) (slate credit 1/3 each).
"""

import numpy as np

from bench import rand
from shared.customer import agents
from shared.customer import segments as vocabulary
from shared.customer.agents import linear

ENV_NUMBER = 7
AGENTS = ("learning", "static", "oracle")
LINEAR_AGENTS = (agents.LINEAR_TS, agents.LINEAR_UCB)


def segments() -> list[str]:
    return [
        f"{band}|{region}|{gender}"
        for _, _, band in vocabulary.AGE_BANDS
        for region in vocabulary.REGIONS
        for gender in vocabulary.GENDERS
    ]


STATIC_WEIGHT = 0.5  # how much the case study's static weights say about the hidden rates


def hidden_rates(seed: int, static_weight: float = STATIC_WEIGHT) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([ENV_NUMBER, seed, 1])
    rates = {}
    for segment in segments():
        log_score = np.log([vocabulary.static_scores(segment)[o] for o in vocabulary.OFFERS])
        z = (log_score - log_score.mean()) / (log_score.std() or 1.0)
        rates[segment] = np.clip(
            np.exp(np.log(0.06) + static_weight * z + 0.8 * rng.standard_normal(len(vocabulary.OFFERS))), 0.005, 0.6
        )
    return rates


def customers(seed: int, n: int):
    rng = np.random.default_rng([ENV_NUMBER, seed, 2])
    ages = rng.integers(18, 91, size=n)
    genders = rng.choice(vocabulary.GENDERS, size=n)
    regions = rng.choice(vocabulary.REGIONS, size=n)
    for i in range(n):
        size = int(rng.integers(3, len(vocabulary.OFFERS) + 1))
        eligible = [vocabulary.OFFERS[j] for j in sorted(rng.choice(len(vocabulary.OFFERS), size=size, replace=False))]
        customer = linear.Customer(int(ages[i]), str(genders[i]), str(regions[i]))
        yield customer, vocabulary.segment_of(*customer), eligible


def simulate(
    seed: int, n: int = 50_000, static_weight: float = STATIC_WEIGHT, linear_agents: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """Per agent (`AGENTS` and the `linear_agents` asked for), 1 where the customer at that step
    accepted an offer of the slate."""
    rates = hidden_rates(seed, static_weight)
    counts: dict[str, dict[str, list[float]]] = {s: {} for s in segments()}
    rng = np.random.default_rng([ENV_NUMBER, seed, 3])
    models = {name: linear.Model() for name in linear_agents}
    rngs = {name: np.random.default_rng([ENV_NUMBER, seed, 4 + i]) for i, name in enumerate(LINEAR_AGENTS)}
    accepted = {name: np.zeros(n, dtype=np.int8) for name in (*AGENTS, *linear_agents)}
    index = {offer: j for j, offer in enumerate(vocabulary.OFFERS)}
    for step, (customer, segment, eligible) in enumerate(customers(seed, n)):
        p = rates[segment]
        coins = rand.uniform(ENV_NUMBER, seed, step, np.arange(len(vocabulary.OFFERS)), 0)
        slates = {name: models[name].slates([customer], eligible, rngs[name], name)[0] for name in linear_agents}
        slates |= {
            "learning": agents.slates(
                agents.LEARNING, segment, eligible, {o: tuple(c) for o, c in counts[segment].items()}, rng
            )[0],
            "static": agents.static_slate(segment, eligible),
            "oracle": sorted(eligible, key=lambda o: -p[index[o]])[: vocabulary.SLATE_SIZE],
        }
        for name, slate in slates.items():
            accepted[name][step] = any(coins[index[o]] < p[index[o]] for o in slate)
        for name in linear_agents:
            models[name].observe(customer, slates[name], bool(accepted[name][step]))
        for offer in slates["learning"]:  # slate credit: the client only says yes or no
            shown_accepted = counts[segment].setdefault(offer, [0.0, 0.0])
            shown_accepted[0] += 1.0
            shown_accepted[1] += float(accepted["learning"][step])
    return accepted
