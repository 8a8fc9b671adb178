"""`make bench-capacity`, click context and caps: the traffic's context at production cardinalities,
the caps in the tenant's configuration, and the figures of issue 24 (item 4).

Every executed /sample of the replay carries a context: a country of 200 (Zipf), a device of 4, an
operating system of 10 and a source of 5,000 (Zipf), and NEW_SOURCE_SHARE of them a source never
seen before; CAPPED_OFFERS offers (the hot one among them) have a daily cap, so /feedback counts
their spend. The figures:

- writes per /sample and per /feedback, reads on the request path of clicks with a first-seen
  source against the others (a new source must cost no read), from the replay;
- the folds of the context counts (once a minute per offer, background): reads of one fold as the
  real `fold` does it against the emulator (its summary and each slot document written that
  minute), and the steady state of the profile from it: each offer's slot documents per minute are
  min(its shards, its clicks in a minute);
- the busiest slot document's writes/s (counters.pick_shard over 60 s of the hot offer's clicks);
- the folded summary of an offer that has seen every value (200 x 4 x 10 x 5,000), its size by
  Firestore's storage-size rules against the 1 MiB document limit.
"""

import collections
import datetime
import gc
import random
import tracemalloc

import numpy as np

from shared.cpa import context, context_counts
from shared.cpa import store as cpa
from shared.platform import config, counters, namespace
from shared.platform.namespace import ROOT

COUNTRIES = sorted(context.COUNTRIES)[:200]
OPERATING_SYSTEMS = ("android", "ios", "windows", "macos", "linux", "chromeos", "tizen", "kaios", "harmonyos", "other")
SOURCES = 5_000
NEW_SOURCE_SHARE = 0.01
CAPPED_OFFERS = 20
FOLD_OFFER = 99_999_999  # the offer whose fold is measured


def _zipf_picker(n: int, rng: random.Random):
    weights = 1.0 / np.arange(1, n + 1)
    cumulative = list(np.cumsum(weights / weights.sum()))
    return lambda: min(int(np.searchsorted(cumulative, rng.random())), n - 1)


class ContextTraffic:
    """The context of each executed click; `new` says whether its source was never seen before."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.country = _zipf_picker(len(COUNTRIES), rng)
        self.source = _zipf_picker(SOURCES, rng)
        self.fresh = 0

    def next(self) -> tuple[dict, bool]:
        new = self.rng.random() < NEW_SOURCE_SHARE
        if new:
            self.fresh += 1
        source = f"new-{self.fresh}-{self.rng.randrange(10**9)}" if new else f"src-{self.source()}"
        device = self.rng.choices(context.DEVICES, weights=(35, 50, 10, 5))[0]
        found = {"geo": COUNTRIES[self.country()], "device": device, "os": self.rng.choice(OPERATING_SYSTEMS)}
        return found | {"source": source}, new


def seed_caps(db, offers: list[int], space: namespace.Namespace = namespace.ROOT) -> None:
    """Daily caps on the first CAPPED_OFFERS offers, in the tenant's config/serving."""
    caps = {str(offer): {"conversions": 10**6, "tz": "Europe/Paris"} for offer in offers[:CAPPED_OFFERS]}
    db.document(space.path("config/serving")).set({"cpa": {"caps": caps}}, merge=True)


def store_for(db, cache, seed: int, clock, space: namespace.Namespace = namespace.ROOT) -> cpa.CpaStore:
    """A CpaStore on the replay's virtual clock, its context counts refreshed inline."""
    contexts = context_counts.ContextCache(db, clock=clock, background=False)
    utc = lambda: datetime.datetime.fromtimestamp(clock(), datetime.UTC)  # noqa: E731
    store = cpa.CpaStore(db, np.random.default_rng(seed), cache, clock=utc, space=space, context_cache=contexts)
    # each instance its own copy of config/serving, kept SERVING_CONFIG_TTL_SECONDS of virtual time
    store.config = config.ConfigDocuments(db, store.config.paths, clock=clock)
    return store


