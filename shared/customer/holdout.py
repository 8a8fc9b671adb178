"""The customer holdout (shared/platform/holdout.py): a held-out episode is served by the static
agent, recorded with `holdout: true`, and counted in no segment's or linear statistics (neither at
/predict nor at /rewards), so the learning agents never learn from it. Pure."""

from shared.customer.agents import STATIC
from shared.customer.serving import CustomerServing
from shared.platform import holdout

PRODUCT = "customer"
BASELINE = STATIC


def plan(serving: CustomerServing, tenant: str, episode_id: str) -> tuple[str, str] | None:
    """(agent, served_by) when this episode is held out, else None."""
    if not holdout.assigned(serving.holdout_share, tenant, PRODUCT, episode_id):
        return None
    return BASELINE, f"{holdout.PREFIX}{BASELINE}"


learns_from = holdout.learns_from
