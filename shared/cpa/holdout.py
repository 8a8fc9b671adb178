"""The CPA holdout (shared/platform/holdout.py): a held-out click is served one of its candidates
uniformly at random, recorded with `holdout: true`, and counted in no offer's statistics (neither at
/sample nor at /feedback), so the samplers never learn from it. A click whose offer the kill switch
forces is never held out: the operators' emergency wins. Pure."""

from shared.cpa.policies import Choice
from shared.cpa.serving import CpaServing
from shared.platform import config, holdout

PRODUCT = "cpa"
BASELINE = "random"


def choice(serving: CpaServing, tenant: str, click_id: int, offer_ids: list[int]) -> tuple[Choice, dict] | None:
    """The baseline's choice and the click document's fields when this click is held out, else None."""
    if serving.offer_id is not None and serving.offer_id in offer_ids:
        return None
    if not holdout.assigned(serving.holdout_share, tenant, PRODUCT, click_id):
        return None
    index = holdout.uniform_index(tenant, PRODUCT, click_id, len(offer_ids))
    return Choice(index, 1.0 / len(offer_ids)), {
        "sampler": BASELINE,
        "served_by": f"{holdout.PREFIX}{BASELINE}",
        "holdout": True,
    }


def share_of(serving: CpaServing, served_by: str) -> float:
    """The probability this click had of being held out: 0 for one whose offer the config forced
    (what the sample-ratio-mismatch check expects)."""
    return 0.0 if served_by == f"{config.FORCED_PREFIX}offer" else serving.holdout_share


learns_from = holdout.learns_from
