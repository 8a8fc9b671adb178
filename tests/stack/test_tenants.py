"""Every client its own tenant (issue 23), through the one local URL: two tenants with the same offer
ids, customer ids and offer names never see, change or learn from each other's data; a request
without a valid key is a 401 on every route; a rotated key works beside the old one until the old
one is removed; no key reaches a log line."""

import io
import json
import os
import tempfile

import pytest
import requests
from google.cloud import storage

from devstack import emulators
from devstack.routes import load_routes
from devstack.serve import start_in_background
from shared.batch import job as batch_job
from shared.customer import segments
from shared.platform.namespace import Namespace
from tests.conftest import PROJECT, TEST_KEYS, api_key_tenants, function_client
from tools.load_products import load_products_file

A_KEY, A_NEXT_KEY = TEST_KEYS["tenant_a"]
B_KEY = TEST_KEYS["tenant_b"][0]
A, B = {"x-api-key": A_KEY}, {"x-api-key": B_KEY}
OFFERS = {f"OFFER_{n}": True for n in range(1, 11)}
TRAINED = {"age": 33, "gender": "F", "region": "Asia"}  # segment 30-44|Asia|F, where A teaches OFFER_1
SEGMENT_CUSTOMERS = [  # one B customer per segment: each B slate is its segment's first decision
    {"age": (low + min(high, 90)) / 2, "gender": gender, "region": region}
    for low, high, _ in segments.AGE_BANDS
    for region in segments.REGIONS
    for gender in segments.GENDERS
]


@pytest.fixture(scope="module")
def seeded_gateways(firestore_emulator):
    """Two gateways with the same DECISION_SEED: each tenant's draws start from the same state in both.
    Their statistics copies are re-read for every decision (STATS_MAX_AGE_SECONDS of 1 ms): the default
    customer agent's per-offer model learns from each of B's episodes, so with the usual cache a B slate
    would depend on how stale B's own copy was, which differs from run to run, not on A."""
    started = []

    def start():
        log = tempfile.NamedTemporaryFile(prefix="tenants-gateway-", suffix=".log", delete=False)
        env = {**os.environ, **firestore_emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT, "DECISION_SEED": "23"}
        env["STATS_MAX_AGE_SECONDS"] = "0.001"
        process, url = start_in_background(emulators.free_port(), env, log)
        started.append(process)
        return url, log.name

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def _ok(answer: requests.Response) -> dict:
    assert answer.status_code == 200, answer.text
    return answer.json()


def a_traffic(url: str) -> None:
    """Tenant A: clicks on offers 1-3 with rewards, and 40 customers of one segment who all take OFFER_1."""
    for click in range(1, 101):
        chosen = _ok(requests.get(f"{url}/sample", params={"click_id": click, "offer_ids": "1,2,3"}, headers=A))
        reward = 5000 if chosen["offer_id"] == 1 else 0
        _ok(requests.put(f"{url}/feedback", params={"click_id": click, "reward": reward}, headers=A))
    three = {f"OFFER_{n}": n <= 3 for n in range(1, 11)}  # OFFER_1 always in the slate, always taken
    for n in range(40):
        body = {"customer_id": f"c{n}", "timestamp": "2026-12-01", "states": TRAINED, "offers": three}
        episode = _ok(requests.post(f"{url}/predict", json=body, headers=A))
        reward = {"customer_id": f"c{n}", "timestamp": "2026-12-02", "accepted": True, "accepted_offer": "OFFER_1"}
        _ok(requests.put(f"{url}/rewards", json=reward | {"episode_id": episode["episode_id"]}, headers=A))


def b_traffic(url: str, db, buckets) -> dict:
    """Tenant B's own traffic, with A's click ids and customer ids; what B gets back and what it has."""
    chosen = []
    for click in range(1, 31):  # `random`: B's choices depend on B's draws alone, its statistics on them
        params = {"click_id": click, "offer_ids": "1,2,3", "sampler": "random"}
        chosen.append(_ok(requests.get(f"{url}/sample", params=params, headers=B))["offer_id"])
        _ok(requests.put(f"{url}/feedback", params={"click_id": click, "reward": 100 * chosen[-1]}, headers=B))
    stats = [_ok(requests.get(f"{url}/offer_ids/{offer}/stats", headers=B)) for offer in (1, 2, 3)]
    slates = []
    for n, states in enumerate([TRAINED, *SEGMENT_CUSTOMERS]):
        body = {"customer_id": f"c{n}", "timestamp": "2026-12-03", "states": states, "offers": OFFERS}
        slates.append(_ok(requests.post(f"{url}/predict", json=body, headers=B))["best-three-offers"])
    return {"chosen": chosen, "stats": stats, "slates": slates, "batch": b_batch(db, buckets)}


