"""Rewards for batch episodes, which live in packs (shared/customer/packs.py) rather than documents
of their own.

Exactly once without writing the pack: the reward's transaction reads `rewards/{episode_id}` and
creates it, with the segment's and the linear model's counters, in one commit; a replay finds it
there and answers as before, a different reward for the same episode is a conflict. The pack is
read before the transaction: it is written once when the file is scored and never changed, so the
transaction need not lock it (many rewards of one pack would otherwise share its lock).

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
    if not open_batch or _predict_episode_open_or_replayed(store, request, now):
        return None  # the store's own path answers (an open /predict episode, a replay, or none)
    if len(open_batch) > 1:
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

    @firestore.transactional
    def apply(transaction) -> RewardOutcome:
        snapshot = reward_ref.get(transaction=transaction)
        if snapshot.exists:
            return _answer_again(episode, snapshot.to_dict(), request)
        accepted_offer = request.accepted_offer if request.accepted else None
        late = windows.is_settled(episode.created_at, store.clock(), store.reward_window)
        transaction.create(
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
        counters.add(transaction, store.db, path, amounts, store.cache.shards(path))
        linear_store.add_reward(
            transaction,
            store.db,
            store.cache,
            {"states": episode.states},
            episode.slate,
            request.accepted,
            request.accepted_offer,
            store.space,
        )
        return _outcome(episode, request.accepted, accepted_offer, late)

    try:
        return apply(store.db.transaction())
    except exceptions.AlreadyExists:  # a concurrent reward created it first: answer against it
        return _answer_again(episode, reward_ref.get().to_dict(), request)


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


def _predict_episode_open_or_replayed(store, request: RewardRequest, now: datetime.datetime) -> bool:
    """Whether the customer's /predict episodes hold an open one, or the reward replayed last."""
    mine = store.db.collection(store.space.path(EPISODES)).where(
        filter=FieldFilter("customer_id", "==", request.customer_id)
    )
    latest = list(mine.order_by("last_update", direction=firestore.Query.DESCENDING).limit(1).stream())
    if not latest:
        return False
    episode = latest[0].to_dict()
    if episode.get("up_to_date"):
        return (
            episode.get("accepted") == request.accepted
            and (request.accepted_offer is None or episode.get("accepted_offer") == request.accepted_offer)
            and episode.get("reward_timestamp") == request.timestamp
        )
    open_query = mine.where(filter=FieldFilter("up_to_date", "==", False))
    newest_open = list(open_query.order_by("last_update", direction=firestore.Query.DESCENDING).limit(1).stream())
    return bool(newest_open) and not windows.is_settled(newest_open[0].get("created_at"), now, store.reward_window)
