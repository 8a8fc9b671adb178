"""What the report reads from Firestore, bounded: recent click documents, recent episodes, and the
per-offer counters of the most clicked offers.

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
class ReportData:
    since: datetime.datetime
    until: datetime.datetime
    clicks: Clicks
    episodes: Episodes
    offers: list[int]  # the most clicked offers in the window, most clicked first
    stats: list[OfferStats]  # their all-time counters, in the same order
    offers_left_out: int  # offers clicked in the window beyond max_offers


def read(
    db: firestore.Client,
    since: datetime.datetime,
    max_clicks: int = 50_000,
    max_episodes: int = 20_000,
    max_offers: int = 20,
    space: Namespace = ROOT,
) -> ReportData:
    """The tenant's logs in the window (`space`: its namespace)."""
    until = datetime.datetime.now(datetime.UTC)
    clicks = read_clicks(db, since, max_clicks, space)
    ranked = [offer for offer, _ in Counter(clicks.offer_id.tolist()).most_common()]
    offers = ranked[:max_offers]
    store = CpaStore(db, np.random.default_rng(), space=space)
    return ReportData(
        since=since,
        until=until,
        clicks=clicks,
        episodes=read_episodes(db, since, max_episodes, space),
        offers=offers,
        stats=[store.offer_stats(offer) for offer in offers],
        offers_left_out=len(ranked) - len(offers),
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
