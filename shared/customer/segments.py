"""The customer-offers vocabulary every agent and store shares (Company A's case study): the
offers, the segments (age band x region x gender) and the case study's static weights. Pure.

The case study's `rl_agent` scored offers with weight lists per age band, region and gender, but
was broken: lists of 5-6 weights against 10 offers, region and gender compared with numbers while
clients send "Europa" and "M", each `if` block overwriting the previous one, and
`random.choices` returning the same offer twice. The repair: one weight per offer in every list
(10 offers), looked up by the values clients really send, the three lists combined (their product)
instead of the last one winning.
"""

import functools

OFFERS: tuple[str, ...] = tuple(f"OFFER_{number}" for number in range(1, 11))
SLATE_SIZE = 3
REGIONS = ("Americas", "Asia", "Europa")
GENDERS = ("F", "M")
AGE_BANDS = ((0, 30, "18-29"), (30, 45, "30-44"), (45, 65, "45-64"), (65, 200, "65+"))

# Segment weights of the case study's agent, one per offer (OFFER_1 .. OFFER_10).
AGE_WEIGHTS = {
    "18-29": (3, 2, 1, 2, 1, 3, 2, 2, 1, 2),
    "30-44": (3, 3, 1, 3, 2, 2, 1, 2, 2, 2),
    "45-64": (2, 2, 2, 2, 3, 1, 2, 1, 3, 2),
    "65+": (1, 1, 3, 1, 2, 1, 2, 1, 3, 1),
}
REGION_WEIGHTS = {
    "Americas": (3, 3, 2, 2, 1, 1, 2, 2, 2, 2),
    "Asia": (2, 1, 1, 3, 2, 3, 2, 1, 1, 1),
    "Europa": (2, 2, 2, 3, 2, 2, 1, 2, 2, 2),
}
GENDER_WEIGHTS = {
    "F": (3, 2, 2, 2, 2, 1, 1, 2, 3, 2),
    "M": (2, 3, 1, 2, 2, 2, 2, 2, 1, 2),
}


def age_band(age: float) -> str:
    return next(label for low, high, label in AGE_BANDS if low <= age < high)


def segment_of(age: float, gender: str, region: str) -> str:
    """The segment key, e.g. "30-44|Europa|M"; gender and region as `GENDERS` / `REGIONS` spell them."""
    return f"{age_band(age)}|{region}|{gender}"


@functools.lru_cache(maxsize=256)
def _static_scores(segment: str) -> tuple[tuple[str, float], ...]:
    band, region, gender = segment.split("|")
    weights = zip(AGE_WEIGHTS[band], REGION_WEIGHTS[region], GENDER_WEIGHTS[gender], strict=True)
    return tuple((offer, float(a * r * g)) for offer, (a, r, g) in zip(OFFERS, weights, strict=True))


def static_scores(segment: str) -> dict[str, float]:
    return dict(_static_scores(segment))
