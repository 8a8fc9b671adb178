"""The customer-offers API through the one local URL, with the clients' own files."""

import datetime
import json
import pathlib

import pytest
import requests

from shared.customer import agents
from tools.load_products import load_products_file

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
COMPANY_A = json.loads((EXAMPLES / "company_A.json").read_text())
PRODUCTS = {"OFFER_1": "IPHONE 13", "OFFER_5": "SAMSUNG NOTE 10", "OFFER_10": "APPLE WATCH SERIES 7"}


@pytest.fixture
def products(api):
    load_products_file(str(EXAMPLES / "company_A_products.csv"))
    return api


def eligible_of(request: dict) -> set[str]:
    offers = request["offers"].replace("True", "true").replace("False", "false")
    return {offer for offer, flag in json.loads(offers).items() if flag}


def reward(api, **body):
    return requests.put(f"{api}/rewards", json=body, timeout=30)


def test_is_alive_reports_the_latest_agent_version(api):
    answer = requests.get(f"{api}/is-alive", timeout=30)
    assert answer.status_code == 200
    assert answer.json()["status"] == "I'm alive and running"
    # the default agent's registered version (linear-ucb 1.1.0 since issue 26)
    assert answer.json()["agent-version"] == f"{agents.AGENTS[agents.DEFAULT_AGENT].version}-API"
    assert answer.json()["policy"] == agents.DEFAULT_AGENT == "linear-ucb"


def test_every_company_a_request_gets_three_distinct_eligible_offers_and_each_reward_counts_once(products):
    api = products
    today = datetime.date.today().isoformat()
    episodes = []
    for request in COMPANY_A:
        eligible = eligible_of(request)
        answers = {}
        for path in ("/predict", "/predict-v2"):
            answer = requests.post(f"{api}{path}", json=request, timeout=30)
            assert answer.status_code == 200, answer.text
            body = answers[path] = answer.json()
            offers = list(body["best-three-offers"])
            assert len(offers) == len(set(offers)) == min(3, len(eligible))
            assert set(offers) <= eligible
            assert body["customer_id"] == request["customer_id"] and body["response-date"] == today
            assert body["recorded"] is True
            if path == "/predict-v2":
                assert all(body["best-three-offers"][o] for o in offers)  # every offer has its product
        # the same customer and timestamp is the same request, through either path: one episode
        assert answers["/predict-v2"]["episode_id"] == answers["/predict"]["episode_id"]
        assert list(answers["/predict-v2"]["best-three-offers"]) == answers["/predict"]["best-three-offers"]
        episodes.append((request, answers["/predict"]["episode_id"]))
    for index, (request, episode_id) in enumerate(episodes):
        body = {
            "customer_id": request["customer_id"],
            "timestamp": request["timestamp"],
            "accepted_one_of_the_three_offers": index % 3 == 0,
            "episode_id": episode_id,
        }
        first = reward(api, **body)
        again = reward(api, **body)
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
    shown = _segment_totals(api, "shown")
    accepted = _segment_totals(api, "accepted")
    assert shown == sum(min(3, len(eligible_of(r))) for r, _ in episodes)
    assert accepted == sum(min(3, len(eligible_of(r))) for i, (r, _) in enumerate(episodes) if i % 3 == 0)


def _segment_totals(api, field):
    from shared.platform import counters
    from shared.platform.firestore import get_db

    db = get_db()
    total = 0
    for segment in db.collection("agent_segments").list_documents():
        summed = counters.exact_totals(db, [segment.path])[segment.path]
        total += sum(offer.get(field, 0) for offer in summed.values() if isinstance(offer, dict))
    return total


def test_predict_v2_says_when_an_offer_has_no_product(products):
    request = {
        "customer_id": "9",
        "timestamp": "2022-01-01",
        "states": {"age": 30, "gender": "F", "region": "Asia"},
        "offers": {"OFFER_1": True, "OFFER_77": True},
    }
    body = requests.post(f"{products}/predict-v2", json=request, timeout=30).json()
    assert body["best-three-offers"]["OFFER_1"] == "IPHONE 13"
    assert body["best-three-offers"]["OFFER_77"] is None and body["missing-product-names"] == ["OFFER_77"]


def test_a_retried_predict_returns_the_same_episode_and_slate(api):
    request = dict(COMPANY_A[0])
    first = requests.post(f"{api}/predict", json=request, timeout=30).json()
    for _ in range(3):
        again = requests.post(f"{api}/predict", json=request, timeout=30).json()
        assert (again["episode_id"], again["best-three-offers"]) == (first["episode_id"], first["best-three-offers"])
    # a request id, when given, identifies the request instead of the timestamp
    tagged = [requests.post(f"{api}/predict", json=request | {"request_id": f"r{n}"}, timeout=30) for n in (1, 2, 1)]
    ids = [answer.json()["episode_id"] for answer in tagged]
    assert ids[0] == ids[2] != ids[1] and first["episode_id"] not in ids


