"""What an agent decides on, frozen as JSON: a batch file is scored against one snapshot of the
tenant's statistics, taken when the file is planned, so every task of the file, and every retry
of a task, draws from the same evidence (with the same seeds, the same slates).

`take` reads what the store would read for the policy (agents registry: `evidence`); `evidence_of`
gives back the segment -> evidence function agents.slates expects.
"""

from collections.abc import Callable, Iterable

import numpy as np

from shared.customer import agents, linear_store, segments
from shared.customer.agents import linear


def all_segments() -> list[str]:
    return [
        segments.segment_of(low, gender, region)
        for low, _, _ in segments.AGE_BANDS
        for region in segments.REGIONS
        for gender in segments.GENDERS
    ]


def take(store, policy: str, offers: Iterable[str]) -> dict:
    """The evidence of `policy` for every segment and the given offers, as JSON-able data."""
    kind = agents.AGENTS[policy].evidence
    if kind == agents.SEGMENT_COUNTS:
        counts = store.many_segment_counts(all_segments())
        return {"segments": {s: {o: list(v) for o, v in c.items()} for s, c in counts.items()}}
    if kind == agents.LINEAR_STATISTICS:
        offers = list(dict.fromkeys(offers))
        paths = {offer: linear_store.counter_path(offer, store.space) for offer in offers}
        summaries = store.cache.get(list(paths.values()))
        sums = {offer: linear.offer_sums(summaries[path].totals) for offer, path in paths.items()}
        return {"linear": {offer: {"xx": s.xx.tolist(), "xr": s.xr.tolist()} for offer, s in sums.items()}}
    return {}


def evidence_of(policy: str, snapshot: dict) -> Callable[[str], object]:
    kind = agents.AGENTS[policy].evidence
    if kind == agents.SEGMENT_COUNTS:
        counts = {
            segment: {offer: (float(v[0]), float(v[1])) for offer, v in per_offer.items()}
            for segment, per_offer in snapshot.get("segments", {}).items()
        }
        return lambda segment: counts.get(segment, {})
    if kind == agents.LINEAR_STATISTICS:
        sums = {
            offer: linear.OfferSums(np.array(s["xx"], dtype=float), np.array(s["xr"], dtype=float))
            for offer, s in snapshot.get("linear", {}).items()
        }
        model = linear.Model.from_sums(sums)
        model.posterior(list(sums))
        return lambda _segment: model
    return lambda _segment: {}
