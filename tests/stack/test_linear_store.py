"""The linear agent served end to end: /predict and /rewards through the gateway with
AGENT_POLICY=linear-ts, and batch scoring, against the Firestore (and storage) emulators."""

import os
import time

import numpy as np
import pytest
import requests

from shared.customer import agents, linear_store, packs, segments
from shared.customer.agents import linear
from shared.customer.agents.linear import Customer
from shared.customer.models import RewardRequest
from shared.customer.store import CustomerStore
from shared.platform import counters
from shared.platform.namespace import ROOT
from tests.store.batch_helpers import deliver, read_csv, upload

OFFERS = [f"OFFER_{n}" for n in range(1, 11)]
# 65+|Europa|F: the static agent ranks OFFER_7 among the last (weight 1 × 2 × 1), so only evidence
# puts it first.
LOVED = "OFFER_7"


def predict(api, customer_id: str, timestamp: str, age: int, gender="F", region="Europa") -> dict:
    body = {
        "customer_id": customer_id,
        "timestamp": timestamp,
        "states": {"age": age, "gender": gender, "region": region},
        "offers": {offer: True for offer in OFFERS},
    }
    answer = requests.post(f"{api}/predict", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def linear_totals(db, offers) -> dict[str, dict]:
    exact = counters.exact_totals(db, [linear_store.counter_path(offer) for offer in offers])
    return {offer: exact[linear_store.counter_path(offer)] for offer in offers}


def add_evidence(db, customer: Customer, times: int) -> None:
    """`times` rewards where the customer took LOVED (named) from a slate with two offers the
    static agent ranks first, added as the reward transaction adds them (one commit per offer)."""
    amounts = linear.update_amounts(customer, [LOVED, "OFFER_9", "OFFER_3"], True, LOVED)
    for offer, fields in linear_store.per_offer(amounts).items():
        batch = db.batch()
        counters.add(batch, db, linear_store.counter_path(offer), {k: v * times for k, v in fields.items()})
        batch.commit()


def test_rewards_move_the_linear_statistics_once_and_a_later_prediction_uses_them(linear_api, db):
    first = predict(linear_api, "c1", "2026-11-24T01:00:00", 70)
    assert (first["policy"], first["agent-version"]) == (agents.LINEAR_TS, agents.version_of(agents.LINEAR_TS))
    slate = first["best-three-offers"]
    assert len(set(slate)) == 3 and set(slate) <= set(OFFERS)
    # the decision adds the slate's shown part (n, xx); nothing is credited before a reward
    shown = linear_totals(db, OFFERS)
    assert {offer for offer, t in shown.items() if t} == set(slate)
    assert all(shown[offer]["n"] == 1 and "xr" not in shown[offer] for offer in slate)
    body = {
        "customer_id": "c1",
        "timestamp": "2026-11-24T01:00:05",
        "accepted_one_of_the_three_offers": True,
        "accepted_offer": slate[1],
        "episode_id": first["episode_id"],
    }
    for _ in range(2):  # a replay counts nothing; the shown part is not counted again
        answer = requests.put(f"{linear_api}/rewards", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
    totals = linear_totals(db, OFFERS)
    x = linear.customer_features(Customer(70, "F", "Europa"))
    segment = f"seg_{linear._name(segments.segment_of(70, 'F', 'Europa'))}"
    for offer in OFFERS:
        if offer not in slate:
            assert totals[offer] == {}
            continue
        assert totals[offer]["n"] == 1
        assert totals[offer]["xx"]["bias"]["age"] == pytest.approx(x[linear.INDEX["age"]])
        assert totals[offer]["xx"][segment][segment] == 1
        # the named offer gets the whole acceptance, the other two nothing
        assert totals[offer].get("xr", {}).get("bias", 0) == (1 if offer == slate[1] else 0)

    # evidence that 65+ Europa women take LOVED: a later prediction (after the freshness bound)
    # for another such customer puts it first
    add_evidence(db, Customer(75, "F", "Europa"), 300)
    assert agents.static_slate(segments.segment_of(72, "F", "Europa"), OFFERS)[0] != LOVED
    time.sleep(float(os.environ["STATS_MAX_AGE_SECONDS"]) + 0.05)
    for n in range(3):
        later = predict(linear_api, f"c{2 + n}", "2026-11-24T01:01:00", 72)
        assert later["best-three-offers"][0] == LOVED
    young = predict(linear_api, "c9", "2026-11-24T01:02:00", 25, "M", "Asia")
    assert young["policy"] == agents.LINEAR_TS and len(set(young["best-three-offers"])) == 3


def test_an_unnamed_acceptance_credits_a_third_to_each_offer(linear_api, db):
    answer = predict(linear_api, "c1", "2026-11-24T02:00:00", 40, "M", "Asia")
    body = {"customer_id": "c1", "timestamp": "2026-11-24T02:00:05", "accepted_one_of_the_three_offers": True}
    assert requests.put(f"{linear_api}/rewards", json=body, timeout=30).status_code == 200
    totals = linear_totals(db, answer["best-three-offers"])
    assert [t["xr"]["bias"] for t in totals.values()] == pytest.approx([1 / 3] * 3)
    assert all(t["n"] == 1 for t in totals.values())


def test_batch_scoring_with_the_linear_agent_scores_each_row_with_its_evidence(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("AGENT_POLICY", agents.LINEAR_TS)
    monkeypatch.setenv("BATCH_INITIAL_OPS_PER_SECOND", "100000")
    monkeypatch.setenv("BATCH_MAX_OPS_PER_SECOND", "100000")
    add_evidence(db, Customer(75, "F", "Europa"), 300)
    header = "customer_id,timestamp,age,gender,region," + ",".join(OFFERS)
    rows = [f"s{i},2022-05-01,{70 + i},F,Europa," + ",".join(["True"] * 10) for i in range(5)]
    rows += [f"y{i},2022-05-01,{20 + i},M,Americas," + ",".join(["True"] * 10) for i in range(5)]
    blob = upload(batch_buckets, "company_b/linear.csv", ("\n".join([header, *rows]) + "\n").encode())
    assert deliver(blob).status_code == 200
    results = {row["customer_id"]: row for row in read_csv(batch_buckets["results"], "company_b/linear.results.csv")}
    assert len(results) == 10
    for customer_id, row in results.items():
        offers = [row["offer_1"], row["offer_2"], row["offer_3"]]
        assert len(set(offers)) == 3 and all(offers)
        if customer_id.startswith("s"):
            assert offers[0] == LOVED
    episode = packs.find(db, ROOT, results["s0"]["episode_id"])
    assert episode.policy == agents.LINEAR_TS
    # Its reward adds the whole update (n and xx were not counted when the file was scored) to the
    # linear statistics, in the reward's one batched write.
    before = linear_totals(db, episode.slate)
    store = CustomerStore(db, np.random.default_rng(0), agents.LINEAR_TS)
    request = {"customer_id": "s0", "timestamp": "2022-05-02", "accepted": True, "episode_id": episode.episode_id}
    store.reward(RewardRequest.model_validate(request | {"accepted_offer": episode.slate[0]}))
    after = linear_totals(db, episode.slate)
    assert [after[o]["n"] - before[o].get("n", 0) for o in episode.slate] == [1, 1, 1]
    gained = after[episode.slate[0]]["xr"]["bias"] - before[episode.slate[0]].get("xr", {}).get("bias", 0)
    assert gained == pytest.approx(1)