def test_a_reward_without_episode_id_goes_to_the_one_open_episode_and_a_retry_counts_once(api):
    request = dict(COMPANY_A[0])
    episode = requests.post(f"{api}/predict", json=request, timeout=30).json()["episode_id"]
    body = {"customer_id": request["customer_id"], "timestamp": "2022-03-20", "accepted_one_of the_three_offers": True}
    first = reward(api, **body)
    assert first.status_code == 200 and first.json()["episode_id"] == episode
    retry = reward(api, **body)
    assert retry.json() == first.json()
    nothing_left = reward(api, **(body | {"timestamp": "2022-03-22"}))
    assert nothing_left.status_code == 404 and nothing_left.json()["field"] == "customer_id"


def test_a_reward_without_episode_id_when_two_episodes_are_open_is_409_naming_episode_id(api):
    request = dict(COMPANY_A[0])
    older = requests.post(f"{api}/predict", json=request | {"timestamp": "2022-03-12T10:00:00"}, timeout=30).json()
    newer = requests.post(f"{api}/predict", json=request | {"timestamp": "2022-03-12T10:05:00"}, timeout=30).json()
    assert older["episode_id"] != newer["episode_id"]
    body = {"customer_id": request["customer_id"], "timestamp": "2022-03-20", "accepted_one_of_the_three_offers": False}
    ambiguous = reward(api, **body)
    assert ambiguous.status_code == 409 and ambiguous.json()["field"] == "episode_id"
    assert "episode_id" in ambiguous.json()["error"]
    named = reward(api, **body, episode_id=newer["episode_id"])
    assert named.status_code == 200
    # one open episode left: a reward without episode_id goes to it; its retry is recognised
    last = reward(api, **(body | {"timestamp": "2022-03-21"}))
    assert last.status_code == 200 and last.json()["episode_id"] == older["episode_id"]
    assert reward(api, **(body | {"timestamp": "2022-03-21"})).json() == last.json()


def test_reward_errors(api):
    request = COMPANY_A[1]
    episode = requests.post(f"{api}/predict", json=request, timeout=30).json()
    base = {"customer_id": request["customer_id"], "timestamp": "2022-02-01", "episode_id": episode["episode_id"]}
    assert reward(api, **base, accepted_one_of_the_three_offers=True).status_code == 200
    conflict = reward(api, **base, accepted_one_of_the_three_offers=False)
    assert conflict.status_code == 409
    unknown = reward(api, **(base | {"episode_id": "nope"}), accepted_one_of_the_three_offers=True)
    assert unknown.status_code == 404 and unknown.json()["field"] == "episode_id"
    stranger = reward(api, **(base | {"customer_id": "someone-else"}), accepted_one_of_the_three_offers=True)
    assert stranger.status_code == 404
    never = reward(api, customer_id="never-seen", timestamp="2022-01-01", accepted_one_of_the_three_offers=True)
    assert never.status_code == 404
    wrong_offer = reward(api, **(base | {"accepted_offer": "OFFER_99"}), accepted_one_of_the_three_offers=True)
    assert wrong_offer.status_code == 400 and wrong_offer.json()["field"] == "accepted_offer"
    missing = reward(api, customer_id="1", timestamp="2022-01-01")
    assert missing.status_code == 400 and missing.json()["field"] == "accepted_one_of_the_three_offers"


@pytest.mark.parametrize(
    "body, status, field",
    [
        ("{not json", 400, "body"),
        ("[1, 2]", 400, "body"),
        ("", 400, "body"),
        (json.dumps({"customer_id": "1"}), 400, "timestamp"),
        (
            json.dumps(
                {
                    "customer_id": "1",
                    "timestamp": "2022-01-01",
                    "states": "{'age': 'x', 'gender': 'F', 'region': 'Asia'}",
                    "offers": "{'OFFER_1': True}",
                }
            ),
            400,
            "states.age",
        ),
        (
            json.dumps(
                {
                    "customer_id": "1",
                    "timestamp": "2022-01-01",
                    "states": "{'age': 3, 'gender': 'F', 'region': 'Mars'}",
                    "offers": "{'OFFER_1': True}",
                }
            ),
            400,
            "states.region",
        ),
        (
            json.dumps(
                {
                    "customer_id": "1",
                    "timestamp": "2022-01-01",
                    "states": "{'age': 3, 'gender': 'F', 'region': 'Asia'}",
                    "offers": "{'OFFER_1': False}",
                }
            ),
            400,
            "offers",
        ),
        (
            json.dumps(
                {
                    "customer_id": "1",
                    "timestamp": "2022-01-01",
                    "states": "__import__('os').getcwd()",
                    "offers": "{'OFFER_1': True}",
                }
            ),
            400,
            "states",
        ),
        ("[" * 5000 + "]" * 5000, 400, "body"),
        (json.dumps({"customer_id": "x" * 100_000}), 413, "body"),
    ],
)
def test_bad_predict_bodies_are_4xx_naming_the_field(api, body, status, field):
    for path in ("/predict", "/predict-v2"):
        answer = requests.post(f"{api}{path}", data=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert answer.status_code == status, answer.text
        assert answer.json()["field"] == field


def test_wrong_methods_are_405(api):
    assert requests.get(f"{api}/predict", timeout=30).status_code == 405
    assert requests.post(f"{api}/rewards", json={}, timeout=30).status_code == 405
    assert requests.post(f"{api}/is-alive", timeout=30).status_code == 405
