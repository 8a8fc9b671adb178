"""Capacity model: Firestore operations of the real request code under a declared traffic profile.

    make bench-capacity        (or: python -m bench.capacity --seconds 3 --executed 0.02)

Starts its own Firestore and Storage emulators. Every document read and written is counted at the
RPC level (shared/platform/sdk_private.observe_documents), per request, per document and per collection.

The profile is replayed in VIRTUAL time (each simulated instance's stats cache runs on the
replay's clock, its background work inline): PROFILE below. Every virtual click runs the real
cache lookup of its instance (so refreshes and roll-ups happen exactly when the code asks for
them); a random `--executed` fraction of clicks also runs the whole CpaStore.sample (and 5 % of
those /feedback) against the emulator. Refresh and roll-up reads are divided by the virtual
clicks; request-path reads and writes by the executed requests. Shards are pre-sized as for
offers in service (counters.shards_for(rate)), since thinned traffic cannot measure the rate.

Per-document write rates come from the code's own choices in virtual time: the hottest shard
from counters.pick_shard over 60 s of the hot offer's clicks, the summaries and leases from the
roll-ups the replay performed.
"""

import argparse
import collections
import contextvars
import datetime
import io
import os
import pathlib
import random
import time

import numpy as np

from bench import capacity_context
from bench.capacity_context import hottest_shard_rate
from devstack import emulators
from shared.cpa import store as cpa
from shared.cpa.models import FeedbackRequest, SampleRequest
from shared.customer import linear_store, segments
from shared.customer import store as customer
from shared.customer.models import PredictRequest, RewardRequest
from shared.platform import config, counters, namespace, sdk_private, stats_cache

PROJECT = "offer-bandits-capacity"
ROOT = pathlib.Path(__file__).resolve().parent.parent

PROFILE = {
    "clicks_per_s": 10_000,
    "hot_offer_clicks_per_s": 2_000,  # offer 1; the rest spread evenly over the other offers
    "offers": 200,
    "instances": 25,  # 400 clicks/s each
    "feedback_share": 0.05,
    "conversion_share_of_feedback": 0.2,
    "predict_per_s": 1_000,
    "rewards_per_s": 1_000,
    "batch_rows": 1_000_000,
}
ACCEPTED_SHARE = 0.2  # of the replay's rewards
PRICE_READ = 0.06 / 100_000
PRICE_WRITE = 0.18 / 100_000
# Fields that rise with time (a timestamp, a counter) and the collection groups holding them.
# Such a field, if indexed, caps its collection at ~500 writes/s.
SEQUENTIAL_FIELDS = {
    "cpa_clicks": ["sampled_at", "feedback_at", "expire_at", "events"],  # events: each with its time
    "episodes": ["created_at", "last_update", "expire_at"],
    "rewards": ["last_update"],
    "shards": ["c"],  # counter values rise in step on every shard of a counter
    "cpa_offers": ["as_of", "totals", "derived"],  # derived: the drift state (shared/cpa/drift.py)
    "agent_segments": ["as_of", "totals"],
    "cpa_counters": ["as_of", "totals"],
    "counter_rollups": ["slot", "expire_at"],
    "context_slots": ["c", "expire_at"],  # a minute's context counts rise in step; `slot` is queried
    "cpa_context": ["counts", "through", "as_of"],
}
# Exemptions this design needs (checked against infra/firestore.tf when it declares them).
NEEDED_EXEMPTIONS = {
    "cpa_clicks": ["sampled_at", "feedback_at", "expire_at", "events"],  # events: each with its time
    # the reward lookup's composite indexes (customer_id first) hold last_update; they need no
    # single-field index on it
    "episodes": ["created_at", "last_update", "expire_at"],
    "rewards": ["last_update"],
    "shards": ["c"],
    "cpa_offers": ["as_of", "totals", "derived"],
    "agent_segments": ["as_of", "totals"],
    "cpa_counters": ["as_of", "totals"],
    "counter_rollups": ["slot", "expire_at"],
    "context_slots": ["c", "expire_at"],
    "cpa_context": ["counts", "through", "as_of"],
}

