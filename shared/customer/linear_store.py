"""The linear agents' statistics in Firestore (shared/customer/agents/linear.py says what they are).

One sharded counter per offer, `agent_linear/{offer}` (shared/platform/counters.py): its fields are that
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

Every decision and reward adds to them, whatever agent served the episode, so switching
`AGENT_POLICY` to a linear agent starts from all the evidence gathered so far:
- `/predict` adds the slate's shown part (`n` and `xx` of its three offers: what a refusal adds) in
  the batch that creates the episode (which records `linear_counted`), as the segment's `shown`
  is added there: an episode never rewarded is a refusal once its reward window passes, no write;
- `/rewards` adds the credited `xr` in the transaction that marks the episode rewarded (so a
  replay adds nothing), plus `n` and `xx` for episodes created without them (batch scoring, or
  before this change), as the segment counts do with `shown`.
An episode whose states cannot be read back as a customer (age, gender, region) adds nothing
here; its segment counts are still kept.
"""

import json
import threading
from collections.abc import Iterable, Mapping, Sequence

from google.cloud import firestore

from shared.customer.agents import linear
from shared.platform import counters, stats_cache
from shared.platform.namespace import ROOT, Namespace

COLLECTION = "agent_linear"


def counter_path(offer: str, space: Namespace = ROOT) -> str:
    """Offer names are a letter then letters, digits, `_` or `-` (shared/customer/models.py): no `/`."""
    return space.path(f"{COLLECTION}/{offer}")


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


def _add(
    writes, db: firestore.Client, cache: stats_cache.StatsCache, amounts: Mapping, read: bool, space: Namespace
) -> None:
    grouped = per_offer(amounts)
    paths = {offer: counter_path(offer, space) for offer in grouped}
    if read:  # outside a transaction: through the cache, which keeps the counters rolled up
        summaries = cache.get(list(paths.values()))
        shards = {offer: summaries[path].shards for offer, path in paths.items()}
    else:  # no I/O inside a transaction; fewer shards than the summary says is safe
        shards = {offer: cache.shards(path) for offer, path in paths.items()}
    for offer, fields in grouped.items():
        counters.add(writes, db, paths[offer], fields, shards[offer])


def add_shown(
    writes, db: firestore.Client, cache: stats_cache.StatsCache, customer, slate: Sequence[str], space: Namespace = ROOT
) -> None:
    """Within `writes` (the batch that creates a /predict episode), add the slate's shown part:
    `n` and `xx` of each offer (a refusal's amounts). The episode records `linear_counted`."""
    if slate:
        _add(writes, db, cache, linear.update_amounts(customer, slate, False), True, space)


def add_reward(
    writes,
    db: firestore.Client,
    cache: stats_cache.StatsCache,
    episode: Mapping,
    slate: Sequence[str],
    accepted: bool,
    accepted_offer: str | None,
    space: Namespace = ROOT,
) -> None:
    """Within `writes` (the reward's transaction), add the reward: `xr` of the credited offers, plus
    `n` and `xx` when the episode's creation did not add them (batch episodes, older episodes)."""
    customer = customer_of(episode)
    if customer is None or not slate:
        return
    amounts = linear.update_amounts(customer, slate, accepted, accepted_offer)
    if episode.get("linear_counted"):
        amounts = {field: delta for field, delta in amounts.items() if ".xr." in field}
    _add(writes, db, cache, amounts, False, space)


_solved: dict[str, tuple[object, linear.Model]] = {}
_solved_lock = threading.Lock()


def model(cache: stats_cache.StatsCache, offers: Iterable[str], space: Namespace = ROOT) -> linear.Model:
    """The posterior of the offers' models from their cached summaries. Each offer's summary is
    parsed and solved once (a roll-up gives a new summary object), so a decision costs no more
    than the draws. Remembered by counter path: a tenant's offers are its own."""
    offers = list(dict.fromkeys(offers))
    summaries = cache.get([counter_path(offer, space) for offer in offers])
    parts = {}
    for offer in offers:
        path = counter_path(offer, space)
        summary = summaries[path]
        with _solved_lock:
            entry = _solved.get(path)
        if entry is None or entry[0] is not summary:
            solved = linear.Model.from_sums({offer: linear.offer_sums(summary.totals)})
            solved.posterior([offer])  # solved once, here
            entry = (summary, solved)
            with _solved_lock:
                _solved[path] = entry
        parts[offer] = entry[1]
    return linear.Model.combine(parts)
