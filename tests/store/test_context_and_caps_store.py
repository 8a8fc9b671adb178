"""Click context and per-offer caps through the real CpaStore against the emulator (issue 24)."""

import datetime
import threading
import time

import numpy as np
import pytest

from shared.cpa import caps, context_counts, context_model
from shared.cpa import store as cpa
from shared.cpa.models import FeedbackRequest, SampleRequest
from shared.platform import counters, stats_cache
from shared.platform.namespace import ROOT, Namespace

START = 1_800_000_000.0  # a fixed virtual epoch second


class Clock:
    def __init__(self):
        self.now = START

    def seconds(self) -> float:
        return self.now

    def utc(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.now, datetime.UTC)


def make_store(db, clock: Clock, space: Namespace = ROOT, seed: int = 0) -> cpa.CpaStore:
    cache = stats_cache.StatsCache(db, max_age=0.5, clock=clock.seconds, background=False, derive=cpa.offer_drift)
    context = context_counts.ContextCache(db, clock=clock.seconds, background=False)
    return cpa.CpaStore(db, np.random.default_rng(seed), cache, clock=clock.utc, space=space, context_cache=context)


def set_caps(db, entries: dict, space: Namespace = ROOT) -> None:
    db.document(space.path("config/serving")).set({"cpa": {"caps": entries}})


def test_a_clicks_context_is_stored_and_its_counts_are_folded_per_offer(db):
    clock = Clock()
    store = make_store(db, clock)
    context = {"geo": "fr", "device": "mobile", "os": "Android", "source": "pub-7"}
    click = store.sample(SampleRequest(click_id=1, offer_ids=[4], **context))
    stored = db.collection(cpa.CLICKS).document(cpa.click_doc_id(1)).get().to_dict()
    assert stored["context"] == {"geo": "FR", "device": "mobile", "os": "android", "source": "pub-7"}
    assert click.sampler == "contextual"  # a click with context that names no sampler
    named = store.sample(SampleRequest(click_id=2, offer_ids=[5], sampler="thompson", **context))
    assert named.sampler == "thompson"  # a sampler named wins
    store.feedback(FeedbackRequest(click_id=1, reward=300))
    clock.now += context_counts.SLOT_SECONDS + context_counts.GRACE_SECONDS + 1
    counts = context_counts.fold(db, ROOT, 4, clock.now)
    assert counts["geo"] == {"FR": [1, 1]} and counts["source"] == {"pub-7": [1, 1]}
    assert counts["os"] == {"android": [1, 1]} and counts["device"] == {"mobile": [1, 1]}
    assert context_counts.fold(db, ROOT, 4, clock.now + 1) == counts  # folded once, not twice


def test_a_click_without_context_decides_as_thompson_did_and_writes_no_context(db):
    clock = Clock()
    click = make_store(db, clock, seed=3).sample(SampleRequest(click_id=9, offer_ids=[1, 2, 3]))
    assert click.sampler == "thompson" and click.paced is None
    assert not list(db.collection(f"{cpa.OFFERS}/{click.offer_id}/{context_counts.SLOTS}").stream())


def test_the_context_learned_changes_the_decision_for_that_context(db):
    """Offer 1 converts in FR, offer 2 in DE: once folded, FR clicks go mostly to 1 and DE clicks to 2,
    by the default (a click with context that names no sampler)."""
    clock = Clock()
    store = make_store(db, clock)
    click_id = 0
    for offer, geo_converting in ((1, "FR"), (2, "DE")):
        for geo in ("FR", "DE"):
            for n in range(60):
                click_id += 1
                request = SampleRequest(click_id=click_id, offer_ids=[offer], geo=geo, sampler="contextual")
                store.sample(request)
                if geo == geo_converting and n % 3 == 0:
                    store.feedback(FeedbackRequest(click_id=click_id, reward=1000))
    clock.now += context_counts.SLOT_SECONDS + context_counts.GRACE_SECONDS + 2
    chosen = {"FR": [], "DE": []}
    for geo in chosen:
        for _ in range(40):
            click_id += 1
            clock.now += 0.01
            click = store.sample(SampleRequest(click_id=click_id, offer_ids=[1, 2], geo=geo))
            assert click.sampler == "contextual"
            chosen[geo].append(click.offer_id)
    assert np.mean(np.array(chosen["FR"]) == 1) > 0.8
    assert np.mean(np.array(chosen["DE"]) == 2) > 0.8


