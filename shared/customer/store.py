"""Customer offers in Firestore, after the case study's tables:

- `agents/{version}` (TB_AGENTS): id, version, policy, last_update; seeded on first use.
- `products/{id}` (TB_PRODUCTS): id, offer_id, product_name.
- `episodes/{episode_id}` (TB_EPISODES): customer_id, states, predicted_offer_1..3, last_update,
  up_to_date (true once rewarded), plus segment, eligible offers, policy and agent version, and
  `expire_at` for the TTL policy (EPISODE_RETENTION_DAYS, default 365).
- `rewards/{episode_id}` (TB_REWARDS): id, customer_id, accepted_offer, last_update, episode_id.
- `agent_segments/{segment}` (summary) and `.../shards/{n}`: per offer `shown` and `accepted`, the
  learning agent's evidence, as sharded counters (shared/platform/counters.py); decisions read the
  summaries through the instance's cache (shared/platform/stats_cache.py).
- `agent_linear/{offer}` (summary) and `.../shards/{n}`: the linear agents' statistics per offer,
  as sharded counters too (shared/customer/linear_store.py).

`/predict` creates the episode and adds its slate's `shown` in one batched write (`shown_counted`);
an episode without a reward is a "not accepted" once EPISODE_REWARD_WINDOW_SECONDS have passed
(shared/platform/windows.py), with no write. A reward's transaction reads only its episode (written by
that customer's requests alone), creates the reward and adds `accepted` (and `shown`, for batch
episodes and those created before `shown_counted`) to the segment's counters, and the reward to
the slate's linear statistics (shared/customer/linear_store.py): a replay finds the
episode rewarded and counts nothing; a reward after the window is recorded `late`.
"""

import contextlib
import datetime
import json
import os
from collections.abc import Callable, Iterable

import numpy as np
from google.api_core import exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.customer import agents, batch_rewards, linear_store, segments, serving
from shared.customer.models import PredictRequest, RewardRequest
from shared.customer.records import Episode, RewardOutcome, ServingAgent, slate_of
from shared.platform import config, counters, errors, stats_cache, windows
from shared.platform.firestore import MAX_COMMIT_WRITES
from shared.platform.namespace import ROOT, Namespace

AGENTS = "agents"
PRODUCTS = "products"
EPISODES = "episodes"
REWARDS = "rewards"
DEFAULT_EPISODE_RETENTION_DAYS = 365
EPISODE_WINDOW_ENV = "EPISODE_REWARD_WINDOW_SECONDS"
DEFAULT_EPISODE_WINDOW_SECONDS = 604_800  # seven days


def episode_expire_at(now) -> datetime.datetime:
    """When the TTL policy may delete the episode: `now` (a client datetime, or the server
    timestamp sentinel, then the client's clock) plus EPISODE_RETENTION_DAYS."""
    start = now if isinstance(now, datetime.datetime) else datetime.datetime.now(datetime.UTC)
    days = float(os.environ.get("EPISODE_RETENTION_DAYS", DEFAULT_EPISODE_RETENTION_DAYS))
    return start + datetime.timedelta(days=days)


def segment_counter(segment: str, space: Namespace = ROOT) -> str:
    return space.path(f"agent_segments/{segment.replace('/', '_')}")


def segment_counts(total: dict) -> dict[str, tuple[float, float]]:
    return {
        offer: (float(v.get("shown", 0)), float(v.get("accepted", 0)))
        for offer, v in total.items()
        if isinstance(v, dict)
    }


def new_episode(
    customer_id: str,
    timestamp: str,
    states: dict,
    eligible: list[str],
    segment: str,
    slate: list[str],
    policy: str,
    source: str,
    now=firestore.SERVER_TIMESTAMP,
) -> dict:
    """An episode document (TB_EPISODES) before it is written.

    `states` is kept as JSON text and the eligible offers as one comma-separated string, as the
    case study's table holds them: Firestore indexes every map field and array element, and the
    batch scorer writes millions of these, faster as text (docs/data-model.md has the figures). A
    batch passes one client-side `now` for all its rows for the same reason.
    """
    episode = {
        "customer_id": customer_id,
        "timestamp": timestamp,
        "states": json.dumps(states, sort_keys=True, default=str),
        "segment": segment,
        "eligible_offers": ",".join(eligible),
        "policy": policy,
        "agent_version": agents.version_of(policy),
        "source": source,
        "created_at": now,
        "last_update": now,
        "up_to_date": False,
        "expire_at": episode_expire_at(now),
    }
    for rank in range(segments.SLATE_SIZE):
        episode[f"predicted_offer_{rank + 1}"] = slate[rank] if rank < len(slate) else None
    return episode


