"""Reward windows and several reward events per click (shared/platform/windows.py, shared/cpa/settlement.py).

The stores take the window and a clock in their constructor: the tests step the clock past the
window rather than wait, so a slow machine cannot make an on-time reward late. The served
functions take the window from CLICK_REWARD_WINDOW_SECONDS / EPISODE_REWARD_WINDOW_SECONDS and
the tests wait it out for real. Counter totals are read exactly (every shard summed), never from
a cached summary.
"""

import concurrent.futures
import dataclasses
import datetime
import math
import pathlib
import time

import numpy as np
import pydantic
import pytest
import requests
from google.api_core import exceptions

from shared.cpa import settlement
from shared.cpa.models import MAX_REWARD_CENTS, FeedbackRequest, SampleRequest
from shared.cpa.store import CpaStore, click_doc_id, offer_counter
from shared.customer import agents, segments
from shared.customer import store as customer_store
from shared.customer.models import PredictRequest, RewardRequest
from shared.customer.store import EPISODES, CustomerStore, new_episode, segment_counter
from shared.platform import counters, errors, windows
from tests.conftest import function_client

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "functions" / "main.py")
WINDOW = 60.0  # seconds, of a clock the tests step (Clock)
SERVED_WINDOW = 1.0  # seconds, waited for real
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class Clock:
    """The real time, plus however far a test has stepped it."""

    def __init__(self):
        self.ahead = datetime.timedelta()

    def __call__(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + self.ahead

    def past_the_window(self):
        self.ahead += datetime.timedelta(seconds=WINDOW + 1)


@pytest.fixture
def clock():
    return Clock()


# -- pure arithmetic ------------------------------------------------------------------------------
def test_counter_deltas_telescope_to_the_final_totals_and_count_one_conversion_per_click():
    totals = [0, 200, 5200, 5200.5, 10_000]
    moved = dict.fromkeys(settlement.CLICK_FIELDS, 0)
    for old, new in zip(totals, totals[1:], strict=False):
        for field, delta in settlement.click_deltas(old, new).items():
            moved[field] += delta
    final = settlement.click_amounts(10_000)
    assert moved["conversions"] == moved["log_conversions"] == 1
    assert moved["reward"] == 10_000 and moved["reward_sq"] == pytest.approx(10_000**2)
    assert moved["log_reward"] == pytest.approx(math.log(10_000)) == pytest.approx(final["log_reward"])
    assert moved["log_reward_sq"] == pytest.approx(math.log(10_000) ** 2)
    # whole cents stay integers: Firestore's int64 sums stay exact
    assert settlement.click_deltas(200, 5200) == {
        "conversions": 0,
        "reward": 5000,
        "reward_sq": 5200**2 - 200**2,
        "log_conversions": 0,
        "log_reward": pytest.approx(math.log(5200) - math.log(200)),
        "log_reward_sq": pytest.approx(math.log(5200) ** 2 - math.log(200) ** 2),
    }
    assert settlement.click_deltas(0, 0) == dict.fromkeys(settlement.CLICK_FIELDS, 0)
    assert settlement.click_deltas(0, 250)["conversions"] == 1


def test_a_decision_is_settled_once_its_window_has_passed():
    assert not windows.is_settled(NOW, NOW + datetime.timedelta(seconds=10), 10)
    assert windows.is_settled(NOW, NOW + datetime.timedelta(seconds=10.001), 10)
    assert not windows.is_settled(None, NOW, 10)


def test_the_window_comes_from_the_environment_and_a_bad_one_names_the_variable(monkeypatch):
    name = settlement.CLICK_WINDOW_ENV
    monkeypatch.delenv(name, raising=False)
    assert windows.window_seconds(name, 86_400) == 86_400
    monkeypatch.setenv(name, "2.5")
    assert windows.window_seconds(name, 86_400) == 2.5
    for bad in ("0", "-1", "nan", "inf", "soon", str(windows.MAX_WINDOW_SECONDS + 1)):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ValueError, match=name):
            windows.window_seconds(name, 86_400)


def click(**fields):
    return {"click_id": 7, "sampled_at": NOW, "reward": None, **fields}