label: contextvars.ContextVar[str] = contextvars.ContextVar("label", default="setup")


class Counter:
    """Every read and write, tagged (label, phase, virtual time)."""

    def __init__(self):
        self.now = 0.0
        self.events: list[tuple[str, str, str, str, float]] = []  # (kind, label, phase, document, time)

    def read(self, name: str) -> None:
        self.events.append(("read", label.get(), stats_cache.phase.get(), _path(name), self.now))

    def write(self, name: str) -> None:
        self.events.append(("write", label.get(), stats_cache.phase.get(), _path(name), self.now))

    def clear(self) -> None:
        self.events.clear()


def _path(name: str) -> str:
    return name.split("/documents/", 1)[-1]


def collection_of(path: str) -> str:
    parts = path.split("/")
    return parts[-2] if len(parts) >= 2 else path


def virtual_clock(counter: Counter):
    return lambda: counter.now


def offer_rates(base: int = 0) -> dict[int, float]:
    """Click rate per offer: offer base+1 is the hot one."""
    p = PROFILE
    rest = (p["clicks_per_s"] - p["hot_offer_clicks_per_s"]) / (p["offers"] - 1)
    return {base + o: p["hot_offer_clicks_per_s"] if o == 1 else rest for o in range(1, p["offers"] + 1)}


def tenants_offers(base: int, tenants: int) -> list[tuple[namespace.Namespace, list[int]]]:
    """The profile's offers dealt to `tenants` tenants (the hot one to the first), so that the
    service holds as many counters, written as fast, whatever the number of tenants: each tenant's
    offers, the hot one first where it has it. One tenant: the default one, with every offer."""
    rates = offer_rates(base)
    offers = list(rates)
    if tenants == 1:
        return [(namespace.ROOT, offers)]
    return [(namespace.Namespace(f"tenant{n}"), offers[n::tenants]) for n in range(tenants)]


def seed_offers(db, rates: dict[int, float], now: float, interval: float, rng: random.Random, space=namespace.ROOT):
    """Offers in service (offer -> clicks/s): summaries with shard counts sized for their rates, each
    rolled up at a random moment of the last roll-up interval (as in steady state)."""
    batch, pending = db.batch(), 0
    for offer, rate in rates.items():
        as_of = now - rng.uniform(0, interval)
        # in service for an hour: no longer young (stats_cache.age_limit); the totals sit in a
        # shard too, so that roll-ups find them
        totals = {"clicks": 5000, "conversions": 100, "reward": 50000.0, "reward_sq": 3e7, counters.WRITES: rate * 3600}
        batch.set(counters.shard_ref(db, cpa.offer_counter(offer, space), 0), {counters.FIELD: totals})
        batch.set(
            db.document(cpa.offer_counter(offer, space)),
            {
                "shards": counters.shards_for(rate),
                "totals": totals,
                "as_of": datetime.datetime.fromtimestamp(as_of, datetime.UTC),
                "rate": rate,
            },
        )
        pending += 2
        if pending >= 400:
            batch.commit()
            batch, pending = db.batch(), 0
    batch.set(counters.shard_ref(db, space.path(cpa.GLOBAL_CLICKS), 0), {counters.FIELD: {"clicks": 10**6}})
    batch.set(
        db.document(space.path(cpa.GLOBAL_CLICKS)),
        {"shards": 8, "totals": {"clicks": 10**6}, "as_of": datetime.datetime.fromtimestamp(now, datetime.UTC)},
    )
    batch.commit()


