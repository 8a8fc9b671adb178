"""Every customer agent and its traits, in one place. The store, batch scoring, the shadow, inclusion
probabilities and evaluation ask this registry what an agent reads and does; none tests a name.

A new agent is one file with its slate function (pure) and one entry below.
"""

from collections.abc import Callable
from dataclasses import dataclass

from shared.customer.agents import linear
from shared.customer.agents.segment_thompson import learning_slates
from shared.customer.agents.static import static_slate

# What an agent decides on (its `evidence`), which the store reads for it:
SEGMENT_COUNTS = "segment counts"  # per segment, offer -> (shown, accepted)
LINEAR_STATISTICS = "linear statistics"  # the offers' linear sums (agents/linear.py), as a linear.Model


@dataclass(frozen=True)
class Agent:
    name: str
    # Bump whenever the agent's behaviour changes: /is-alive reports it, episodes store it.
    version: str
    # (segment, eligible, evidence, rng, rows, customer) -> `rows` slates; see agents.slates.
    slates: Callable[..., list[list[str]]]
    evidence: str | None = None  # SEGMENT_COUNTS, LINEAR_STATISTICS, or None (reads nothing)
    # The same evidence always gives the same slate: inclusion probabilities are exact (1 or 0).
    deterministic: bool = False
    # Randomised agents: slates drawn to estimate each offer's inclusion probability (propensity.py);
    # fewer where a draw costs more.
    inclusion_draws: int = 1000


def _static(segment, eligible, evidence, rng, rows, customer):
    return [static_slate(segment, eligible) for _ in range(rows)]


def _segment_thompson(segment, eligible, evidence, rng, rows, customer):
    return learning_slates(segment, eligible, evidence, rng, rows)


def _linear(policy: str):
    def slates(segment, eligible, evidence, rng, rows, customer):
        scored = linear.representative(segment) if customer is None else customer
        return linear.slates_from_stats(evidence, scored, eligible, rng, rows, policy)

    return slates


STATIC = "static"
LEARNING = "thompson-slate"
AGENTS: dict[str, Agent] = {
    agent.name: agent
    for agent in (
        Agent(STATIC, "1.1.0", _static, deterministic=True),
        Agent(LEARNING, "2.0.0", _segment_thompson, evidence=SEGMENT_COUNTS),
        Agent(linear.TS, "1.1.0", _linear(linear.TS), evidence=LINEAR_STATISTICS, inclusion_draws=200),
        Agent(linear.UCB, "1.1.0", _linear(linear.UCB), evidence=LINEAR_STATISTICS, deterministic=True),
    )
}
# linear-ucb: ahead of every other agent in every class of the generated family, on the training
# worlds that chose it and on the test worlds (issue 26; docs/customer-agent.md, "Which agent").
DEFAULT_AGENT = linear.UCB
