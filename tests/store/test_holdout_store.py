"""The holdout against the Firestore emulator: held-out clicks and episodes are served by the baseline,
recorded with `holdout: true`, and counted in no learning statistics, at decision time or when their
reward comes; every recorded decision and outcome goes to the decision log once (a replay: never)."""

import numpy as np
import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from devstack import emulators
from shared.cpa.models import FeedbackRequest, SampleRequest
from shared.cpa.store import CpaStore
from shared.customer.models import PredictRequest, RewardRequest
from shared.customer.store import CustomerStore, segment_counter
from shared.platform import counters, log_tables
from tests.conftest import PROJECT

OFFERS = [11, 12, 13, 14]


@pytest.fixture(autouse=True)
def leaves_no_config(firestore_emulator):
    """Empty the emulator afterwards too: a gateway started next reads config/serving on its first
    request, before that test's `db` empties it, and keeps the copy SERVING_CONFIG_TTL_SECONDS."""
    yield
    emulators.clear_firestore(firestore_emulator.host_port, PROJECT)


class Recorded:
    """What a store hands the decision log (the publisher itself is tests/stack/test_decision_log.py's)."""

    enabled = True

    def __init__(self):
        self.records: list[tuple[str, dict]] = []

    def emit(self, table: str, record: dict) -> None:
        assert log_tables.problems(table, record) == []
        self.records.append((table, record))

    def of(self, table: str) -> list[dict]:
        return [record for name, record in self.records if name == table]


@pytest.fixture
def half_held_out(monkeypatch):
    monkeypatch.setenv("HOLDOUT_SHARE", "0.3")


def test_held_out_clicks_are_random_recorded_and_never_learned_from(db, half_held_out):
    log = Recorded()
    store = CpaStore(db, np.random.default_rng(0), log=log)
    clicks = [store.sample(SampleRequest(click_id=1000 + i, offer_ids=OFFERS)) for i in range(120)]
    held = [click for click in clicks if click.holdout]
    assert 20 <= len(held) <= 55  # 30 % of 120
    assert {(c.sampler, c.served_by, c.probability) for c in held} == {("random", "holdout:random", 0.25)}
    for click in clicks:  # every click earns 100: only the learning ones may count
        store.feedback(FeedbackRequest(click_id=click.click_id, reward=100))
    store.feedback(FeedbackRequest(click_id=held[0].click_id, reward=100))  # a replay: nothing more
    totals = store.offers_stats(OFFERS)
    assert sum(t.clicks for t in totals) == len(clicks) - len(held)
    assert sum(t.conversions for t in totals) == len(clicks) - len(held)
    assert sum(t.reward for t in totals) == 100 * (len(clicks) - len(held))
    held_docs = db.collection("cpa_clicks").where(filter=FieldFilter("holdout", "==", True))
    assert held_docs.count().get()[0][0].value == len(held)

    decisions, outcomes = log.of("decisions"), log.of("outcomes")
    assert sorted(r["decision_id"] for r in decisions) == sorted(str(c.click_id) for c in clicks)
    assert sum(r["holdout"] for r in decisions) == len(held)
    assert {r["holdout_share"] for r in decisions} == {0.3}
    assert len(outcomes) == len(clicks) and sum(r["holdout"] for r in outcomes) == len(held)
    store.sample(SampleRequest(click_id=1000, offer_ids=OFFERS))  # a replayed click: not logged again
    assert len(log.of("decisions")) == len(clicks)


def test_a_forced_offer_is_never_held_out_and_logs_a_share_of_zero(db, half_held_out):
    db.document("config/serving").set({"cpa": {"offer_id": 12}})
    log = Recorded()
    store = CpaStore(db, np.random.default_rng(0), log=log)
    clicks = [store.sample(SampleRequest(click_id=5000 + i, offer_ids=OFFERS)) for i in range(30)]
    assert not any(click.holdout for click in clicks) and {c.offer_id for c in clicks} == {12}
    assert {r["holdout_share"] for r in log.of("decisions")} == {0.0}
    assert store.holdout_share(clicks[0]) == 0.0


def test_held_out_episodes_are_static_and_never_learned_from(db, half_held_out):
    log = Recorded()
    store = CustomerStore(db, np.random.default_rng(0), "thompson-slate", log=log)
    states = {"age": 33, "gender": "F", "region": "Europa"}
    offers = {f"OFFER_{n}": True for n in range(1, 8)}
    episodes = [
        store.predict(
            PredictRequest(
                customer_id=f"c{i}", timestamp="2026-01-02", states=states, offers=offers, request_id=f"r{i}"
            )
        )
        for i in range(40)
    ]
    held = [episode for episode in episodes if episode.holdout]
    assert 4 <= len(held) <= 22
    assert {(e.policy, e.served_by) for e in held} == {("static", "holdout:static")}
    for episode in episodes:
        store.reward(
            RewardRequest(
                customer_id=episode.customer_id,
                timestamp="2026-01-03",
                episode_id=episode.episode_id,
                accepted=True,
                accepted_offer=episode.slate[0],
            )
        )
    path = segment_counter("30-44|Europa|F")
    shards = counters.read_summaries(db, [path])[path].shards
    totals = counters.read_shards(db, {path: shards})[path]
    shown = sum(value.get("shown", 0) for value in totals.values() if isinstance(value, dict))
    accepted = sum(value.get("accepted", 0) for value in totals.values() if isinstance(value, dict))
    learning = len(episodes) - len(held)
    assert (shown, accepted) == (3 * learning, learning)
    outcomes = log.of("outcomes")
    assert len(log.of("decisions")) == len(outcomes) == len(episodes)
    assert sum(r["holdout"] for r in outcomes) == len(held) and {r["reward"] for r in outcomes} == {1.0}