def replay_clicks(
    db, counter: Counter, k: int, seconds: float, executed: float, max_age: float, rng, tenants: int = 1
) -> dict:
    """The click profile, its offers dealt to `tenants` tenants (tenants_offers) and each click to the
    tenant of its candidates, in proportion to the tenants' click rates."""
    p = PROFILE
    start = 1_000_000.0 + k * 1000
    counter.now = start
    base = k * 10_000  # each K its own offers: no clearing of the emulator between rows
    dealt = tenants_offers(base, tenants)
    spaces = [space for space, _ in dealt]
    rates = offer_rates(base)
    shares = [sum(rates[o] for o in offers) for _, offers in dealt]
    for space, offers in dealt:
        seed_offers(db, {offer: rates[offer] for offer in offers}, start, max_age / 2, rng, space)
    caches = [
        stats_cache.StatsCache(db, max_age=max_age, clock=virtual_clock(counter), background=False)
        for _ in range(p["instances"])
    ]
    stores = [
        [capacity_context.store_for(db, cache, i, virtual_clock(counter), space) for space in spaces]
        for i, cache in enumerate(caches)
    ]
    hot = base + 1
    for space, offers in dealt:  # each tenant's first offers capped (the hot one where it has it)
        capacity_context.seed_caps(db, sorted(offers, key=lambda o: o != hot), space)
    traffic = capacity_context.ContextTraffic(rng)
    new_source_samples = 0
    total = int(p["clicks_per_s"] * seconds)
    warm = total // 3  # the first third settles the caches; not counted
    counter.clear()
    executed_samples = executed_feedback = 0
    click_id = k * 10**8
    for n in range(total):
        counter.now = start + n / p["clicks_per_s"]
        counting = n >= warm
        if n == warm:
            counter.clear()
        instance = n % p["instances"]
        tenant = rng.choices(range(len(spaces)), shares)[0] if len(spaces) > 1 else 0
        own = dealt[tenant][1]  # every click of the hot offer's tenant has it among its candidates
        hot_first = [hot] if hot in own else []
        offers = [*hot_first, *rng.sample([o for o in own if o != hot], min(k, len(own)) - len(hot_first))]
        # what CpaStore.sample looks up once the warm-up is over: the candidates alone
        paths = [cpa.offer_counter(o, spaces[tenant]) for o in offers]
        token = label.set("sample-cache")
        caches[instance].get(paths)
        label.reset(token)
        if rng.random() < executed:
            click_id += 1
            click_context, new_source = traffic.next()
            token = label.set("sample-new-source" if new_source else "sample")
            stores[instance][tenant].sample(SampleRequest(click_id=click_id, offer_ids=offers, **click_context))
            label.reset(token)
            executed_samples += counting and not new_source
            new_source_samples += counting and new_source
            if rng.random() < p["feedback_share"]:
                reward = 500 if rng.random() < p["conversion_share_of_feedback"] else 0
                token = label.set("feedback")
                stores[instance][tenant].feedback(FeedbackRequest(click_id=click_id, reward=reward))
                label.reset(token)
                executed_feedback += counting
    virtual_clicks = total - warm
    return {
        "events": list(counter.events),
        "virtual_clicks": virtual_clicks,
        "virtual_seconds": virtual_clicks / p["clicks_per_s"],
        "samples": executed_samples,
        "new_source_samples": new_source_samples,
        "feedback": executed_feedback,
    }


