"""What the customer store answers: typed records read from any stored version of an episode, so the
entry points turn them into JSON without knowing a Firestore field name."""

from dataclasses import dataclass

from shared.customer.segments import SLATE_SIZE
from shared.platform import records


def slate_of(episode: dict) -> list[str]:
    """The slate an episode document holds (TB_EPISODES' predicted_offer_1..3), best first."""
    return [
        episode[f"predicted_offer_{rank + 1}"]
        for rank in range(SLATE_SIZE)
        if episode.get(f"predicted_offer_{rank + 1}")
    ]


@dataclass(frozen=True)
class Episode:
    """A /predict decision: the slate chosen for a customer, by which agent, served how."""

    episode_id: str | None  # None: not recorded (a degraded answer)
    customer_id: str
    slate: list[str]
    policy: str
    agent_version: str
    served_by: str

    @classmethod
    def from_document(cls, episode_id: str, document: dict) -> "Episode":
        # episodes from before served_by: served by their policy
        served_by = document.get("served_by", document["policy"])
        return records.from_document(
            cls, document, episode_id=episode_id, slate=slate_of(document), served_by=served_by
        )


@dataclass(frozen=True)
class RewardOutcome:
    """A reward recorded on its episode (or the replay of one)."""

    episode_id: str
    customer_id: str
    accepted: bool
    slate: list[str]
    policy: str
    accepted_offer: str | None = None
    late: bool = False  # episodes from before late rewards were told apart

    @classmethod
    def from_document(cls, episode_id: str, document: dict) -> "RewardOutcome":
        return records.from_document(cls, document, episode_id=episode_id, slate=slate_of(document))


@dataclass(frozen=True)
class ServingAgent:
    """What /is-alive reports: the agent that serves /predict now, and why."""

    policy: str
    version: str
    served_by: str  # the policy itself, or "config:<policy>" while the kill switch forces it
