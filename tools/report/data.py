"""What the report reads: from the decision log (`read_log`, the default: DuckDB locally, BigQuery
deployed, tools/analytics/), or from Firestore (`read`, `--firestore`), bounded the same way: recent
clicks, recent episodes, and the per-offer totals of the most clicked offers.

From the log, the offers' totals are summed over the whole log by the engine (the holdout left out,
as the service's counters leave it out), so they equal the counters unless an offer was reset.
From Firestore:

- `cpa_clicks`: the newest `max_clicks` documents with `sampled_at` >= `since` (one range query on a
  single field, which Firestore indexes by default); only offer_id, sampled_at and reward are fetched.
  Documents without offer_id or sampled_at (e.g. summary documents) are skipped.
- `episodes`: the newest `max_episodes` with `created_at` >= `since`; segment, policy, up_to_date and
  accepted are fetched.
- Per offer: `CpaStore.offer_stats` (all-time counters) for the `max_offers` offers with the most
  clicks in the window: the intervals and P(best) come from those counters, not from the window.
"""

import datetime
from collections import Counter
from dataclasses import dataclass

import numpy as np
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.cpa.policies import OfferStats
from shared.cpa.store import CLICKS, CpaStore
from shared.customer.store import EPISODES
from shared.platform.namespace import ROOT, Namespace
from tools.analytics import queries

CLICK_FIELDS = ["offer_id", "sampled_at", "reward"]
EPISODE_FIELDS = ["segment", "policy", "up_to_date", "accepted", "created_at"]


@dataclass(frozen=True)
class Clicks:
    """Click documents in the window, oldest first."""

    offer_id: np.ndarray  # int
    sampled_at: np.ndarray  # float, seconds since the epoch (UTC)
    reward: np.ndarray  # float cents; 0 until feedback arrives (and for no conversion)
    truncated: bool  # True when max_clicks cut the window short (the oldest clicks were left out)


@dataclass(frozen=True)
class Episodes:
    segment: list[str]
    policy: list[str]
    rewarded: np.ndarray  # bool: the customer's answer has arrived
    accepted: np.ndarray  # bool: it was "accepted"
    truncated: bool


@dataclass(frozen=True)
class Limits:
    """What a report reads at the most, and what it ranks."""

    max_clicks: int
    max_episodes: int
    max_offers: int
    min_clicks: int  # all-time clicks before an offer is ranked (tools/report/ranking.py)


@dataclass(frozen=True)
class ReportData:
    since: datetime.datetime
    until: datetime.datetime
    clicks: Clicks
    episodes: Episodes
    offers: list[int]  # the most clicked offers in the window, most clicked first
    stats: list[OfferStats]  # their all-time counters, in the same order
    offers_left_out: int  # offers clicked in the window beyond max_offers
    caps: tuple = ()  # per offer, its daily cap and today's spend (CpaStore.cap_status), None if uncapped


def read(db: firestore.Client, since: datetime.datetime, limits: Limits, space: Namespace = ROOT) -> ReportData:
    """The tenant's logs in the window (`space`: its namespace)."""
    until = datetime.datetime.now(datetime.UTC)
    clicks = read_clicks(db, since, limits.max_clicks, space)
    ranked = [offer for offer, _ in Counter(clicks.offer_id.tolist()).most_common()]
    offers = ranked[: limits.max_offers]
    store = CpaStore(db, np.random.default_rng(), space=space)
    return ReportData(
        since=since,
        until=until,
        clicks=clicks,
        episodes=read_episodes(db, since, limits.max_episodes, space),
        offers=offers,
        stats=[store.offer_stats(offer) for offer in offers],
        offers_left_out=len(ranked) - len(offers),
        caps=tuple(store.cap_status(offer) for offer in offers),
    )


