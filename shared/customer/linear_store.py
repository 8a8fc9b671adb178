"""The linear agents' statistics in Firestore (shared/customer/linear.py says what they are).

One sharded counter per offer, `agent_linear/{offer}` (shared/counters.py): its fields are that
offer's `n`, `xx.{f}.{g}` and `xr.{f}` sums, the ones `linear.update_amounts` emits under
`{offer}.`. Why per offer:
- size: one offer's sums are at most 1 + DIM (DIM + 1) / 2 + DIM numbers (about 700 fields,
  under 30 KB) in each shard and in the summary, whatever the number of offers; all offers in one
  document would grow towards the 1 MiB limit with the catalogue;
- write rate: a reward adds to the three offers of its slate, so each offer's counter takes only
  the rewards of slates that showed it, and its shard count follows that rate (the roll-up sizes
  shards dynamically);
- reads: a decision reads the summaries of its eligible offers only, through the instance's cache.
The counted values sit under the shards' map `c` and the summary's `totals`, both exempt from
indexing (infra/firestore.tf), so ~700 rising numbers cost no index entries.

Every reward adds to them, whatever agent served its episode, inside the reward's transaction
(the one that marks the episode rewarded, so a replay adds nothing): switching `AGENT_POLICY` to
a linear agent starts from all the evidence gathered so far. An episode whose states cannot be read
back as a customer (age, gender, region) adds nothing here; its segment counts are still kept.
"""

import json
import threading
from collections.abc import Iterable, Mapping, Sequence

from google.cloud import firestore

from shared import counters, stats_cache
from shared.customer import linear

COLLECTION = "agent_linear"


def counter_path(offer: str) -> str:
    """Offer names are a letter then letters, digits, `_` or `-` (shared/customer/models.py): no `/`."""
    return f"{COLLECTION}/{offer}"


def customer_of(episode: Mapping) -> linear.Customer | None:
    """The customer an episode was decided for, from its stored states (JSON text or a map)."""
    states = episode.get("states")
    try:
        if isinstance(states, str):
            states = json.loads(states)
        return linear.Customer(float(states["age"]), str(states["gender"]), str(states["region"]))
    except (TypeError, ValueError, KeyError):
        return None


def per_offer(amounts: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """`linear.update_amounts`' fields grouped by offer, the offer prefix removed."""
    grouped: dict[str, dict[str, float]] = {}
    for field, delta in amounts.items():
        offer, _, rest = field.partition(".")
        grouped.setdefault(offer, {})[rest] = delta
    return grouped


def add_reward(
    writes,
    db: firestore.Client,
    cache: stats_cache.StatsCache,
    episode: Mapping,
    slate: Sequence[str],
    accepted: bool,
    accepted_offer: str | None,
) -> None:
    """Within `writes` (the reward's transaction), add one reward to the slate's offers' counters.
    No I/O: the shard counts come from the cache (`peek`; fewer shards than the summary says is safe)."""
    customer = customer_of(episode)
    if customer is None or not slate:
        return
    for offer, amounts in per_offer(linear.update_amounts(customer, slate, accepted, accepted_offer)).items():
        path = counter_path(offer)
        summary = cache.peek(path)
        counters.add(writes, db, path, amounts, summary.shards if summary else counters.MIN_SHARDS)


_parsed: dict[str, tuple[object, linear.OfferSums]] = {}
_parsed_lock = threading.Lock()


def model(cache: stats_cache.StatsCache, offers: Iterable[str]) -> linear.Model:
    """The posterior of the offers' models from their cached summaries. Each summary is parsed once
    (a roll-up gives a new summary object), so a decision costs a small matrix inverse per offer."""
    offers = list(dict.fromkeys(offers))
    summaries = cache.get([counter_path(offer) for offer in offers])
    sums = {}
    for offer in offers:
        summary = summaries[counter_path(offer)]
        with _parsed_lock:
            entry = _parsed.get(offer)
        if entry is None or entry[0] is not summary:
            entry = (summary, linear.offer_sums(summary.totals))
            with _parsed_lock:
                _parsed[offer] = entry
        sums[offer] = entry[1]
    return linear.Model.from_sums(sums)