def test_events_sum_replays_answer_as_first_and_conflicts_name_the_field():
    soon, later = NOW + datetime.timedelta(seconds=5), NOW + datetime.timedelta(seconds=50)
    first = settlement.add_event(click(), "reg", 200, soon, 10, MAX_REWARD_CENTS)
    assert (first.total, first.replay, first.event["late"]) == (200, False, False)
    assert first.deltas["conversions"] == 1 and first.deltas["reward"] == 200
    stored = click(reward=first.total, events=first.events)
    second = settlement.add_event(stored, "dep", 5000, later, 10, MAX_REWARD_CENTS)
    assert (second.total, second.event["late"], second.event["at"]) == (5200, True, later)
    assert second.deltas["conversions"] == 0 and second.deltas["reward"] == 5000
    stored = click(reward=second.total, events=second.events)
    replay = settlement.add_event(stored, "reg", 200.0, later, 10, MAX_REWARD_CENTS)
    assert replay.replay and replay.deltas == {} and replay.total == 200 and replay.event["late"] is False
    with pytest.raises(errors.Conflict) as conflict:
        settlement.add_event(stored, "dep", 6000, later, 10, MAX_REWARD_CENTS)
    assert conflict.value.field == "reward" and "dep" in conflict.value.message
    with pytest.raises(errors.Conflict) as too_much:
        settlement.add_event(stored, "more", MAX_REWARD_CENTS, later, 10, MAX_REWARD_CENTS)
    assert too_much.value.field == "reward"


def test_a_click_takes_at_most_max_events():
    events = {f"e{n}": {"amount": 1, "total": n + 1, "late": False, "at": NOW} for n in range(32)}
    full = click(reward=32, events=events)
    assert len(events) == settlement.MAX_EVENTS_PER_CLICK
    with pytest.raises(errors.Conflict) as refused:
        settlement.add_event(full, "one-more", 1, NOW, 10, MAX_REWARD_CENTS)
    assert refused.value.field == "event_id"
    assert settlement.add_event(full, "e3", 1, NOW, 10, MAX_REWARD_CENTS).replay  # replays still answer


def test_a_click_rewarded_before_events_existed_keeps_its_reward_as_the_default_event():
    legacy = click(reward=250, is_conversion=True)  # no `events` field
    same = settlement.add_event(legacy, None, 250, NOW, 10, MAX_REWARD_CENTS)
    assert same.replay and same.total == 250
    with pytest.raises(errors.Conflict):
        settlement.add_event(legacy, None, 300, NOW, 10, MAX_REWARD_CENTS)
    more = settlement.add_event(legacy, "deposit", 100, NOW, 10, MAX_REWARD_CENTS)
    assert more.total == 350 and set(more.events) == {settlement.DEFAULT_EVENT, "deposit"}
    assert more.deltas["conversions"] == 0 and more.deltas["reward_sq"] == 350**2 - 250**2


@pytest.mark.parametrize("event_id", ["", "_x", "a b", "é", "a.b", "x" * 65, True, 1.5, ["a"]])
def test_a_bad_event_id_is_refused_naming_the_field(event_id):
    with pytest.raises(pydantic.ValidationError) as refused:
        FeedbackRequest.model_validate({"click_id": 1, "reward": 5, "event_id": event_id})
    assert refused.value.errors()[0]["loc"] == ("event_id",)
    assert FeedbackRequest.model_validate({"click_id": 1, "reward": 5, "event_id": 42}).event_id == "42"


# -- clicks, against the emulator -----------------------------------------------------------------
def offer_totals(db, offer_id: int) -> dict:
    path = offer_counter(offer_id)
    return counters.exact_totals(db, [path])[path]


def payout(*rewards) -> dict:
    """The offer's payout fields for clicks whose totals are `rewards` (0 = no conversion)."""
    earned = [r for r in rewards if r > 0]
    return {
        "conversions": len(earned),
        "reward": sum(earned),
        "reward_sq": sum(r * r for r in earned),
        "log_conversions": len(earned),
        "log_reward": pytest.approx(sum(math.log(r) for r in earned)),
        "log_reward_sq": pytest.approx(sum(math.log(r) ** 2 for r in earned)),
    }


def payout_of(totals: dict) -> dict:
    return {field: totals.get(field, 0) for field in settlement.CLICK_FIELDS}


def answer(store, **fields) -> dict:
    """What /feedback answers (functions/main.py) for this feedback."""
    return dataclasses.asdict(store.feedback(FeedbackRequest(**fields)))


