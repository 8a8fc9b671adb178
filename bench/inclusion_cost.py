"""What the per-offer inclusion probabilities of an episode cost (shared/customer/propensity.py):
milliseconds per estimate for each agent, 10 eligible offers, and the error bound of its draws.

    .venv/bin/python -m bench.inclusion_cost
"""

import timeit

import numpy as np

from shared.customer import agents, propensity

SEGMENT = "30-44|Europa|M"
ELIGIBLE = [f"OFFER_{n}" for n in range(1, 11)]


def main() -> None:
    rng = np.random.default_rng(0)
    for policy in agents.AGENTS:
        counts = {"OFFER_1": (40.0, 9.0)} if (agents.AGENTS[policy].evidence == agents.SEGMENT_COUNTS) else {}
        served = agents.slates(policy, SEGMENT, ELIGIBLE, counts, rng)[0]
        runs = 20
        seconds = timeit.timeit(
            lambda p=policy, c=counts, s=served: propensity.inclusion(p, SEGMENT, ELIGIBLE, c, s, rng), number=runs
        )
        if policy in propensity.DETERMINISTIC:
            detail = "exact"
        else:
            draws = propensity.draws_of(policy)
            detail = f"{draws + 1} draws, error <= {propensity.error_bound(draws):.3f} at 99 %"
        print(f"{policy:15s} {1000 * seconds / runs:8.2f} ms per estimate ({detail})")


if __name__ == "__main__":
    main()