def test_a_cap_reached_takes_the_offer_out_while_another_is_eligible(db):
    clock = Clock()
    set_caps(db, {"5": {"conversions": 2, "tz": "Europe/Paris"}})
    store = make_store(db, clock)
    for click_id in (1, 2):
        store.sample(SampleRequest(click_id=click_id, offer_ids=[5]))
        store.feedback(FeedbackRequest(click_id=click_id, reward=500))
    clock.now += 1
    status = store.cap_status(5)
    assert status["spent"] == 2 and status["reached"] and status["day"] == caps.day_of(clock.utc(), "Europe/Paris")
    answers = [store.sample(SampleRequest(click_id=100 + n, offer_ids=[5, 6])) for n in range(30)]
    assert {click.offer_id for click in answers} == {6}
    assert all(click.probability == pytest.approx(1.0) for click in answers)
    assert all(click.paced is not None for click in answers)
    alone = store.sample(SampleRequest(click_id=200, offer_ids=[5]))  # nothing else eligible
    assert alone.offer_id == 5


def test_spend_is_counted_once_under_replayed_feedback(db):
    clock = Clock()
    set_caps(db, {"8": {"cents": 10_000}})
    store = make_store(db, clock)
    store.sample(SampleRequest(click_id=1, offer_ids=[8]))
    for _ in range(3):
        store.feedback(FeedbackRequest(click_id=1, reward=250))
        store.feedback(FeedbackRequest(click_id=1, reward=100, event_id="deposit"))
    path = cpa.offer_counter(8)
    totals = counters.exact_totals(db, [path])[path]
    day = caps.day_of(clock.utc())
    assert caps.spent(totals, day, "cents") == 350
    assert caps.spent(totals, day, "conversions") == 1  # one click converting: one conversion
    assert make_store(db, clock).cap_status(8)["spent"] == 350


def test_pacing_is_visible_in_the_answer_and_the_click(db):
    """Half the cap spent a few minutes into the day: the shadow price is high, the click says so."""
    clock = Clock()
    clock.now = datetime.datetime(2027, 3, 1, 0, 5, tzinfo=datetime.UTC).timestamp()
    set_caps(db, {"11": {"conversions": 10}})
    store = make_store(db, clock)
    for click_id in range(1, 6):
        store.sample(SampleRequest(click_id=click_id, offer_ids=[11]))
        store.feedback(FeedbackRequest(click_id=click_id, reward=900))
    clock.now += 1
    paced = [store.sample(SampleRequest(click_id=50 + n, offer_ids=[11, 12])) for n in range(30)]
    stored = db.collection(cpa.CLICKS).document(cpa.click_doc_id(50)).get().to_dict()
    assert stored["prices"] == {"11": caps.MAX_PRICE}
    assert stored["sampler"] == "contextual" and isinstance(stored["paced"], bool)
    assert any(click.paced for click in paced)
    assert store.cap_status(11)["price"] == caps.MAX_PRICE


def test_caps_and_context_stay_in_their_tenant(db):
    clock = Clock()
    tenant = Namespace("tenant_a")
    set_caps(db, {"5": {"conversions": 1}}, tenant)
    mine, theirs = make_store(db, clock, tenant), make_store(db, clock)
    mine.sample(SampleRequest(click_id=1, offer_ids=[5], geo="FR"))
    mine.feedback(FeedbackRequest(click_id=1, reward=100))
    clock.now += 1
    assert mine.cap_status(5)["reached"] and theirs.cap_status(5) is None
    assert theirs.sample(SampleRequest(click_id=2, offer_ids=[5, 6])).paced is None
    clock.now += context_counts.SLOT_SECONDS + context_counts.GRACE_SECONDS + 1
    assert context_counts.fold(db, tenant, 5, clock.now)["geo"] == {"FR": [1, 1]}
    assert context_counts.fold(db, ROOT, 5, clock.now) == {}


def test_the_served_answer_says_paced_and_the_stats_show_the_cap(db):
    """Through the served functions: the cap set in config/serving, spend from /feedback, the
    answer's `paced` and the stats' `cap` (the instance's config copy is read at most every 0.5 s)."""
    from tests.conftest import function_client

    set_caps(db, {"21": {"conversions": 1}})
    sample, feedback, stats = (function_client(name) for name in ("sample", "feedback", "stats"))
    first = sample.get("/", query_string={"click_id": 1, "offer_ids": "21"}).get_json()
    assert first["offer_id"] == 21 and first["paced"] is False and first["sampler"] == "contextual"
    assert feedback.put("/", query_string={"click_id": 1, "reward": 700}).status_code == 200
    cap = stats.get("/offer_ids/21/stats").get_json()["cap"]
    assert cap["spent"] == 1 and cap["reached"] and cap["limit"] == 1 and cap["kind"] == "conversions"
    answers = []
    for click_id in range(2, 12):  # the cap reached: offer 22 whenever the statistics show it
        answers.append(sample.get("/", query_string={"click_id": click_id, "offer_ids": "21,22"}).get_json())
        time.sleep(0.1)
    assert answers[-1]["offer_id"] == 22 and answers[-1]["probability"] == 1.0
    assert all("paced" in answer for answer in answers)
    sample.get("/", query_string={"click_id": 50, "offer_ids": "22"})
    assert "cap" not in stats.get("/offer_ids/22/stats").get_json()  # an offer without a cap: no cap object