def b_batch(db, buckets) -> list[list[str]]:
    """B's file (200 customers of A's trained segment), scored in B's namespace. Its draws are seeded by
    the file (bucket, name, generation): the same object both times, so the same seed."""
    blob = buckets["inbox"].blob("company_b/december.csv")
    if not blob.exists():
        rows = ["customer_id,timestamp,age,gender,client-since,region,last_offer," + ",".join(OFFERS)]
        rows += [f"c{n},2026-12-03,33,F,2015-01-01,Asia,OFFER_2," + ",".join(["True"] * 10) for n in range(200)]
        blob.upload_from_string(("\n".join(rows) + "\n").encode(), content_type="text/csv")
    blob.reload()
    upload = batch_job.Upload(blob.bucket.name, blob.name, str(blob.generation))
    results = buckets["results"].name
    job = batch_job.Job(upload, db, storage.Client(project=PROJECT), results, space=Namespace("tenant_b"))
    assert job.run()["state"] == "done"
    text = buckets["results"].blob("company_b/december.results.csv").download_as_text()
    return [line.split(",")[1:4] for line in io.StringIO(text).read().splitlines()[1:]]


def test_a_tenants_traffic_leaves_another_tenants_statistics_slates_and_batch_results_as_they_were(
    seeded_gateways, db, batch_buckets, monkeypatch
):
    monkeypatch.setenv("BATCH_INITIAL_OPS_PER_SECOND", "100000")
    monkeypatch.setenv("BATCH_MAX_OPS_PER_SECOND", "100000")
    with_a, _ = seeded_gateways()
    a_traffic(with_a)
    beside_a = b_traffic(with_a, db, batch_buckets)
    # A did learn: its own next customer of that segment is offered OFFER_1
    late = {"customer_id": "late", "timestamp": "2026-12-09", "states": TRAINED, "offers": OFFERS}
    assert "OFFER_1" in _ok(requests.post(f"{with_a}/predict", json=late, headers=A))["best-three-offers"]

    emulators.clear_firestore(os.environ["FIRESTORE_EMULATOR_HOST"], PROJECT)
    for blob in batch_buckets["results"].list_blobs():
        blob.delete()
    alone, _ = seeded_gateways()  # a new process: B's generator starts where it started beside A
    without_a = b_traffic(alone, db, batch_buckets)

    assert beside_a == without_a


def test_a_client_reaches_none_of_another_clients_data(api, db):
    _ok(requests.get(f"{api}/sample", params={"click_id": 1, "offer_ids": "7"}, headers=A))
    _ok(requests.put(f"{api}/feedback", params={"click_id": 1, "reward": 900}, headers=A))
    assert _ok(requests.get(f"{api}/offer_ids/7/stats", headers=A))["reward"] == 900
    body = {"customer_id": "shared-1", "timestamp": "2026-12-01", "states": TRAINED, "offers": OFFERS}
    episode = _ok(requests.post(f"{api}/predict-v2", json=body, headers=A))
    load_products_file("examples/company_A_products.csv", Namespace("tenant_a"))
    accepted = {"customer_id": "shared-1", "timestamp": "2026-12-02", "accepted": True}

    refused = [
        requests.get(f"{api}/offer_ids/7/stats", headers=B),  # B never served offer 7: its own, none
        requests.put(f"{api}/feedback", params={"click_id": 1, "reward": 5}, headers=B),  # A's click
        requests.put(f"{api}/rewards", json=accepted, headers=B),  # A's customer, by id
        requests.put(f"{api}/rewards", json=accepted | {"episode_id": episode["episode_id"]}, headers=B),
        requests.post(f"{api}/admin_reset", json={"offer": 7, "tenant": "tenant_a"}, headers=B),  # not routed
    ]
    for answer in refused:
        assert answer.status_code in (403, 404) and answer.headers["Content-Type"] == "application/json", answer.text
    # the operators' reset function itself refuses a client's key (it takes an operator's identity token)
    reset = function_client("admin_reset", B_KEY).post("/", json={"offer": 7, "tenant": "tenant_a"})
    assert reset.status_code == 401 and reset.get_json()["field"] == "Authorization"
    # A's products are A's: B's prediction names none of them
    names = _ok(requests.post(f"{api}/predict-v2", json=body, headers=B))["best-three-offers"]
    assert set(names.values()) == {None}
    assert set(_ok(requests.post(f"{api}/predict-v2", json=body, headers=A))["best-three-offers"].values()) != {None}
    # and nothing of B's moved A's counters or episode
    assert _ok(requests.get(f"{api}/offer_ids/7/stats", headers=A))["reward"] == 900
    stored = db.document(f"tenants/tenant_a/episodes/{episode['episode_id']}").get()
    assert stored.exists and stored.get("up_to_date") is False