def read_log(warehouse, since: datetime.datetime, limits: Limits, space: Namespace = ROOT) -> ReportData:
    """The tenant's decisions in the window from the decision log (tools/analytics/warehouse.py)."""
    until = datetime.datetime.now(datetime.UTC)
    click_rows = queries.clicks(warehouse, space.tenant, since, until, limit=limits.max_clicks)
    clicks = Clicks(
        offer_id=np.array([int(row["offer_id"]) for row in click_rows], dtype=np.int64),
        sampled_at=np.array([row["time"].timestamp() for row in click_rows], dtype=float),
        reward=np.array([float(row["reward"] or 0.0) for row in click_rows], dtype=float),
        truncated=len(click_rows) >= limits.max_clicks,
    )
    episode_rows = queries.episodes(warehouse, space.tenant, since, until, limit=limits.max_episodes)
    episodes = Episodes(
        segment=[row["segment"] or "?" for row in episode_rows],
        policy=[row["policy"] or "?" for row in episode_rows],
        rewarded=np.array([row["reward"] is not None for row in episode_rows], dtype=bool),
        accepted=np.array([bool(row["reward"]) for row in episode_rows], dtype=bool),
        truncated=len(episode_rows) >= limits.max_episodes,
    )
    ranked = [offer for offer, _ in Counter(clicks.offer_id.tolist()).most_common()]
    offers = ranked[: limits.max_offers]
    totals = {int(row["offer_id"]): row for row in queries.offer_totals(warehouse, space.tenant)}
    return ReportData(
        since=since,
        until=until,
        clicks=clicks,
        episodes=episodes,
        offers=offers,
        stats=[_logged_stats(totals.get(offer)) for offer in offers],
        offers_left_out=len(ranked) - len(offers),
    )


def _logged_stats(row: dict | None) -> OfferStats:
    if row is None:  # clicked in the window only as the holdout
        return OfferStats(clicks=0, conversions=0, reward=0, reward_sq=0)
    return OfferStats(
        clicks=int(row["clicks"]),
        conversions=int(row["conversions"]),
        reward=float(row["reward"]),
        reward_sq=float(row["reward_sq"]),
        log_conversions=int(row["conversions"]),
        log_reward=float(row["log_reward"]),
        log_reward_sq=float(row["log_reward_sq"]),
    )


def newest(db: firestore.Client, collection: str, field: str, since: datetime.datetime, limit: int, fields: list):
    """The `limit` documents of `collection` with the largest `field` at or after `since`, newest
    first, only `fields` read (the report's and `make evaluate`'s window on the logs)."""
    query = (
        db.collection(collection)
        .where(filter=FieldFilter(field, ">=", since))
        .order_by(field, direction=firestore.Query.DESCENDING)
        .limit(limit)
        .select(fields)
    )
    return [snapshot.to_dict() for snapshot in query.stream()]


def read_clicks(db: firestore.Client, since: datetime.datetime, limit: int, space: Namespace = ROOT) -> Clicks:
    rows = newest(db, space.path(CLICKS), "sampled_at", since, limit, CLICK_FIELDS)
    truncated = len(rows) >= limit
    rows = [row for row in reversed(rows) if row.get("offer_id") is not None and row.get("sampled_at") is not None]
    return Clicks(
        offer_id=np.array([int(row["offer_id"]) for row in rows], dtype=np.int64),
        sampled_at=np.array([row["sampled_at"].timestamp() for row in rows], dtype=float),
        reward=np.array([float(row.get("reward") or 0.0) for row in rows], dtype=float),
        truncated=truncated,
    )


def read_episodes(db: firestore.Client, since: datetime.datetime, limit: int, space: Namespace = ROOT) -> Episodes:
    rows = newest(db, space.path(EPISODES), "created_at", since, limit, EPISODE_FIELDS)
    rows = [row for row in rows if row.get("segment")]
    return Episodes(
        segment=[row["segment"] for row in rows],
        policy=[row.get("policy") or "?" for row in rows],
        rewarded=np.array([bool(row.get("up_to_date")) for row in rows], dtype=bool),
        accepted=np.array([bool(row.get("accepted")) for row in rows], dtype=bool),
        truncated=len(rows) >= limit,
    )