def test_unrewarded_clicks_settle_at_zero_once_and_late_rewards_are_corrections(db, clock):
    store = CpaStore(db, np.random.default_rng(0), reward_window=WINDOW, clock=clock)
    for click_id in (1, 2, 3):
        store.sample(SampleRequest(click_id=click_id, offer_ids=[9]))
    on_time = answer(store, click_id=1, reward=100)
    assert (on_time["reward"], on_time["late"]) == (100, False)

    clock.past_the_window()
    # clicks 2 and 3 are settled at reward 0: three trials, one conversion, nothing written for it
    store.sample(SampleRequest(click_id=3, offer_ids=[9]))  # a replayed click counts nothing
    settled = offer_totals(db, 9)
    assert settled["clicks"] == 3 and payout_of(settled) == payout(100, 0, 0)

    late = answer(store, click_id=2, reward=300)
    assert (late["reward"], late["is_conversion"], late["late"]) == (300, True, True)
    stored = db.collection("cpa_clicks").document(click_doc_id(2)).get().to_dict()
    event = stored["events"][settlement.DEFAULT_EVENT]
    assert event["late"] is True and event["amount"] == 300
    assert event["at"] - stored["sampled_at"] > datetime.timedelta(seconds=WINDOW)
    for _ in range(3):  # the late reward replayed: the same answer, counted once
        assert answer(store, click_id=2, reward=300) == late
    assert answer(store, click_id=1, reward=100) == on_time  # answered as first
    corrected = offer_totals(db, 9)
    assert corrected["clicks"] == 3 and payout_of(corrected) == payout(100, 300, 0)


def test_several_reward_events_sum_per_click_and_replays_count_once(db, clock):
    store = CpaStore(db, np.random.default_rng(0), reward_window=WINDOW, clock=clock)
    store.sample(SampleRequest(click_id=10, offer_ids=[4]))
    store.sample(SampleRequest(click_id=11, offer_ids=[4]))
    registration = answer(store, click_id=10, reward=200, event_id="registration")
    assert (registration["reward"], registration["event_id"], registration["late"]) == (200, "registration", False)
    zero = answer(store, click_id=11, reward=0, event_id="registration")
    assert (zero["reward"], zero["is_conversion"]) == (0, False)
    clock.past_the_window()
    deposit = answer(store, click_id=10, reward=5000, event_id="deposit")
    assert (deposit["reward"], deposit["is_conversion"], deposit["late"]) == (5200, True, True)
    later = answer(store, click_id=11, reward=700, event_id="deposit")
    assert (later["reward"], later["is_conversion"], later["late"]) == (700, True, True)
    for _ in range(2):
        assert answer(store, click_id=10, reward=5000, event_id="deposit") == deposit
        assert answer(store, click_id=10, reward=200, event_id="registration") == registration
    with pytest.raises(errors.Conflict) as conflict:
        store.feedback(FeedbackRequest(click_id=10, reward=6000, event_id="deposit"))
    assert conflict.value.field == "reward"
    # one conversion per click, payout sums of each click's total: 5200 and 700
    totals = offer_totals(db, 4)
    assert totals["clicks"] == 2 and payout_of(totals) == payout(5200, 700)


def test_a_click_rewarded_the_old_way_takes_further_events_by_their_deltas(db, clock):
    store = CpaStore(db, np.random.default_rng(0), reward_window=WINDOW, clock=clock)
    store.sample(SampleRequest(click_id=20, offer_ids=[5]))
    # what the service wrote before events: the reward on the click, its conversion in the counters
    db.document(f"cpa_clicks/{click_doc_id(20)}").update({"reward": 250, "is_conversion": True})
    batch = db.batch()
    counters.add(batch, db, offer_counter(5), settlement.click_amounts(250))
    batch.commit()
    assert store.feedback(FeedbackRequest(click_id=20, reward=250)).reward == 250  # a replay, as before
    assert store.feedback(FeedbackRequest(click_id=20, reward=100, event_id="deposit")).reward == 350
    assert payout_of(offer_totals(db, 5)) == payout(350)


# -- episodes, against the emulator ---------------------------------------------------------------
STATES = {"age": 30, "gender": "F", "region": "Asia"}
OFFERS = {"OFFER_1": True, "OFFER_2": True, "OFFER_3": True}
SEGMENT = segments.segment_of(30, "F", "Asia")
STATE_BODY = {"states": STATES, "offers": OFFERS}


def predict(store, customer_id: str, timestamp: str = "2026-01-01") -> str:
    request = PredictRequest(customer_id=customer_id, timestamp=timestamp, states=STATES, offers=OFFERS)
    return store.predict(request).episode_id