def test_a_click_is_written_at_one_instant_even_when_its_clock_crosses_midnight(db):
    """The click's day rate (a capped offer's clicks_weighted) and its context slot come from one
    reading of the clock: a clock that moved an hour at each reading, 23:00 UTC first, put them on
    different days when the store read it once for each."""
    first = datetime.datetime(2027, 3, 1, 23, 0, tzinfo=datetime.UTC)
    readings = []

    def moving_clock() -> datetime.datetime:
        readings.append(first + datetime.timedelta(hours=len(readings)))
        return readings[-1]

    set_caps(db, {"61": {"conversions": 1000}})
    store = make_store(db, Clock(), seed=1)
    store.clock = moving_clock
    store.sample(SampleRequest(click_id=61, offer_ids=[61], geo="FR"))
    path = cpa.offer_counter(61)
    days = counters.exact_totals(db, [path])[path]["day"]
    assert list(days) == ["2027-03-01"] and days["2027-03-01"][caps.WEIGHTED_CLICKS] > 0
    slots = db.collection(f"{path}/{context_counts.SLOTS}").get()
    assert [slot.get("slot") for slot in slots] == [context_counts.slot_of(first.timestamp())]


def test_the_context_cache_hands_a_set_the_same_effects_until_an_offer_of_it_is_refreshed(db):
    clock = Clock()
    contexts = context_counts.ContextCache(db, clock=clock.seconds, background=False)
    contexts.delay = 0.0
    folded = db.document(context_counts.folded_path(ROOT, 31))
    folded.set({"counts": {"geo": {"FR": [1000, 100], "DE": [1000, 10]}}, "through": 10**12})
    before = contexts.effects(ROOT, [31, 32])  # loaded on this call (inline): not remembered yet
    clock.now += 1
    remembered = contexts.effects(ROOT, [31, 32])
    assert contexts.effects(ROOT, [31, 32]) is remembered and remembered == before
    assert fr_shift(remembered[0]) > 0 and remembered[1] == {}
    folded.set({"counts": {"geo": {"FR": [1000, 10], "DE": [1000, 100]}}, "through": 10**12})
    clock.now += context_counts.REFRESH_SECONDS - 2
    assert contexts.effects(ROOT, [31, 32]) is remembered  # not due yet: the copy in hand
    clock.now += 1
    refreshed = contexts.effects(ROOT, [31, 32])
    assert refreshed is not remembered and fr_shift(refreshed[0]) < 0


def fr_shift(effects: dict) -> float:
    """The shift of ln(rate) in France of an offer decided alone."""
    return float(context_model.adjustments({"geo": "FR"}, [effects]).log_rate[0, 0])


def test_an_offer_asked_again_while_its_refresh_was_pending_is_folded_once(db, monkeypatch):
    clock = Clock()
    contexts = context_counts.ContextCache(db, clock=clock.seconds, background=False)
    folds = []
    monkeypatch.setattr(context_counts, "fold", lambda db, space, offer, now: folds.append(offer) or {})
    keys = [(ROOT, 41), (ROOT, 42)]
    contexts.refresh(keys)
    contexts.refresh(keys)  # the requests' second ask, taken after the first refresh had done them
    assert folds == [41, 42]
    clock.now += context_counts.REFRESH_SECONDS + contexts.delay + 1  # due again
    contexts.refresh(keys)
    assert folds == [41, 42, 41, 42]


def test_while_a_refresh_is_on_its_way_a_set_keeps_the_effects_in_hand_and_the_new_ones_land_together(db, monkeypatch):
    """A request that finds its offers due asks for their refresh and does not wait; the requests after
    it are handed the same list (no per-request work while the fold runs), and the refreshed
    effects of all its offers land at once (a set's list changes once, not once per offer)."""
    clock = Clock()
    contexts = context_counts.ContextCache(db, clock=clock.seconds)
    contexts.delay = 0.0
    release, folding = threading.Event(), []

    def fold(db, space, offer, now):
        folding.append(offer)
        release.wait(10)
        return {"geo": {"FR": [1000, 100 if offer == 51 else 10], "DE": [1000, 10 if offer == 51 else 100]}}

    monkeypatch.setattr(context_counts, "fold", fold)
    first = contexts.effects(ROOT, [51, 52, 53])
    assert first == [None, None, None]  # not loaded: decided as without context, nothing waited
    clock.now += 1
    assert contexts.effects(ROOT, [51, 52, 53]) is first  # the fold is on its way: the same list
    generation = contexts._sets.generation
    release.set()
    deadline = time.monotonic() + 10
    while contexts._sets.generation == generation and time.monotonic() < deadline:
        time.sleep(0.01)
    loaded = contexts.effects(ROOT, [51, 52, 53])
    assert contexts._sets.generation == generation + 1  # three offers refreshed, one landing
    assert sorted(folding) == [51, 52, 53] and all(loaded)
    assert fr_shift(loaded[0]) > 0 and fr_shift(loaded[1]) < 0