def replay_customers(db, counter: Counter, seconds: float, executed: float, max_age: float, rng) -> dict:
    """/predict and /rewards: 1,000/s each over the 24 segments, every episode rewarded once."""
    p = PROFILE
    start = 2_000_000.0
    counter.now = start
    caches = [
        stats_cache.StatsCache(db, max_age=max_age, clock=virtual_clock(counter), background=False)
        for _ in range(p["instances"])
    ]
    stores = [customer.CustomerStore(db, np.random.default_rng(i), cache=c) for i, c in enumerate(caches)]
    for store in stores:  # each instance's own copy of the kill switch, on virtual time
        store.config = config.ConfigDocuments(db, store.config.paths, clock=virtual_clock(counter))
    stores[0].ensure_agent_registered()
    keys = [
        segments.segment_of(age, gender, region)
        for age in (20, 40, 50, 70)  # one age in each band
        for gender in segments.GENDERS
        for region in segments.REGIONS
    ]
    # segments in service for an hour (not young), each taking a 24th of /predict and /rewards
    rate = p["predict_per_s"] * 1.2 / len(set(keys))  # shown at /predict, accepted (1 in 5) at /rewards
    batch = db.batch()
    # and each offer's linear statistics: /predict adds the slate's shown part to 3 of them
    linear_rate = p["predict_per_s"] * 3 / len(segments.OFFERS)
    for offer in segments.OFFERS:
        path = linear_store.counter_path(offer)
        totals = {counters.WRITES: linear_rate * 3600}
        batch.set(counters.shard_ref(db, path, 0), {counters.FIELD: totals})
        as_of = datetime.datetime.fromtimestamp(start - rng.uniform(0, max_age / 2), datetime.UTC)
        summary = {"shards": counters.shards_for(linear_rate), "totals": totals, "as_of": as_of, "rate": linear_rate}
        batch.set(db.document(path), summary)
    for segment in set(keys):
        path = customer.segment_counter(segment)
        totals = {counters.WRITES: rate * 3600}
        batch.set(counters.shard_ref(db, path, 0), {counters.FIELD: totals})
        as_of = datetime.datetime.fromtimestamp(start - rng.uniform(0, max_age / 2), datetime.UTC)
        batch.set(
            db.document(path), {"shards": counters.shards_for(rate), "totals": totals, "as_of": as_of, "rate": rate}
        )
    batch.commit()
    total = int(p["predict_per_s"] * seconds)
    warm = total // 3
    counter.clear()
    predicts = rewards = 0
    for n in range(total):
        counter.now = start + n / p["predict_per_s"]
        if n == warm:
            counter.clear()
        instance = n % p["instances"]
        states = {"age": rng.randint(18, 80), "gender": rng.choice("FM"), "region": rng.choice(segments.REGIONS)}
        segment = segments.segment_of(states["age"], states["gender"], states["region"])
        token = label.set("predict-cache")
        caches[instance].get([customer.segment_counter(segment)])
        label.reset(token)
        if rng.random() < executed:
            request = PredictRequest(
                customer_id=f"c{n}",
                timestamp="2024-01-01",
                states=states,
                offers={offer: True for offer in segments.OFFERS},
            )
            token = label.set("predict")
            episode_id = stores[instance].predict(request).episode_id
            label.reset(token)
            token = label.set("rewards")
            stores[(instance + 1) % p["instances"]].reward(
                RewardRequest(
                    customer_id=f"c{n}",
                    timestamp="2024-01-01",
                    accepted=rng.random() < ACCEPTED_SHARE,
                    episode_id=episode_id,
                )
            )
            label.reset(token)
            predicts += n >= warm
            rewards += n >= warm
    return {
        "events": list(counter.events),
        "virtual": total - warm,
        "predicts": predicts,
        "rewards": rewards,
    }


def run_batch(db, counter: Counter, rows: int) -> dict:
    """A `rows`-row client file through shared/batch/job.py, counted per row."""
    from google.cloud import storage

    from shared.batch import job as batch_job

    gcs = storage.Client(project=PROJECT)
    for name in ("cap-inbox", "cap-results"):
        if not gcs.bucket(name).exists():
            gcs.create_bucket(name)
    rng = random.Random(3)
    lines = ["customer_id,age,gender,region," + ",".join(segments.OFFERS)]
    for n in range(rows):
        flags = ",".join(rng.choice(["True", "False", "True"]) for _ in segments.OFFERS)
        lines.append(f"{n},{rng.randint(18, 80)},{rng.choice('FM')},{rng.choice(segments.REGIONS)},{flags}")
    blob = gcs.bucket("cap-inbox").blob("company_b/capacity.csv")
    blob.upload_from_file(io.BytesIO(("\n".join(lines) + "\n").encode()), content_type="text/csv")
    blob.reload()
    counter.clear()
    token = label.set("batch")
    upload = batch_job.Upload("cap-inbox", blob.name, str(blob.generation), "capacity")
    status = batch_job.Job(upload, db, gcs, "cap-results").run()
    label.reset(token)
    return {"events": list(counter.events), "rows": rows, "status": status}