def reward(store, customer_id: str, accepted: bool, episode_id: str | None = None, offer: str | None = None):
    request = RewardRequest(
        customer_id=customer_id,
        timestamp="2026-01-02",
        accepted=accepted,
        episode_id=episode_id,
        accepted_offer=offer,
    )
    return dataclasses.asdict(store.reward(request))


def segment_totals(db) -> dict[str, tuple[int, int]]:
    path = segment_counter(SEGMENT)
    totals = counters.exact_totals(db, [path])[path]
    return {offer: (totals[offer].get("shown", 0), totals[offer].get("accepted", 0)) for offer in sorted(OFFERS)}


def test_unrewarded_episodes_settle_as_not_accepted_once_and_late_rewards_are_corrections(db, clock):
    store = CustomerStore(db, np.random.default_rng(0), reward_window=WINDOW, clock=clock)
    on_time, settled, never = (predict(store, customer) for customer in ("a", "b", "c"))
    assert predict(store, "b") == settled  # a retried /predict counts nothing
    # every slate counts as shown at /predict (three offers eligible: each shown three times)
    assert segment_totals(db) == dict.fromkeys(OFFERS, (3, 0))
    assert reward(store, "a", True, offer="OFFER_2")["late"] is False

    clock.past_the_window()
    # b and c are settled as "not accepted": nothing was written for it, and they are no longer open
    assert segment_totals(db) == {"OFFER_1": (3, 0), "OFFER_2": (3, 1), "OFFER_3": (3, 0)}
    with pytest.raises(errors.NotFound) as closed:
        reward(store, "c", True)
    assert closed.value.field == "customer_id" and "episode_id" in closed.value.message

    late = reward(store, "b", True, episode_id=settled, offer="OFFER_3")
    assert (late["late"], late["accepted"]) == (True, True)
    assert db.document(f"episodes/{settled}").get().get("up_to_date") is True
    assert db.document(f"rewards/{settled}").get().get("late") is True
    for _ in range(2):  # the late reward replayed: the same answer, counted once
        again = reward(store, "b", True, episode_id=settled, offer="OFFER_3")
        assert (again["late"], again["accepted_offer"]) == (True, "OFFER_3")
    with pytest.raises(errors.Conflict):
        reward(store, "b", False, episode_id=settled)
    # the correction: one more accepted, no more shown; c stays a "not accepted"
    assert segment_totals(db) == {"OFFER_1": (3, 0), "OFFER_2": (3, 1), "OFFER_3": (3, 1)}


def test_a_settled_episode_no_longer_makes_a_reward_by_customer_ambiguous(db, clock):
    store = CustomerStore(db, np.random.default_rng(0), reward_window=WINDOW, clock=clock)
    older = predict(store, "d", "2026-01-01T10:00:00")
    newer = predict(store, "d", "2026-01-01T10:05:00")
    # the older one was recorded more than a window ago
    created = db.document(f"{EPISODES}/{older}").get().get("created_at")
    before = created - datetime.timedelta(seconds=WINDOW + 1)
    db.document(f"{EPISODES}/{older}").update({"created_at": before, "last_update": before})
    answer = reward(store, "d", False)
    assert answer["customer_id"] == "d" and answer["late"] is False
    assert db.document(f"{EPISODES}/{newer}").get().get("up_to_date") is True
    assert db.document(f"{EPISODES}/{older}").get().get("up_to_date") is False


def test_an_episode_recorded_before_shown_was_counted_at_predict_counts_it_with_its_reward(db, clock):
    store = CustomerStore(db, np.random.default_rng(0), reward_window=WINDOW, clock=clock)
    # as /predict wrote episodes before, and as batch scoring still does: no counter at creation
    slate = ["OFFER_1", "OFFER_2", "OFFER_3"]
    old = new_episode("e", "2026-01-01", STATES, slate, SEGMENT, slate, agents.DEFAULT_AGENT, "batch")
    db.document(f"{EPISODES}/old-episode").create(old)
    clock.past_the_window()
    answer = reward(store, "e", True, episode_id="old-episode", offer="OFFER_1")
    assert answer["late"] is True
    reward(store, "e", True, episode_id="old-episode", offer="OFFER_1")  # a replay
    assert segment_totals(db) == {"OFFER_1": (1, 1), "OFFER_2": (1, 0), "OFFER_3": (1, 0)}


