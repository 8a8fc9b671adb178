"""What the CPA store answers: typed records read from any stored version of a click document, so the
entry points turn them into JSON without knowing a Firestore field name."""

from dataclasses import dataclass

from shared.platform import records


@dataclass(frozen=True)
class Click:
    """A sampled click: the offer chosen, by which sampler, with what probability, served how."""

    click_id: int
    offer_id: int
    sampler: str
    probability: float
    served_by: str

    @classmethod
    def from_document(cls, document: dict) -> "Click":
        # clicks recorded before served_by: served by their sampler
        return records.from_document(cls, document, served_by=document.get("served_by", document["sampler"]))


@dataclass(frozen=True)
class Feedback:
    """A reward event applied to a click (or the replay of one): the click's total after it."""

    click_id: int
    offer_id: int
    is_conversion: bool
    reward: int | float
    event_id: str | None
    late: bool
