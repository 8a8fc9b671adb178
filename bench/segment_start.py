"""What the customer simulations' segment agents start from, for one world's offers: per segment
of linear.SEGMENTS, the static agent's scores, the segment agent's Beta prior and no evidence yet."""

from dataclasses import dataclass

import numpy as np

from shared.customer import agents, segments
from shared.customer.agents import linear, segment_thompson


@dataclass
class SegmentStart:
    static: np.ndarray  # (segments, offers) the static agent's scores
    alpha: np.ndarray  # (segments, offers) the segment agent's prior
    beta: np.ndarray
    shown: np.ndarray  # (segments, offers) evidence, zero at the start
    taken: np.ndarray


def segment_start(offers: list[str]) -> SegmentStart:
    static = np.array(
        [[segment_thompson._score(segments.static_scores(s), o) for o in offers] for s in linear.SEGMENTS]
    )
    alpha, beta = np.array([[agents.prior(s, o) for o in offers] for s in linear.SEGMENTS]).transpose(2, 0, 1)
    counts = (len(linear.SEGMENTS), len(offers))
    return SegmentStart(static, alpha, beta, np.zeros(counts), np.zeros(counts))