# -- through the served functions, with the window from their environment ------------------------
@pytest.fixture
def served(db, monkeypatch):
    monkeypatch.setenv(settlement.CLICK_WINDOW_ENV, str(SERVED_WINDOW))
    monkeypatch.setenv(customer_store.EPISODE_WINDOW_ENV, str(SERVED_WINDOW))
    names = ("sample", "feedback", "predict", "rewards")
    return {name: function_client(name) for name in names}


def test_served_answers_say_late_after_the_window_from_the_environment(served):
    assert served["sample"].get("/", query_string={"click_id": 30, "offer_ids": "6"}).status_code == 200
    predicted = served["predict"].post("/", json={"customer_id": "f", "timestamp": "2026-01-01"} | STATE_BODY)
    assert predicted.status_code == 200
    time.sleep(SERVED_WINDOW + 0.5)

    late = served["feedback"].put("/", query_string={"click_id": 30, "reward": 850, "event_id": "deposit"})
    assert late.status_code == 200
    assert late.get_json() == {
        "click_id": 30,
        "offer_id": 6,
        "is_conversion": True,
        "reward": 850,
        "event_id": "deposit",
        "late": True,
    }
    replay = served["feedback"].put("/", json={"click_id": 30, "reward": 850, "event_id": "deposit"})
    assert replay.get_json() == late.get_json()
    conflict = served["feedback"].put("/", json={"click_id": 30, "reward": 1, "event_id": "deposit"})
    assert conflict.status_code == 409 and conflict.get_json()["field"] == "reward"
    bad = served["feedback"].put("/", query_string={"click_id": 30, "reward": 1, "event_id": "no spaces"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "event_id"

    body = {"customer_id": "f", "timestamp": "2026-01-03", "accepted_one_of_the_three_offers": True}
    closed = served["rewards"].put("/", json=body)
    assert closed.status_code == 404 and closed.get_json()["field"] == "customer_id"
    named = served["rewards"].put("/", json=body | {"episode_id": predicted.get_json()["episode_id"]})
    assert named.status_code == 200 and named.get_json()["late"] is True


def test_the_gateway_sums_events_on_time_and_refuses_the_33rd(api):
    assert requests.get(f"{api}/sample", params={"click_id": 40, "offer_ids": "2"}, timeout=30).status_code == 200
    for n in range(settlement.MAX_EVENTS_PER_CLICK):
        answer = requests.put(f"{api}/feedback", params={"click_id": 40, "reward": 1, "event_id": f"e{n}"}, timeout=30)
        assert answer.status_code == 200, answer.text
    assert answer.json() | {"offer_id": None} == {
        "click_id": 40,
        "offer_id": None,
        "is_conversion": True,
        "reward": settlement.MAX_EVENTS_PER_CLICK,
        "event_id": f"e{settlement.MAX_EVENTS_PER_CLICK - 1}",
        "late": False,  # the default window is a day
    }
    refused = requests.put(f"{api}/feedback", params={"click_id": 40, "reward": 1, "event_id": "e99"}, timeout=30)
    assert refused.status_code == 409 and refused.json()["field"] == "event_id"
    stats = requests.get(f"{api}/offer_ids/2/stats", timeout=30).json()
    assert (stats["clicks"], stats["conversions"], stats["reward"]) == (1, 1, settlement.MAX_EVENTS_PER_CLICK)


def test_events_racing_on_one_click_sum_exactly(db, clock):
    """Four reward events of one click sent at once, each also replayed: each counts once."""
    store = CpaStore(db, np.random.default_rng(0), reward_window=WINDOW, clock=clock)
    store.sample(SampleRequest(click_id=50, offer_ids=[3]))
    amounts = {"a": 100, "b": 250, "c": 400, "d": 1250}

    def send(event_id: str):
        for _ in range(2):  # the event and its replay
            for attempt in range(50):  # a client retries what the service could not commit (a 503)
                try:
                    store.feedback(FeedbackRequest(click_id=50, reward=amounts[event_id], event_id=event_id))
                    break
                except (ValueError, exceptions.Aborted):  # still contended after the SDK's 5 attempts
                    if attempt == 49:
                        raise
                    time.sleep(0.1)

    with concurrent.futures.ThreadPoolExecutor(len(amounts)) as pool:
        list(pool.map(send, amounts))
    assert payout_of(offer_totals(db, 3)) == payout(sum(amounts.values()))
    stored = db.document(f"cpa_clicks/{click_doc_id(50)}").get().to_dict()
    assert stored["reward"] == 2000 and {k: v["amount"] for k, v in stored["events"].items()} == amounts
