"""Rewards for episodes of scored files (shared/customer/batch_rewards.py): found by episode_id with
one pack read, or without it among the customer's open episodes; exactly once, per tenant."""

import concurrent.futures
import datetime

import numpy as np
import pytest

from shared.customer import packs
from shared.customer.models import PredictRequest, RewardRequest
from shared.customer.store import CustomerStore
from shared.platform import counters, errors
from shared.platform.namespace import ROOT, Namespace

from .batch_helpers import HEADER, UNTHROTTLED, deliver, read_csv, status_of, upload

FLAGS = ",".join(["True"] * 10)


@pytest.fixture(autouse=True)
def unthrottled(monkeypatch):
    for name, value in UNTHROTTLED.items():
        monkeypatch.setenv(name, value)


def score_file(buckets, db, name: str, lines: list[str]) -> dict[str, list[dict]]:
    """Score a file inside the function; the result rows by customer id."""
    blob = upload(buckets, name, ("\n".join([HEADER, *lines]) + "\n").encode())
    assert deliver(blob).status_code == 200
    assert status_of(db, blob, _space_of(name)).get("state") == "done"
    rows: dict[str, list[dict]] = {}
    for row in read_csv(buckets["results"], name.replace(".csv", ".results.csv")):
        rows.setdefault(row["customer_id"], []).append(row)
    return rows


def _space_of(name: str) -> Namespace:
    import json
    import os

    tenants = os.environ.get("BATCH_TENANTS")
    return Namespace(json.loads(tenants)[name.split("/")[0]]) if tenants else ROOT


def line(customer: str, age: int = 40, region: str = "Asia") -> str:
    return f"{customer},2022-05-01,{age},F,2015-01-01,{region},OFFER_2,{FLAGS}"


def store(db, space: Namespace = ROOT, clock=None) -> CustomerStore:
    return CustomerStore(db, np.random.default_rng(0), space=space, clock=clock)


def reward(db, space=ROOT, clock=None, **fields) -> object:
    request = RewardRequest.model_validate({"timestamp": "2022-05-03", "accepted": True, **fields})
    return store(db, space, clock).reward(request)


def segment_totals(db, space: Namespace = ROOT) -> dict:
    paths = [ref.path for ref in db.collection(space.path("agent_segments")).list_documents()]
    totals = counters.exact_totals(db, paths)
    return {
        path.rsplit("/", 1)[1]: {offer: counts for offer, counts in total.items() if isinstance(counts, dict)}
        for path, total in totals.items()
    }


def test_a_reward_naming_a_batch_episode_counts_once(batch_buckets, db):
    rows = score_file(batch_buckets, db, "company_b/r1.csv", [line("c1"), line("c2")])
    row = rows["c1"][0]
    slate = [row["offer_1"], row["offer_2"], row["offer_3"]]
    first = reward(db, customer_id="c1", episode_id=row["episode_id"], accepted_offer=slate[1])
    assert (first.episode_id, first.slate, first.accepted, first.accepted_offer) == (
        row["episode_id"],
        slate,
        True,
        slate[1],
    )
    again = reward(db, customer_id="c1", episode_id=row["episode_id"], accepted_offer=slate[1])
    assert again == first
    totals = segment_totals(db)["30-44|Asia|F"]
    assert {offer: counts.get("shown") for offer, counts in totals.items()} == dict.fromkeys(slate, 1)
    assert {offer: counts.get("accepted") for offer, counts in totals.items() if counts.get("accepted")} == {
        slate[1]: 1
    }
    with pytest.raises(errors.Conflict):
        reward(db, customer_id="c1", episode_id=row["episode_id"], accepted=False)
    with pytest.raises(errors.NotFound):
        reward(db, customer_id="c2", episode_id=row["episode_id"])  # another customer's episode
    with pytest.raises(errors.NotFound):
        reward(db, customer_id="c1", episode_id=row["episode_id"][:-1] + "f0")  # no such row in the pack
    with pytest.raises(errors.Invalid):
        reward(db, customer_id="c2", episode_id=rows["c2"][0]["episode_id"], accepted_offer="OFFER_99")
    reward_document = db.collection("rewards").document(row["episode_id"]).get().to_dict()
    assert reward_document["customer_id"] == "c1" and reward_document["batch"] is True


def test_concurrent_rewards_of_one_batch_episode_count_once(batch_buckets, db):
    rows = score_file(batch_buckets, db, "company_b/r2.csv", [line("c1")])
    episode_id = rows["c1"][0]["episode_id"]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda _: reward(db, customer_id="c1", episode_id=episode_id), range(4)))
    assert len({outcome.episode_id for outcome in outcomes}) == 1
    shown = sum(c.get("shown", 0) for c in segment_totals(db)["30-44|Asia|F"].values())
    assert shown == 3