def fold_reads(db, counter, slot_documents: int, now: float) -> tuple[int, int]:
    """(reads, writes) of one fold of an offer with `slot_documents` slot documents to fold."""
    batch = db.batch()
    for n in range(slot_documents):
        counts = {"geo": {"FR": {"n": 1}}, "device": {"mobile": {"n": 1}}, "source": {f"s{n}": {"n": 1}}}
        path = f"{cpa.OFFERS}/{FOLD_OFFER}/{context_counts.SLOTS}/{context_counts.slot_of(now)}-{n}"
        batch.set(db.document(path), {"slot": context_counts.slot_of(now), "c": counts})
    batch.commit()
    later = now + context_counts.SLOT_SECONDS + context_counts.GRACE_SECONDS + 1
    counter.clear()
    context_counts.fold(db, ROOT, FOLD_OFFER, later)
    reads = sum(1 for e in counter.events if e[0] == "read")
    writes = sum(1 for e in counter.events if e[0] == "write")
    return reads, writes


def document_size(value, name: str = "") -> int:
    """Firestore's storage size: a field name's bytes + 1, a string's bytes + 1, a number 8, a map
    or array the sum of its entries, plus a document's 32 bytes (its name counted apart, small)."""
    size = len(name.encode()) + 1 if name else 0
    if isinstance(value, dict):
        return size + sum(document_size(v, k) for k, v in value.items())
    if isinstance(value, list):
        return size + sum(document_size(v) for v in value)
    if isinstance(value, str):
        return size + len(value.encode()) + 1
    return size + 8


def full_counts() -> dict:
    """The folded counts of an offer that has seen every value of every feature, each string its own
    object, as a decoded document's are."""
    values = {
        "geo": COUNTRIES,
        "device": sorted(context.DEVICES),
        "os": OPERATING_SYSTEMS,
        "source": [f"src-{n}" for n in range(SOURCES)],
    }
    return {feature: {name.encode().decode(): [123456, 789] for name in names} for feature, names in values.items()}


def full_summary_size() -> int:
    """The folded summary of an offer that has seen every value of every feature."""
    return 32 + document_size({"counts": full_counts(), "through": 1, "as_of": 1})


def context_memory(offers: int = 100) -> float:
    """Bytes an instance's context cache holds for `offers` offers that have each seen every value
    (their effects tables, as ContextCache keeps them after a refresh, and the value strings)."""
    context_counts.effects_of(full_counts())  # the shared row numbers exist, as in a serving instance
    gc.collect()
    tracemalloc.start()
    try:
        kept = []
        for _ in range(offers):
            counts = full_counts()
            kept.append(context_counts.effects_of(counts))
            del counts
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return held


def hottest_shard_rate(rate: float, seconds: int = 60, seed: int = 1) -> tuple[int, float]:
    """Shards for `rate` and the busiest shard's writes/s over `seconds`, from the code's choices
    (counter shards, and the context slot documents, one per shard a minute)."""
    shards = counters.shards_for(rate)
    rng = random.Random(seed)
    hits = collections.Counter(counters.pick_shard(shards, rng) for _ in range(int(rate * seconds)))
    return shards, max(hits.values()) / seconds


def steady_fold_costs(profile: dict, offer_rates: dict, reads_per_fold_document: float) -> tuple[float, float]:
    """(reads, writes) per click of the folds and the instances' refreshes of the folded summaries."""
    minute_clicks = profile["clicks_per_s"] * 60
    documents = sum(min(counters.shards_for(rate), rate * 60) for rate in offer_rates.values())
    folds = len(offer_rates)  # one per offer per minute
    refreshes = profile["instances"] * len(offer_rates)  # each instance reads each summary once a minute
    reads = documents * reads_per_fold_document + refreshes  # the folding instance's summary read is its refresh
    writes = 2 * folds  # the lease and the summary
    return reads / minute_clicks, writes / minute_clicks


