"""Slates for many customers at once, with the `/predict` agent (shared/agent.py).

Calling `agent.choose_slate` per row costs ~130 µs (it recomputes the priors every time). Rows
that share a segment and an eligible list share the agent's inputs, so they are scored as a
group: the static agent's slate once, or `agent.learning_slates` for all the group's rows (priors
once, one Thompson draw per row from a single `rng.beta` call). Numpy fills that call row by row from the same stream, so
for one group and the same generator the slates are exactly those of calling `agent.choose_slate`
row by row (tests/test_batch_csv.py checks it); across groups only the order of draws differs.
"""
from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np

from shared import agent


def choose_slates(
    policy: str,
    groups: Mapping[tuple[str, tuple[str, ...]], int],
    counts: Mapping[str, Mapping[str, tuple[float, float]]],
    rng: np.random.Generator,
) -> dict[tuple[str, tuple[str, ...]], list[list[str]]]:
    """For each (segment, eligible offers) -> number of rows, that many slates."""
    slates = {}
    for (segment, eligible), rows in groups.items():
        if not eligible:
            raise ValueError("no eligible offer")
        if policy == agent.STATIC:
            slates[(segment, eligible)] = [agent.static_slate(segment, eligible)] * rows
        else:
            slates[(segment, eligible)] = agent.learning_slates(segment, eligible, counts.get(segment, {}), rng, rows)
    return slates


def group_sizes(keys: Sequence[tuple[str, tuple[str, ...]]]) -> dict[tuple[str, tuple[str, ...]], int]:
    sizes: dict = defaultdict(int)
    for key in keys:
        sizes[key] += 1
    return dict(sizes)