# -- reporting ---------------------------------------------------------------------------------
def tally(events, kind=None, labels=None, phases=None):
    return sum(
        1
        for e in events
        if (kind is None or e[0] == kind) and (labels is None or e[1] in labels) and (phases is None or e[2] in phases)
    )


def per_document_rates(events, seconds: float) -> dict[str, float]:
    writes = collections.Counter(e[3] for e in events if e[0] == "write")
    return {doc: n / seconds for doc, n in writes.items()}


def terraform_exemptions() -> dict[str, set[str]] | None:
    """Single-field exemptions declared in infra/firestore.tf (its `unindexed_fields` local, which
    the google_firestore_field resources are made from), or None when there are none."""
    import hcl2

    declared: dict[str, set[str]] = {}
    for block in hcl2.loads((ROOT / "infra" / "firestore.tf").read_text()).get("locals", []):
        for collection, fields in (block.get("unindexed_fields") or {}).items():
            declared[collection] = {field.strip('"') for field in fields}
    return declared or None


def launch_reads(rate: float, instances: int, max_age: float, seconds: float) -> float:
    """Reads spent keeping a NEW offer's copies young enough (stats_cache.age_limit) over its first
    `seconds`, beyond the summary reads of steady state, by every instance: each uses the offer at
    rate / instances requests/s, and the first request that finds its copy at the limit (and a
    tick T after its last read) has the background re-read the summary (rolled up every M/2) and,
    when even that is past the limit, every shard (a shard sum). The second roll-up, M/2 after the
    first, measures its rate; the shards grow with that rate smoothed over the roll-ups since
    (launch_shards)."""
    cache = stats_cache.StatsCache(None, max_age=max_age)
    gap, every, tick = instances / rate, max_age / 2, cache.tick
    reads, t, refresh_at = 0, 0.0, 0.0
    while t < seconds:
        measured = t >= every
        summary = counters.Summary(totals={counters.WRITES: rate * t}, rate=rate if measured else None)
        limit = cache.age_limit(summary)
        if t >= refresh_at:
            if t % every > limit:
                reads += launch_shards(rate, max_age, t)
                as_of = t
            else:
                as_of = t - t % every
            refresh_at = max(as_of + limit, t + tick)
        t += gap
    return reads * instances


