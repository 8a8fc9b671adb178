"""The `static` agent: the case study's weights repaired, the top three eligible offers by the
product of their age-band, region and gender weights, distinct, ties to the earlier eligible offer.
Deterministic; also the learning agents' prior. Pure.
"""

from collections.abc import Sequence

import numpy as np

from shared.customer.segments import SLATE_SIZE, static_scores


def static_slate(segment: str, eligible: Sequence[str]) -> list[str]:
    scores = static_scores(segment)
    average = float(np.mean(list(scores.values())))
    ranked = sorted(enumerate(eligible), key=lambda item: (-scores.get(item[1], average), item[0]))
    return [offer for _, offer in ranked[:SLATE_SIZE]]