def test_no_key_or_a_wrong_key_is_a_401_json_on_every_route_and_no_key_reaches_a_log(seeded_gateways, db):
    url, log = seeded_gateways()
    for route in load_routes():
        path = route.path.replace("{offer_id}", "7")
        for method in route.methods:
            for headers in ({"x-api-key": None}, {"x-api-key": "not-a-key-of-anyone"}):
                answer = requests.request(method, f"{url}{path}", headers=headers, json={}, timeout=30)
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.json()["field"] == "x-api-key"
    for key in (A_KEY, A_NEXT_KEY, B_KEY):  # used: each must still be absent from the log
        _ok(requests.get(f"{url}/is-alive", headers={"x-api-key": key}))
    written = open(log, encoding="utf-8").read()
    assert written and "not-a-key-of-anyone" not in written
    for key in (A_KEY, A_NEXT_KEY, B_KEY, TEST_KEYS["default"][0]):
        assert key not in written
    assert '"tenant": "tenant_a"' in written  # each request's line says which tenant it served


def test_a_rotated_key_works_beside_the_old_one_until_the_old_one_is_removed(seeded_gateways, db, firestore_emulator):
    url, _ = seeded_gateways()
    clicked = _ok(requests.get(f"{url}/sample", params={"click_id": 5, "offer_ids": "1,2"}, headers=A))
    fed = _ok(requests.put(f"{url}/feedback", params={"click_id": 5, "reward": 10}, headers={"x-api-key": A_NEXT_KEY}))
    assert fed["offer_id"] == clicked["offer_id"]  # both keys are tenant A: one click, found by either
    # the old key removed from the registry (a new deployment): the new key alone works
    env = {
        **os.environ,
        **firestore_emulator.env,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "API_KEY_TENANTS": api_key_tenants({"tenant_a": [A_NEXT_KEY]}),
    }
    process, rotated = start_in_background(emulators.free_port(), env)
    try:
        assert (
            requests.get(f"{rotated}/offer_ids/{clicked['offer_id']}/stats", headers=A, timeout=30).status_code == 401
        )
        stats = _ok(requests.get(f"{rotated}/offer_ids/{clicked['offer_id']}/stats", headers={"x-api-key": A_NEXT_KEY}))
        assert stats["reward"] == 10
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_reused_episode_key_or_click_id_with_other_offers_is_a_409_naming_the_field(api):
    body = {"customer_id": "1", "timestamp": "2026-12-01", "states": TRAINED, "offers": OFFERS}
    first = _ok(requests.post(f"{api}/predict", json=body, headers=A))
    assert _ok(requests.post(f"{api}/predict", json=body, headers=A))["episode_id"] == first["episode_id"]
    narrower = {f"OFFER_{n}": n >= 8 for n in range(1, 11)}
    conflict = requests.post(f"{api}/predict", json=body | {"offers": narrower}, headers=A)
    assert conflict.status_code == 409 and conflict.json()["field"] == "offers"
    older = requests.post(f"{api}/predict-v2", json=body | {"states": TRAINED | {"age": 70}}, headers=A)
    assert older.status_code == 409 and older.json()["field"] == "states"
    # another tenant's customer "1" on the same day is its own episode, with its own offers
    other = _ok(requests.post(f"{api}/predict", json=body | {"offers": narrower}, headers=B))
    assert set(other["best-three-offers"]) == {"OFFER_8", "OFFER_9", "OFFER_10"}

    _ok(requests.get(f"{api}/sample", params={"click_id": 9, "offer_ids": "1,2,3"}, headers=A))
    assert _ok(requests.get(f"{api}/sample", params={"click_id": 9, "offer_ids": "1,2,3"}, headers=A))["recorded"]
    reused = requests.get(f"{api}/sample", params={"click_id": 9, "offer_ids": "4,5"}, headers=A)
    assert reused.status_code == 409 and reused.json()["field"] == "offer_ids"


def test_a_client_over_its_allowance_is_a_429_and_the_others_are_served(firestore_emulator, db):
    env = {
        **os.environ,
        **firestore_emulator.env,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "TENANT_REQUESTS_PER_MINUTE": json.dumps({"tenant_a": 6, "tenant_b": 6000}),
        "MAX_INSTANCES": "1",
    }
    process, url = start_in_background(emulators.free_port(), env)
    try:
        answers = [requests.get(f"{url}/is-alive", headers=A, timeout=30) for _ in range(3)]
        assert [answer.status_code for answer in answers] == [200, 429, 429]  # 6 a minute: one now
        assert answers[1].json()["field"] == "x-api-key" and int(answers[1].headers["Retry-After"]) >= 1
        assert all(requests.get(f"{url}/is-alive", headers=B, timeout=30).ok for _ in range(20))
    finally:
        process.terminate()
        process.wait(timeout=10)