class CustomerStore:
    def __init__(
        self,
        db: firestore.Client,
        rng: np.random.Generator,
        policy: str = agents.DEFAULT_AGENT,
        cache: stats_cache.StatsCache | None = None,
        reward_window: float | None = None,
        clock: Callable[[], datetime.datetime] | None = None,
        space: Namespace = ROOT,
    ):
        if policy not in agents.AGENTS:
            raise ValueError(f"unknown agent policy {policy!r}; choose one of {sorted(agents.AGENTS)}")
        self.db = db
        self.rng = rng
        self.policy = policy
        self.space = space  # the tenant's namespace: every document this store names is in it
        self.cache = cache or stats_cache.for_db(db)
        # Seconds after /predict when an episode without a reward stands settled as not accepted.
        self.reward_window = reward_window or windows.window_seconds(EPISODE_WINDOW_ENV, DEFAULT_EPISODE_WINDOW_SECONDS)
        self.clock = clock or windows.utc_now
        self.config = config.for_db(db, config.OPERATOR_DOCUMENT, space.path(config.SERVING_DOCUMENT))

    def _collection(self, name: str) -> firestore.CollectionReference:
        return self.db.collection(self.space.path(name))

    # -- agents ------------------------------------------------------------------------------
    def ensure_agent_registered(self) -> None:
        """Create this agent's TB_AGENTS entry once; later starts of the same version change nothing."""
        version = agents.version_of(self.policy)
        with contextlib.suppress(exceptions.AlreadyExists):
            self._collection(AGENTS).document(f"{self.policy}-{version}").create(
                {
                    "id": f"{self.policy}-{version}",
                    "version": version,
                    "policy": self.policy,
                    "last_update": firestore.SERVER_TIMESTAMP,
                }
            )

    def _serving(self) -> serving.CustomerServing:
        """The tenant's kill switch under the operators' override (each read at most once per TTL)."""
        return self.config.cached(serving.parse_both)

    def serving_agent(self) -> ServingAgent:
        """The agent serving /predict now: the one the kill switch forces, else the most recent
        TB_AGENTS entry (this agent is registered first if the collection is empty)."""
        forced = self._serving().policy
        if forced is not None:
            return ServingAgent(forced, agents.version_of(forced), f"{config.FORCED_PREFIX}{forced}")
        query = self._collection(AGENTS).order_by("last_update", direction=firestore.Query.DESCENDING).limit(1)
        latest = [snapshot.to_dict() for snapshot in query.stream()]
        if not latest:
            self.ensure_agent_registered()
            latest = [snapshot.to_dict() for snapshot in query.stream()]
        policy = latest[0].get("policy")
        return ServingAgent(policy, latest[0]["version"], policy)

    # -- products ----------------------------------------------------------------------------
    def product_names(self, offers: list[str]) -> dict[str, str | None]:
        names: dict[str, str | None] = {offer: None for offer in offers}
        query = self._collection(PRODUCTS).where(filter=FieldFilter("offer_id", "in", offers))
        for snapshot in query.stream():
            product = snapshot.to_dict()
            names[product["offer_id"]] = product["product_name"]
        return names

    def load_products(self, rows: Iterable[dict]) -> int:
        """Upsert TB_PRODUCTS rows ({id, offer_id, product_name}); returns how many were written."""
        written = 0
        batch = self.db.batch()
        for row in rows:
            batch.set(self._collection(PRODUCTS).document(str(row["id"])), row)
            written += 1
            if written % MAX_COMMIT_WRITES == 0:
                batch.commit()
                batch = self.db.batch()
        batch.commit()
        return written

    # -- predictions -------------------------------------------------------------------------
    def segment_counts(self, segment: str) -> dict[str, tuple[float, float]]:
        return self.many_segment_counts([segment])[segment]

    def many_segment_counts(self, keys: Iterable[str]) -> dict[str, dict[str, tuple[float, float]]]:
        """Each segment's (shown, accepted) per offer, from the instance's cache of summaries."""
        keys = list(keys)
        summaries = self.cache.get([segment_counter(segment, self.space) for segment in keys])
        return {segment: segment_counts(summaries[segment_counter(segment, self.space)].totals) for segment in keys}

    def evidence(self, policy: str, segment_keys: Iterable[str], offers: Iterable[str]) -> Callable[[str], object]:
        """What `policy` decides on (the registry's `evidence`) for these segments and offers, as
        segment -> evidence for agents.slates, read from the instance's cache once for all of them."""
        kind = agents.AGENTS[policy].evidence
        if kind == agents.LINEAR_STATISTICS:
            model = linear_store.model(self.cache, offers, self.space)
            return lambda _segment: model
        if kind == agents.SEGMENT_COUNTS:
            counts = self.many_segment_counts(segment_keys)
            return lambda segment: counts.get(segment, {})
        return lambda _segment: {}

    def predict(self, request: PredictRequest) -> Episode:
        """Choose the slate and record its episode. A retry of the same request (its id derives from
        the request) returns the episode recorded first."""
        states = request.states
        segment = segments.segment_of(states.age, states.gender, states.region)
        eligible = request.eligible
        plan = self._serving()  # the kill switch may force an agent; a shadow is logged
        policy, served_by = plan.plan(self.policy)

        def evidence_of(agent: str):
            return self.evidence(agent, [segment], eligible)(segment)

        slate = agents.slates(policy, segment, eligible, evidence_of(policy), self.rng, customer=states)[0]
        episode = new_episode(
            request.customer_id, request.timestamp, states.model_dump(), eligible, segment, slate, policy, "api"
        )
        episode |= serving.slate_fields(plan, served_by, policy, segment, eligible, slate, evidence_of, states)
        # The slate counts as shown in the episode's own commit (as a click counts at /sample), so
        # an episode never rewarded is a "not accepted" once its window passes, with no write.
        episode["shown_counted"] = True
        episode["linear_counted"] = True  # and the shown part of its linear statistics (linear_store)
        episode_ref = self._collection(EPISODES).document(request.episode_id)
        path = segment_counter(segment, self.space)
        # Through the cache even when the policy reads no counts: it keeps the counter rolled up,
        # so its shard count grows with /predict's rate (no I/O when the policy already read it).
        shards = self.cache.get([path])[path].shards
        batch = self.db.batch()
        batch.create(episode_ref, episode)
        counters.add(batch, self.db, path, {f"{offer}.shown": 1 for offer in slate}, shards)
        linear_store.add_shown(batch, self.db, self.cache, states, slate, self.space)
        try:
            batch.commit()
        except exceptions.AlreadyExists:
            return self._replayed(episode_ref, episode)
        return Episode.from_document(episode_ref.id, episode)

    def _replayed(self, episode_ref: firestore.DocumentReference, episode: dict) -> Episode:
        """The episode recorded first, when the retry is the same request; a Conflict naming the field
        when the same episode key comes with other eligible offers or states (never a slate the
        caller did not allow)."""
        stored = episode_ref.get().to_dict()
        for field, name in (("eligible_offers", "offers"), ("states", "states")):
            if _comparable(stored.get(field, episode[field])) != _comparable(episode[field]):
                raise errors.Conflict(
                    f"episode {episode_ref.id} was predicted for other {name}; a retry must send the same "
                    f"{name}, a new prediction a new timestamp or request_id",
                    name,
                )
        return Episode.from_document(episode_ref.id, stored)

    # -- rewards -----------------------------------------------------------------------------
    def _episode_for_reward(self, request: RewardRequest) -> firestore.DocumentReference:
        episodes = self._collection(EPISODES)
        if request.episode_id:
            return episodes.document(request.episode_id)
        mine = episodes.where(filter=FieldFilter("customer_id", "==", request.customer_id))
        latest = list(mine.order_by("last_update", direction=firestore.Query.DESCENDING).limit(1).stream())
        if latest and _is_replay(latest[0].to_dict(), request):
            return latest[0].reference
        open_query = mine.where(filter=FieldFilter("up_to_date", "==", False))
        unrewarded = list(open_query.order_by("last_update", direction=firestore.Query.DESCENDING).limit(2).stream())
        # Newest first, and an unrewarded episode's last_update is its creation: once one is
        # settled, every older one is too. A settled episode takes only a reward naming it.
        now = self.clock()
        open_episodes = [snap for snap in unrewarded if not self._settled(snap.to_dict(), now)]
        if not open_episodes:
            settled = " (its latest ended its reward window: a late reward must name episode_id)" if unrewarded else ""
            raise errors.NotFound(
                f"customer {request.customer_id} has no episode awaiting a reward{settled}", "customer_id"
            )
        if len(open_episodes) > 1:
            raise errors.Conflict(
                f"customer {request.customer_id} has more than one episode awaiting a reward; "
                "send episode_id to say which one this reward is for",
                "episode_id",
            )
        return open_episodes[0].reference

    def reward(self, request: RewardRequest) -> RewardOutcome:
        """Record the reward on its episode (a replay of it changes nothing and answers the same)."""
        batch = batch_rewards.target(self, request)  # an episode of a scored file (packs.py)
        if batch is not None:
            return batch_rewards.record(self, request, batch, segment_counter)
        episode_ref = self._episode_for_reward(request)

        @firestore.transactional
        def apply(transaction):
            snapshot = episode_ref.get(transaction=transaction)
            if not snapshot.exists or snapshot.get("customer_id") != request.customer_id:
                raise errors.NotFound(f"no episode {episode_ref.id} for customer {request.customer_id}", "episode_id")
            episode = snapshot.to_dict()
            slate = slate_of(episode)
            if request.accepted_offer is not None and request.accepted_offer not in slate:
                raise errors.Invalid(
                    f"accepted_offer {request.accepted_offer} was not offered in episode {episode_ref.id}",
                    "accepted_offer",
                )
            if episode.get("up_to_date"):
                if _same_reward(episode, request):
                    return RewardOutcome.from_document(episode_ref.id, episode)
                raise errors.Conflict(
                    f"episode {episode_ref.id} was already rewarded with accepted={episode['accepted']}",
                    "accepted_one_of_the_three_offers",
                )
            accepted_offer = request.accepted_offer if request.accepted else None
            late = self._settled(episode, self.clock())
            now = firestore.SERVER_TIMESTAMP
            update = {
                "up_to_date": True,
                "accepted": request.accepted,
                "accepted_offer": accepted_offer,
                "reward_timestamp": request.timestamp,
                "late": late,  # after the window: a correction of the settled "not accepted"
                "last_update": now,
            }
            transaction.update(episode_ref, update)
            transaction.create(
                self._collection(REWARDS).document(episode_ref.id),
                {
                    "id": episode_ref.id,
                    "episode_id": episode_ref.id,
                    "customer_id": request.customer_id,
                    "accepted": request.accepted,
                    "accepted_offer": accepted_offer or (", ".join(slate) if request.accepted else None),
                    "timestamp": request.timestamp,
                    "late": late,
                    "last_update": now,
                },
            )
            # Episodes of /predict counted `shown` when created; batch ones, and those recorded
            # before that, count it with their reward, as they always did.
            amounts = {} if episode.get("shown_counted") else {f"{offer}.shown": 1 for offer in slate}
            if request.accepted:
                amounts.update(
                    {f"{offer}.accepted": 1 for offer in agents.credited_offers(slate, request.accepted_offer)}
                )
            path = segment_counter(episode["segment"], self.space)
            counters.add(transaction, self.db, path, amounts, self.cache.shards(path))
            linear_store.add_reward(
                transaction, self.db, self.cache, episode, slate, request.accepted, request.accepted_offer, self.space
            )
            return RewardOutcome.from_document(episode_ref.id, {**episode, **update})

        return apply(self.db.transaction())

    def _settled(self, episode: dict, now: datetime.datetime) -> bool:
        return windows.is_settled(episode.get("created_at"), now, self.reward_window)


def _comparable(value):
    """An episode's stored states (JSON text, or a map in older episodes) or eligible offers, as a value."""
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    return value


def _same_reward(episode: dict, request: RewardRequest) -> bool:
    return (
        bool(episode.get("up_to_date"))
        and episode.get("accepted") == request.accepted
        and (request.accepted_offer is None or episode.get("accepted_offer") == request.accepted_offer)
    )


def _is_replay(episode: dict, request: RewardRequest) -> bool:
    """Without an episode id, a retry is known by the same reward at the same timestamp."""
    return _same_reward(episode, request) and episode.get("reward_timestamp") == request.timestamp