def report(db, counter, replay: dict, k: int, row: tuple, tally, profile: dict, offer_rates: dict, prices) -> None:
    """The context-and-caps section of `make bench-capacity` (figures from the K = `k` replay)."""
    events = replay["events"]
    _, _, sample_writes, refresh_reads, reads, _, all_reads, all_writes, _ = row
    known = tally(events, "read", {"sample"}, {"request"}) / max(1, replay["samples"])
    fresh = tally(events, "read", {"sample-new-source"}, {"request"}) / max(1, replay["new_source_samples"])
    fresh_writes = tally(events, "write", {"sample-new-source"}, {"request"}) / max(1, replay["new_source_samples"])
    feedback_writes = tally(events, "write", {"feedback"}, {"request"}) / max(1, replay["feedback"])
    fold_r, fold_w = fold_reads(db, counter, 88, 5_000_000.0)
    per_document = (fold_r - 1) / 88
    context_reads, context_writes = steady_fold_costs(profile, offer_rates, per_document)
    price_read, price_write = prices
    total_reads, total_writes = all_reads + context_reads, all_writes + context_writes
    cost = 1e6 * (total_reads * price_read + total_writes * price_write)
    shards, busiest = hottest_shard_rate(profile["hot_offer_clicks_per_s"], seed=2)
    size = full_summary_size()
    print(
        f"\nClick context and caps (issue 24): K = {k}, every executed /sample with a context (200 countries, "
        f"4 devices, 10 OS, 5,000 sources Zipf, {NEW_SOURCE_SHARE:.0%} first-seen sources), {CAPPED_OFFERS} offers "
        "capped (the hot one among them):\n"
    )
    print("| figure | value | target |")
    print("|---|---|---|")
    print(f"| writes per /sample (click, offer shard, context slot document) | {sample_writes:.3f} | <= 3 |")
    print(f"| writes per /sample with a first-seen source | {fresh_writes:.3f} | <= 3 |")
    print(
        "| writes per /feedback (click, offer shard with a capped offer's day spend, context slot) "
        f"| {feedback_writes:.3f} | |"
    )
    print(f"| reads on the /sample path, known sources | {known:.3f} | |")
    print(f"| reads on the /sample path, first-seen sources | {fresh:.3f} | no read storm |")
    print(f"| **amortised reads per /sample** (path + statistics cache refresh) | **{reads:.3f}** | <= 1 |")
    print(
        f"| context: one fold of an offer with 88 slot documents | {fold_r} reads, {fold_w} writes "
        "| the summary + each slot document; lease + summary |"
    )
    print(
        "| context folds and summary refreshes, per click (background) "
        f"| {context_reads:.4f} reads, {context_writes:.5f} writes | |"
    )
    print(f"| all reads per click with context (roll-ups, feedback, folds) | {total_reads:.3f} | |")
    print(f"| all writes per click with context (roll-ups, feedback, folds) | {total_writes:.3f} | |")
    print(f"| **$ per million clicks, K = {k}, with context and caps** | **{cost:.2f}** | <= 10 |")
    print(
        f"| busiest slot document of the hot offer ({profile['hot_offer_clicks_per_s']:,} clicks/s, "
        f"{shards} per minute) "
        f"| {busiest:.2f} writes/s | <= 1 |"
    )
    print("| a folded context summary, a cap's day spend | 1 write per minute; in the offer's shards | <= 1 |")
    print(f"| folded summary of an offer that has seen all 5,214 values | {size / 1024:.0f} KiB | < 1,024 KiB |")
    memory = context_memory()
    print(
        "| an instance's context cache for 100 offers that have each seen all 5,214 values "
        f"| {memory / 2**20:.1f} MiB | of a 512 MiB instance |"
    )