def launch_shards(rate: float, max_age: float, t: float) -> int:
    """A new counter's shard count t seconds after its first write, at `rate` writes/s from then on:
    roll-ups every M/2 from its first write, the first measuring no rate, each later one the rate
    since the one before (counters.sizing_rate on what they measured)."""
    every = max_age / 2
    shards, sustained, previous = counters.MIN_SHARDS, None, None
    for _ in range(1, int(t // every) + 1):  # the roll-ups after the first, up to t
        sustained = counters.sustained_rate(sustained, rate, every)
        shards = max(shards, counters.shards_for(counters.sizing_rate(sustained, rate, previous)))
        previous = rate
    return shards


def monotonic_ids(events, collection: str) -> bool:
    """Whether the ids written to `collection`, in write order, only ever increase."""
    ids = [e[3].rsplit("/", 1)[-1] for e in events if e[0] == "write" and collection_of(e[3]) == collection]
    return len(ids) > 2 and all(a < b for a, b in zip(ids, ids[1:], strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="virtual seconds per K (first third not counted)")
    parser.add_argument("--executed", type=float, default=0.02, help="share of virtual clicks run end to end")
    parser.add_argument("--candidates", type=int, nargs="+", default=[3, 10, 30, 100])
    parser.add_argument("--max-age", type=float, default=stats_cache.DEFAULT_MAX_AGE, help="STATS_MAX_AGE_SECONDS")
    parser.add_argument("--batch-rows", type=int, default=2000)
    parser.add_argument("--tenants", type=int, default=2, help="tenants sharing the click profile (same offer ids)")
    args = parser.parse_args()

    firestore_emulator = emulators.start_firestore()
    storage_emulator = emulators.start_storage()
    os.environ.update(firestore_emulator.env, **storage_emulator.env, GOOGLE_CLOUD_PROJECT=PROJECT)
    from google.cloud import firestore

    started = time.monotonic()
    try:
        db = firestore.Client(project=PROJECT)
        counter = Counter()
        sdk_private.observe_documents(db, counter.read, counter.write)
        rng = random.Random(11)
        p = PROFILE
        print(f"Capacity model, STATS_MAX_AGE_SECONDS={args.max_age:g}; {args.tenants} tenant(s); profile: {p}")
        print(
            f"virtual time: {args.seconds:g} s per K (first third not counted), {args.executed:.0%} of clicks "
            f"run end to end, every click's cache lookup run\n"
        )
        rows = []
        all_events = []
        for k in args.candidates:
            r = replay_clicks(db, counter, k, args.seconds, args.executed, args.max_age, rng, args.tenants)
            ev, clicks = r["events"], r["virtual_clicks"]
            all_events.append((k, r))
            req_reads = tally(ev, "read", {"sample"}, {"request"}) / max(1, r["samples"])
            req_writes = tally(ev, "write", {"sample"}, {"request"}) / max(1, r["samples"])
            cache_reads = tally(ev, "read", {"sample-cache"}, {"request"}) / clicks
            refresh_reads = tally(ev, "read", None, {"refresh"}) / clicks
            rollup_reads = tally(ev, "read", None, {"rollup"}) / clicks
            rollup_writes = tally(ev, "write", None, {"rollup"}) / clicks
            fb_reads = tally(ev, "read", {"feedback"}, {"request"}) / max(1, r["feedback"]) * p["feedback_share"]
            fb_writes = tally(ev, "write", {"feedback"}, {"request"}) / max(1, r["feedback"]) * p["feedback_share"]
            reads = req_reads + cache_reads + refresh_reads
            all_reads = reads + rollup_reads + fb_reads
            all_writes = req_writes + rollup_writes + fb_writes
            cost = 1e6 * (all_reads * PRICE_READ + all_writes * PRICE_WRITE)
            rows.append(
                (
                    k,
                    req_reads,
                    req_writes,
                    cache_reads + refresh_reads,
                    reads,
                    rollup_reads,
                    all_reads,
                    all_writes,
                    cost,
                )
            )
        print("Per click (`make bench-capacity`); reads and writes are documents; cost at list price:\n")
        print(
            "| K | /sample reads on its path | /sample writes | cache refresh reads (amortized) "
            "| **reads per /sample, amortized** | roll-up reads per click | all reads per click "
            "| all writes per click | $ per million clicks |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for k, rr, rw, cr, reads, ru, ar, aw, cost in rows:
            print(
                f"| {k} | {rr:.3f} | {rw:.3f} | {cr:.3f} | **{reads:.3f}** | {ru:.3f} | {ar:.3f} | {aw:.3f} "
                f"| {cost:.2f} |"
            )
        print("\n('all' adds roll-ups and feedback on 5 % of clicks, each /feedback: 1 read, 1-3 writes.)")
        k_context = 10 if 10 in args.candidates else args.candidates[0]
        capacity_context.report(
            db,
            counter,
            dict(next(r for kk, r in all_events if kk == k_context)),
            k_context,
            next(row for row in rows if row[0] == k_context),
            tally,
            p,
            offer_rates(),
            (PRICE_READ, PRICE_WRITE),
        )

        # -- per-document write rates ------------------------------------------------------
        k, r = next(((k, r) for k, r in all_events if k == 10), all_events[0])
        rates = per_document_rates([e for e in r["events"] if e[2] in ("rollup", "refresh")], r["virtual_seconds"])
        summary_max = max(
            (v for d, v in rates.items() if "/shards/" not in d and "counter_rollups" not in d), default=0
        )
        lease_max = max((v for d, v in rates.items() if "counter_rollups" in d), default=0)
        shards, hot_rate = hottest_shard_rate(p["hot_offer_clicks_per_s"])
        cold_rate = offer_rates()[2]
        cold_shards, cold_hot = hottest_shard_rate(cold_rate)
        warmup_shards = f"{cpa.GLOBAL_CLICKS}/shards/"
        warmup_writes = tally([e for e in r["events"] if e[3].startswith(warmup_shards)], "write")
        print("\nHighest sustained write rate on one document (target <= 1/s):\n")
        print("| document | writes/s | from |")
        print("|---|---|---|")
        print(
            f"| busiest shard of the hot offer ({p['hot_offer_clicks_per_s']:,} clicks/s, {shards} shards) "
            f"| {hot_rate:.2f} | counters.pick_shard, 60 virtual s |"
        )
        print(
            f"| busiest shard of another offer ({cold_rate:.0f} clicks/s, {cold_shards} shards) "
            f"| {cold_hot:.2f} | counters.pick_shard, 60 virtual s |"
        )
        print(f"| a counter summary (roll-ups that wrote it) | {summary_max:.2f} | replay at K={k} |")
        print(f"| a roll-up lease | {lease_max:.2f} (each written once) | replay at K={k} |")
        print(
            f"| a shard of the service-wide click counter after warm-up | {warmup_writes / r['virtual_seconds']:.2f} "
            f"| replay at K={k} |"
        )
        print("| a click / episode document | created once, updated once by its feedback / reward | the stores |")

        # -- a launch: young counters are read fresh -------------------------------------------
        hot, n = p["hot_offer_clicks_per_s"], p["instances"]
        young_for = args.max_age / stats_cache.DEFAULT_LAG_FRACTION
        print(
            f"\nA new offer at {hot:,} clicks/s: its copies are kept within 10 % of its life for its first "
            f"{young_for:g} s (stats_cache.age_limit), which costs reads in the background refresh "
            f"(model over {n} instances, `launch_reads`):\n"
        )
        print("| first seconds of the offer | its clicks | shard-sum reads | per click |")
        print("|---|---|---|---|")
        for seconds in (young_for, 60, 600):
            launch = launch_reads(hot, n, args.max_age, seconds)
            print(f"| {seconds:g} | {hot * seconds:,.0f} | {launch:,.0f} | {launch / (hot * seconds):.3f} |")
        print(
            "\nIts shards until two roll-ups have measured its rate (counters.sizing_rate), and the writes "
            "each takes (Firestore: about 1 sustained write/s a document; `launch_shards`):\n"
        )
        print("| seconds after its first click | shards | writes/s per shard |")
        print("|---|---|---|")
        for seconds in (0.5, 1, 1.5, 2, 3):
            shards = launch_shards(hot, args.max_age, seconds)
            print(f"| {seconds:g} | {shards:,} | {hot / shards:.2f} |")

        # -- customers and batch --------------------------------------------------------------
        c = replay_customers(db, counter, args.seconds, args.executed * 5, args.max_age, rng)
        ev = c["events"]
        pr = tally(ev, "read", {"predict"}, {"request"}) / max(1, c["predicts"])
        pw = tally(ev, "write", {"predict"}, {"request"}) / max(1, c["predicts"])
        pc = (tally(ev, "read", {"predict-cache"}) + tally(ev, "read", None, {"refresh", "rollup"})) / c["virtual"]
        rwr = tally(ev, "read", {"rewards"}, {"request"}) / max(1, c["rewards"])
        rww = tally(ev, "write", {"rewards"}, {"request"}) / max(1, c["rewards"])
        # Each /predict adds its slate's `shown`, each accepted reward its `accepted`, to one shard.
        segment_rate = p["predict_per_s"] + p["rewards_per_s"] * ACCEPTED_SHARE
        seg_rate = segment_rate / len(segments.AGE_BANDS) / len(segments.REGIONS) / len(segments.GENDERS)
        seg_shards, seg_hot = hottest_shard_rate(seg_rate)
        b = run_batch(db, counter, args.batch_rows)
        br = tally(b["events"], "read") / b["rows"]
        bw = tally(b["events"], "write") / b["rows"]
        print("\nCustomer offers and batch scoring (`make bench-capacity`):\n")
        print("| request | reads | writes | note |")
        print("|---|---|---|---|")
        print(
            f"| /predict | {pr:.3f} on its path + {pc:.3f} cache/roll-up amortized | {pw:.3f} "
            f"| {p['predict_per_s']:,}/s over 24 segments |"
        )
        print(
            f"| /rewards (with episode_id) | {rwr:.3f} | {rww:.3f} "
            f"| segment shards: {seg_shards} per segment, busiest {seg_hot:.2f} writes/s |"
        )
        print(
            f"| batch row ({b['rows']:,}-row file, scaled to {p['batch_rows']:,}) | {br:.4f} | {bw:.4f} | "
            f"1M rows: {br * p['batch_rows']:,.0f} reads, {bw * p['batch_rows']:,.0f} writes, "
            f"${p['batch_rows'] * (br * PRICE_READ + bw * PRICE_WRITE):.2f} |"
        )

        # -- indexes and ids --------------------------------------------------------------------
        declared = terraform_exemptions()
        exempt = declared if declared is not None else {c: set(f) for c, f in NEEDED_EXEMPTIONS.items()}
        source = "infra/*.tf" if declared is not None else "this script's NEEDED_EXEMPTIONS (none in infra/*.tf yet)"
        collection_rates = collections.Counter()
        for kk, rr in all_events:
            if kk == k:
                for e in rr["events"]:
                    if e[0] == "write":
                        collection_rates[collection_of(e[3])] += 1
        print(
            f"\nCollections with a sequentially increasing field, indexed unless exempt (exemptions from {source}):\n"
        )
        print("| collection group | rising fields | still indexed | writes/s at the profile | within 500/s? |")
        print("|---|---|---|---|---|")
        full_rate = {
            "cpa_clicks": p["clicks_per_s"] * (1 + p["feedback_share"]),
            "shards": p["clicks_per_s"] * (1 + p["feedback_share"] * p["conversion_share_of_feedback"])
            + p["predict_per_s"]
            + p["rewards_per_s"] * ACCEPTED_SHARE,
            "episodes": p["predict_per_s"] * 2 + p["rewards_per_s"] * 0,
            "rewards": p["rewards_per_s"],
            "context_slots": p["clicks_per_s"] * (1 + p["feedback_share"] * p["conversion_share_of_feedback"]),
        }
        segment_writes = tally([e for e in ev if collection_of(e[3]) == "agent_segments"], "write")
        collection_rates["agent_segments"] = segment_writes / (c["virtual"] / p["predict_per_s"]) * r["virtual_seconds"]
        for coll, fields in SEQUENTIAL_FIELDS.items():
            indexed = [f for f in fields if f not in exempt.get(coll, set())]
            rate = full_rate[coll] if coll in full_rate else collection_rates.get(coll, 0) / r["virtual_seconds"]
            ok = "yes" if not indexed or rate <= 500 else "**NO**"
            print(f"| {coll} | {', '.join(fields)} | {', '.join(indexed) or '-'} | {rate:,.0f} | {ok} |")
        print("\nDocument ids written in increasing order (a hot key range):")
        for coll in ("cpa_clicks", "counter_rollups"):
            print(f"- {coll}: {'MONOTONIC' if monotonic_ids(r['events'], coll) else 'spread'}")
        print(f"- episodes (/predict): {'MONOTONIC' if monotonic_ids(ev, 'episodes') else 'spread'}")
        print(f"- batch packs: {'MONOTONIC' if monotonic_ids(b['events'], 'batch_packs') else 'spread'}")
        print(
            "- click ids in the replay were consecutive integers, as ad platforms issue them; "
            f"their documents: {sorted(e[3] for e in r['events'] if 'cpa_clicks/' in e[3])[:2]}"
        )
        print(f"\n({time.monotonic() - started:.0f} s)")
    finally:
        firestore_emulator.stop()
        storage_emulator.stop()


if __name__ == "__main__":
    main()
