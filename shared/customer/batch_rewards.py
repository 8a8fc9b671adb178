"""Rewards for batch episodes, which live in packs (shared/customer/packs.py) rather than documents
of their own.

Exactly once without writing the pack: the reward creates `rewards/{episode_id}` together with
its increments of the segment's and the linear model's counters, in one atomic batch; the create
is the guard. A replay (or a concurrent twin) fails that create, reads the document and answers as
it recorded, and a different reward for the same episode is a conflict. No transaction, so no
lock: the pack is read before (written once when the file was scored, never changed), and rewards
of one pack, or twins of one reward, never wait for each other.

A reward without episode_id takes the customer's one open episode (unrewarded, inside its reward
window) among the /predict episodes and the tenant's recent batch files together, as
store.reward does for /predict episodes alone: two open ones are a conflict that episode_id
resolves; a replay of the customer's last reward answers as that reward did.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from google.api_core import exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.customer import agents, linear_store, packs
from shared.customer.models import RewardRequest
from shared.customer.records import RewardOutcome
from shared.platform import counters, errors, windows

REWARDS = "rewards"
EPISODES = "episodes"


@dataclass(frozen=True)
class Target:
    """The batch episode a reward is for, and its reward document when it has one already."""

    episode: packs.PackedEpisode
    reward: dict | None = None


def target(store, request: RewardRequest) -> Target | None:
    """The batch episode this reward is for; None when it is for a /predict episode (or for nothing:
    the store's own path then answers)."""
    if request.episode_id:
        if not packs.is_batch_episode_id(request.episode_id):
            return None
        episode = packs.find(store.db, store.space, request.episode_id)
        if episode is None or episode.customer_id != request.customer_id:
            raise errors.NotFound(f"no episode {request.episode_id} for customer {request.customer_id}", "episode_id")
        return Target(episode)
    now = store.clock()
    since = now - datetime.timedelta(seconds=store.reward_window)
    candidates = packs.customer_episodes(store.db, store.space, request.customer_id, since)
    if not candidates:
        return None
    rewards = _rewards(store, [c.episode_id for c in candidates])
    for candidate in candidates:  # newest file first
        reward = rewards.get(candidate.episode_id)
        if reward and _is_replay(reward, request):
            return Target(candidate, reward)
    open_batch = [c for c in candidates if c.episode_id not in rewards]
    if not open_batch:
        return None  # the store's own path answers (a /predict episode, or none)
    predicted = _predict_episodes(store, request, now)
    if predicted == REPLAYED:
        return None  # the store's own path answers the replay of a /predict reward
    if len(open_batch) + (predicted == OPEN) > 1:
        raise errors.Conflict(
            f"customer {request.customer_id} has more than one episode awaiting a reward; "
            "send episode_id to say which one this reward is for",
            "episode_id",
        )
    return Target(open_batch[0])


def record(store, request: RewardRequest, found: Target, counter_of: Callable[..., str]) -> RewardOutcome:
    """Record the reward (`counter_of(segment, space)`: the segment's counter path, store.py's)."""
    episode = found.episode
    if request.accepted_offer is not None and request.accepted_offer not in episode.slate:
        raise errors.Invalid(
            f"accepted_offer {request.accepted_offer} was not offered in episode {episode.episode_id}",
            "accepted_offer",
        )
    reward_ref = store.db.collection(store.space.path(REWARDS)).document(episode.episode_id)
    accepted_offer = request.accepted_offer if request.accepted else None
    late = windows.is_settled(episode.created_at, store.clock(), store.reward_window)
    writes = store.db.batch()  # atomic: the reward and its counts land together or not at all
    writes.create(
        reward_ref,
        {
            "id": episode.episode_id,
            "episode_id": episode.episode_id,
            "customer_id": request.customer_id,
            "accepted": request.accepted,
            "accepted_offer": accepted_offer or (", ".join(episode.slate) if request.accepted else None),
            "credited_offer": accepted_offer,
            "timestamp": request.timestamp,
            "late": late,
            "policy": episode.policy,
            "batch": True,
            "last_update": firestore.SERVER_TIMESTAMP,
        },
    )
    # A batch episode counted nothing when it was scored: its reward adds `shown` too.
    amounts = {f"{offer}.shown": 1 for offer in episode.slate}
    if request.accepted:
        credited = agents.credited_offers(episode.slate, request.accepted_offer)
        amounts.update({f"{offer}.accepted": 1 for offer in credited})
    path = counter_of(episode.segment, store.space)
    counters.add(writes, store.db, path, amounts, store.cache.shards(path))
    linear_store.add_reward(
        writes,
        store.db,
        store.cache,
        {"states": episode.states},
        episode.slate,
        request.accepted,
        request.accepted_offer,
        store.space,
    )
    try:
        writes.commit()
    except exceptions.AlreadyExists:  # rewarded before (a replay, or a concurrent reward): answer against it
        return _answer_again(episode, reward_ref.get().to_dict(), request)
    return _outcome(episode, request.accepted, accepted_offer, late)


def _answer_again(episode: packs.PackedEpisode, reward: dict, request: RewardRequest) -> RewardOutcome:
    if not _same_reward(reward, request):
        raise errors.Conflict(
            f"episode {episode.episode_id} was already rewarded with accepted={reward['accepted']}",
            "accepted_one_of_the_three_offers",
        )
    return _outcome(episode, reward["accepted"], reward.get("credited_offer"), reward.get("late", False))


def _outcome(episode: packs.PackedEpisode, accepted: bool, accepted_offer: str | None, late: bool) -> RewardOutcome:
    return RewardOutcome(
        episode.episode_id, episode.customer_id, accepted, accepted_offer, episode.slate, late, episode.policy
    )


def _same_reward(reward: dict, request: RewardRequest) -> bool:
    return reward.get("accepted") == request.accepted and (
        request.accepted_offer is None or reward.get("credited_offer") == request.accepted_offer
    )


def _is_replay(reward: dict, request: RewardRequest) -> bool:
    return _same_reward(reward, request) and reward.get("timestamp") == request.timestamp


def _rewards(store, episode_ids: list[str]) -> dict[str, dict]:
    rewards = store.db.collection(store.space.path(REWARDS))
    snapshots = store.db.get_all([rewards.document(episode_id) for episode_id in episode_ids])
    return {snapshot.id: snapshot.to_dict() for snapshot in snapshots if snapshot.exists}


OPEN, REPLAYED = "open", "replayed"


def _predict_episodes(store, request: RewardRequest, now: datetime.datetime) -> str | None:
    """REPLAYED when the customer's latest /predict episode took this very reward, OPEN when one of
    them awaits a reward, else None (the queries store.reward makes for /predict episodes)."""
    mine = store.db.collection(store.space.path(EPISODES)).where(
        filter=FieldFilter("customer_id", "==", request.customer_id)
    )
    latest = list(mine.order_by("last_update", direction=firestore.Query.DESCENDING).limit(1).stream())
    if not latest:
        return None
    episode = latest[0].to_dict()
    if (
        episode.get("up_to_date")
        and episode.get("accepted") == request.accepted
        and (request.accepted_offer is None or episode.get("accepted_offer") == request.accepted_offer)
        and episode.get("reward_timestamp") == request.timestamp
    ):
        return REPLAYED
    open_query = mine.where(filter=FieldFilter("up_to_date", "==", False))
    newest_open = list(open_query.order_by("last_update", direction=firestore.Query.DESCENDING).limit(1).stream())
    if newest_open and not windows.is_settled(newest_open[0].get("created_at"), now, store.reward_window):
        return OPEN
    return None
