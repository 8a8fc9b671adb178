"""Reward windows and several reward events per click, pure: the settlement arithmetic
(shared/platform/windows.py, shared/cpa/settlement.py) and the event id's bounds."""

import datetime
import math

import pydantic
import pytest

from shared.cpa import settlement
from shared.cpa.models import MAX_REWARD_CENTS, FeedbackRequest
from shared.platform import errors, windows

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


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
