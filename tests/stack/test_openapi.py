"""infra/openapi.json describes the API completely, and the running local stack answers as it says:
every status it produces is declared for its operation, and every body matches the declared schema."""

import json
import os
import tempfile

import pytest
import requests

from devstack import emulators
from devstack.serve import start_in_background
from tests.openapi_check import check
from tests.stack.test_limits import raw_request

PREDICT = {
    "customer_id": "153734",
    "timestamp": "2022-03-12",
    "states": "{'age': 54, 'gender': 'F', 'region': 'Asia', 'client-since': '2015-12-18'}",
    "offers": "{'OFFER_1': True, 'OFFER_2': False, 'OFFER_3': True, 'OFFER_77': True}",
}


class Recorder:
    """Sends requests to one base URL and keeps every (method, path, status, body) for checking."""

    def __init__(self, url: str):
        self.url = url
        self.answers = []

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        answer = requests.request(method, f"{self.url}{path}", timeout=30, **kwargs)
        assert answer.headers["Content-Type"].startswith("application/json"), answer.text
        self.answers.append((method, path.split("?")[0], answer.status_code, answer.json()))
        return answer

    def problems(self) -> list[str]:
        return [problem for answer in self.answers for problem in check(*answer)]


def test_answers_of_the_running_stack_match_the_spec(api):
    call = Recorder(api)
    first = call("GET", "/sample", params={"click_id": 1, "offer_ids": "3,5,7"}).json()
    call("GET", "/sample/", params={"click_id": 1, "offer_ids": "3,5,7"})
    call("GET", "/sample", params={"click_id": 2, "offer_ids": "3,5", "sampler": "klucb"})
    call("GET", "/sample", params={"click_id": "x", "offer_ids": "3"})
    call("POST", "/sample")
    call("PUT", "/feedback", params={"click_id": 1, "reward": 250})
    call("PUT", "/feedback", params={"click_id": 1, "reward": 300})  # 409
    call("PUT", "/feedback", params={"click_id": 1, "reward": 50, "event_id": "deposit"})
    call("PUT", "/feedback", params={"click_id": 1, "reward": 50, "event_id": "no spaces"})  # 400
    call("PUT", "/feedback", params={"click_id": 999, "reward": 0})  # 404
    call("PUT", "/feedback", params={"click_id": 1, "reward": 1e10})  # 400
    call("PUT", "/feedback", data=b"x" * 70_000)  # 413
    call("GET", f"/offer_ids/{first['offer_id']}/stats")
    call("GET", "/offer_ids/8/stats/")
    call("GET", "/offer_ids/abc/stats")
    call("GET", "/sample", params={"click_id": 3, "offer_ids": "3,5", "payouts": "250,", "floor": 0.05})
    call("GET", "/sample", params={"click_id": 4, "offer_ids": "3,5", "payouts": "250"})  # 400
    context = {"geo": "fr", "device": "mobile", "os": "Android", "source": "pub-1"}
    assert (
        call("GET", "/sample", params={"click_id": 5, "offer_ids": "3,5", **context}).json()["sampler"] == "contextual"
    )
    named = {"click_id": 7, "offer_ids": "3,5", "sampler": "thompson", **context}
    assert call("GET", "/sample", params=named).json()["sampler"] == "thompson"
    assert call("GET", "/sample", params={"click_id": 6, "offer_ids": "3,5", "geo": "XX"}).json()["field"] == "geo"
    call("GET", "/offers/compare", params={"offer_ids": f"{first['offer_id']},8,9"})
    call("GET", "/offers/compare/", params={"offer_ids": "9"})  # no conversion: null intervals
    call("GET", "/offers/compare", params={"offer_ids": ",".join(map(str, range(21)))})  # 400
    call("POST", "/offers/compare")
    call("GET", "/is-alive")
    call("POST", "/is-alive")
    episode = call("POST", "/predict", json=PREDICT).json()["episode_id"]
    call("POST", "/predict-v2", json=PREDICT)
    call("POST", "/predict", json=PREDICT | {"states": "{'age': 200}"})
    call("PUT", "/rewards", json={"customer_id": "153734", "timestamp": "2022-03-13", "accepted": True})
    call(
        "PUT",
        "/rewards",
        json={"customer_id": "153734", "timestamp": "2022-03-13", "accepted": False, "episode_id": episode},
    )  # 409
    call("POST", "/predict", json=PREDICT | {"timestamp": "2022-03-14"})
    call("POST", "/predict", json=PREDICT | {"timestamp": "2022-03-15"})
    call("PUT", "/rewards", json={"customer_id": "153734", "timestamp": "2022-03-16", "accepted": True})  # 409
    call("PUT", "/rewards", json={"customer_id": "nobody", "timestamp": "2022-03-16", "accepted": True})  # 404
    call("GET", "/rewards")
    statuses = {status for _, _, status, _ in call.answers}
    assert statuses == {200, 400, 404, 405, 409, 413}
    assert call.problems() == []
    status, _, body = raw_request(api, b"GET /sample?x=" + b"a" * 5000 + b" HTTP/1.1")
    assert check("GET", "/sample", status, json.loads(body)) == []


@pytest.fixture(scope="module")
def unreachable_gateways(firestore_emulator):
    """Two gateways whose Firestore is a closed port: one answering 503, one in DEGRADED_MODE."""
    dead = {"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{emulators.free_port()}", "GOOGLE_CLOUD_PROJECT": "nowhere"}
    started = []
    for mode in ("off", "on"):
        log = tempfile.NamedTemporaryFile(prefix=f"gateway-unreachable-{mode}-", suffix=".log", delete=False)
        started.append(start_in_background(emulators.free_port(), {**os.environ, **dead, "DEGRADED_MODE": mode}, log))
    yield [url for _, url in started]
    for process, _ in started:
        process.terminate()
        process.wait(timeout=10)


def test_unreachable_firestore_answers_503_or_the_degraded_answer_as_declared(unreachable_gateways):
    plain, degraded = (Recorder(url) for url in unreachable_gateways)
    for call in (plain, degraded):
        call("GET", "/sample", params={"click_id": 1, "offer_ids": "3,5,7"})
        call("PUT", "/feedback", params={"click_id": 1, "reward": 0})
        call("GET", "/offer_ids/3/stats")
        call("GET", "/is-alive")
        call("POST", "/predict", json=PREDICT)
        call("POST", "/predict-v2", json=PREDICT)
        call("PUT", "/rewards", json={"customer_id": "1", "timestamp": "2022-03-13", "accepted": True})
        call("GET", "/sample", params={"click_id": "x", "offer_ids": "3"})
    # with the breaker open, the plain gateway answers 503 before looking at the input; the degraded
    # answer parses it, so bad input is still a 400 there
    assert [a[2] for a in plain.answers] == [503] * 8
    assert [a[2] for a in degraded.answers] == [200, 503, 503, 503, 200, 200, 503, 400]
    sample = degraded.answers[0][3]
    assert sample["recorded"] is False and sample["sampler"] == "random" and sample["probability"] == 1 / 3
    assert sample["offer_id"] in (3, 5, 7)
    prediction = degraded.answers[4][3]
    assert prediction["recorded"] is False and prediction["episode_id"] is None and prediction["policy"] == "static"
    assert plain.problems() == [] and degraded.problems() == []