def test_a_reward_without_episode_id_finds_the_batch_episode_and_its_replay(batch_buckets, db):
    rows = score_file(batch_buckets, db, "company_b/r3.csv", [line("c1"), line("twice"), line("twice", 70)])
    found = reward(db, customer_id="c1")
    assert found.episode_id == rows["c1"][0]["episode_id"]
    assert reward(db, customer_id="c1") == found  # the same reward at the same timestamp: a replay
    with pytest.raises(errors.NotFound):  # rewarded: nothing awaits a reward any more
        reward(db, customer_id="c1", timestamp="2022-05-04")
    with pytest.raises(errors.Conflict) as ambiguous:  # on two lines of the file: say which
        reward(db, customer_id="twice")
    assert ambiguous.value.field == "episode_id"
    with pytest.raises(errors.NotFound):
        reward(db, customer_id="nobody")


def test_an_open_predict_episode_and_an_open_batch_episode_are_a_conflict(batch_buckets, db):
    score_file(batch_buckets, db, "company_b/r4.csv", [line("c1")])
    predicted = store(db).predict(
        PredictRequest.model_validate(
            {
                "customer_id": "c1",
                "timestamp": "2022-05-02",
                "states": {"age": 40, "gender": "F", "region": "Asia"},
                "offers": {"OFFER_1": True, "OFFER_2": True, "OFFER_3": True},
            }
        )
    )
    with pytest.raises(errors.Conflict):
        reward(db, customer_id="c1")
    assert reward(db, customer_id="c1", episode_id=predicted.episode_id).episode_id == predicted.episode_id
    assert reward(db, customer_id="c1", timestamp="2022-05-05").episode_id.startswith("b-")


def test_after_the_reward_window_a_batch_episode_needs_its_id_and_is_late(batch_buckets, db):
    rows = score_file(batch_buckets, db, "company_b/r5.csv", [line("c1")])
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=8)
    with pytest.raises(errors.NotFound):
        reward(db, clock=lambda: later, customer_id="c1")
    late = reward(db, clock=lambda: later, customer_id="c1", episode_id=rows["c1"][0]["episode_id"])
    assert late.late is True


def test_a_tenants_batch_episodes_are_its_own(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("BATCH_TENANTS", '{"company_b": "acme", "company_c": "globex"}')
    rows = score_file(batch_buckets, db, "company_b/r6.csv", [line("c1")])
    episode_id = rows["c1"][0]["episode_id"]
    with pytest.raises(errors.NotFound):
        reward(db, ROOT, customer_id="c1", episode_id=episode_id)
    with pytest.raises(errors.NotFound):
        reward(db, Namespace("globex"), customer_id="c1")
    assert reward(db, Namespace("acme"), customer_id="c1").episode_id == episode_id
    assert db.document(Namespace("acme").path(packs.RECENT)).get().exists
    assert not db.document(packs.RECENT).get().exists


def test_a_folder_no_client_names_is_refused_when_tenants_are_configured(batch_buckets, db, monkeypatch):
    monkeypatch.setenv("BATCH_TENANTS", '{"company_c": "globex"}')
    blob = upload(batch_buckets, "company_b/refused.csv", ("\n".join([HEADER, line("c1")]) + "\n").encode())
    assert deliver(blob).status_code == 200
    status_ = status_of(db, blob)
    assert status_["state"] == "failed" and "company_b" in status_["reason"] and "no client" in status_["reason"]
    assert not list(batch_buckets["results"].list_blobs())


def test_a_pack_written_under_its_unspread_id_is_still_found(batch_buckets, db):
    """Packs written before their ids got a hash in front (`{file}-{bucket}`) are read on a miss."""
    rows = score_file(batch_buckets, db, "company_b/r_old.csv", [line("c9")])
    episode_id = rows["c9"][0]["episode_id"]
    key, bucket, _ = packs.parse_episode_id(episode_id)
    collection = db.collection(packs.PACKS)
    spread = collection.document(packs.pack_id(key, bucket))
    collection.document(packs.pack_id(key, bucket, spread=False)).set(spread.get().to_dict())
    spread.delete()
    found = packs.find(db, ROOT, episode_id)
    assert found is not None and found.episode_id == episode_id
    assert reward(db, customer_id="c9", episode_id=episode_id).episode_id == episode_id
