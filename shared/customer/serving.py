"""How /predict slates are served: the kill switch's `customer` section of the tenant's `config/serving`
(under the operators' `config/operator`, whose fields win for every tenant), and the episode's record
of how its slate was chosen, with the shadow agent's would-be slate. Pure.

    {"customer": {"policy": "static", "shadow": "linear-ts", "holdout": 0.02}}

- policy: /predict and /predict-v2 use this agent instead of AGENT_POLICY (and /is-alive says so);
- shadow: the agent logged beside each decision; default AGENT_SHADOW_POLICY from the environment,
  "off" for none;
- holdout: the share of episodes served by the static agent as the holdout, kept out of learning
  (shared/customer/holdout.py); default HOLDOUT_SHARE from the environment, else 0.02.
A field that is not valid is ignored and logged; the other fields still apply.

Stored on the episode: `served_by`, `inclusion` (offer -> P(offer in the live slate),
shared/customer/propensity.py), and with a shadow `shadow: {policy, slate, inclusion}`. The shadow
and the inclusion estimate draw from their own generator, never the live one: the live slate is the
same with or without them.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shared.customer import propensity
from shared.customer.agents import AGENTS
from shared.platform import config, holdout

INCLUSION_RNG = np.random.default_rng()


@dataclass(frozen=True)
class CustomerServing(holdout.HoldoutShare):
    policy: str | None = None
    shadow: str | None = None
    holdout: float | None = None  # the holdout's share as configured (None: the default)

    def plan(self, policy: str) -> tuple[str, str]:
        """(agent to run, served_by) for one /predict request."""
        if self.policy is not None:
            return self.policy, f"{config.FORCED_PREFIX}{self.policy}"
        return policy, policy


SECTION = config.Section("customer", CustomerServing, config.serving_rules("policy", AGENTS, "AGENT_SHADOW_POLICY"))
parse, parse_both = SECTION.parse, SECTION.parse_both


def slate_fields(
    serving: CustomerServing,
    served_by: str,
    policy: str,
    segment: str,
    eligible: Sequence[str],
    slate: Sequence[str],
    evidence_of: Callable[[str], Mapping],
    customer=None,
    rng: np.random.Generator | None = None,
) -> dict:
    """The episode's `served_by`, `inclusion` and, with a shadow agent, `shadow`. `evidence_of(policy)`:
    what that agent reads for this request."""
    rng = rng or INCLUSION_RNG
    fields = {
        "served_by": served_by,
        "inclusion": propensity.inclusion(policy, segment, eligible, evidence_of(policy), slate, rng, customer),
    }
    if serving.shadow is not None:
        fields["shadow"] = propensity.shadow_slate(serving.shadow, segment, eligible, evidence_of, rng, customer)
    return fields
