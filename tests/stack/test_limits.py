"""Every input bounded and typed, through the one local URL: each hand-made input that once gave a
500 or an HTML page is a 4xx with a JSON body naming the field."""

import json
import socket
import urllib.parse

import pytest
import requests

STATES = {"age": 40, "gender": "F", "region": "Asia"}


def predict_body(**fields) -> dict:
    return {"customer_id": "c1", "timestamp": "2022-03-12", "states": STATES, "offers": {"OFFER_1": True}} | fields


def raw_request(url: str, request_line: bytes) -> tuple[int, dict, bytes]:
    """Send a request line exactly as given (requests would quote it); (status, headers, body)."""
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request_line + b"\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def assert_json_error(status: int, headers: dict, body: bytes, expected_status: int, field: str) -> None:
    assert status == expected_status, body
    assert headers["content-type"].startswith("application/json"), body
    assert json.loads(body)["field"] == field


BIG = "1" + "0" * 400  # a 400-digit integer


@pytest.mark.parametrize(
    "fields, field",
    [
        # brackets inside strings no longer fool the nesting bound: it is measured on the parsed value
        ({"states": '{"note": "]]]]]]]]", "deep": ' + "[" * 900 + "]" * 900 + "}"}, "states"),
        ({"states": "{'note': ']]]]]]]]', 'deep': " + "[" * 150 + "]" * 150 + "}"}, "states"),
        ({"offers": '{"x": ")))))", "OFFER_1": ' + "[" * 900 + "]" * 900 + "}"}, "offers"),
        ({"states": "{'age': " + "-" * 3000 + "1, 'gender': 'F', 'region': 'Asia'}"}, "states"),
        # a 400-digit age, as a JSON object, JSON text and a Python literal
        ({"states": STATES | {"age": int(BIG)}}, "states.age"),
        ({"states": json.dumps(STATES | {"age": int(BIG)})}, "states.age"),
        ({"states": f"{{'age': {BIG}, 'gender': 'F', 'region': 'Asia'}}"}, "states.age"),
        ({"states": STATES | {"age": BIG}}, "states.age"),
        # Firestore-reserved and other bad offer names
        ({"offers": {"__x__": True}}, "offers"),
        ({"offers": {"_x": True}}, "offers"),
        ({"offers": {"OFFER.1": True}}, "offers"),
        ({"offers": {"OFFER_1\n": True}}, "offers"),
        ({"request_id": ""}, "request_id"),
    ],
)
def test_predict_inputs_are_4xx_naming_the_field(api, fields, field):
    answer = requests.post(f"{api}/predict", json=predict_body(**fields), timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field


def test_a_reward_naming_a_reserved_offer_is_400(api):
    episode = requests.post(f"{api}/predict", json=predict_body(), timeout=30).json()["episode_id"]
    body = {"customer_id": "c1", "timestamp": "2022-03-13", "accepted": True, "episode_id": episode}
    answer = requests.put(f"{api}/rewards", json=body | {"accepted_offer": "__x__"}, timeout=30)
    assert answer.status_code == 400 and answer.json()["field"] == "accepted_offer"
    assert requests.put(f"{api}/rewards", json=body | {"accepted_offer": "OFFER_1"}, timeout=30).status_code == 200


@pytest.mark.parametrize("reward", ["3.1e9", "1e10", "1e19", "1e300", "10000001", BIG, "-1", "nan", "1e400"])
def test_rewards_beyond_the_bound_are_400_naming_reward(api, reward):
    assert requests.get(f"{api}/sample", params={"click_id": 1, "offer_ids": "1"}, timeout=30).status_code == 200
    answer = requests.put(f"{api}/feedback", params={"click_id": 1, "reward": reward}, timeout=30)
    assert answer.status_code == 400 and answer.json()["field"] == "reward"


def test_the_largest_reward_is_counted_exactly(api):
    requests.get(f"{api}/sample", params={"click_id": 2, "offer_ids": "7"}, timeout=30)
    answer = requests.put(f"{api}/feedback", params={"click_id": 2, "reward": 10**7}, timeout=30)
    assert answer.status_code == 200 and answer.json()["reward"] == 10**7
    assert requests.get(f"{api}/offer_ids/7/stats", timeout=30).json()["reward"] == 10**7


@pytest.mark.parametrize(
    "params, field",
    [
        ({"click_id": BIG, "offer_ids": "1"}, "click_id"),
        ({"click_id": 1, "offer_ids": BIG}, "offer_ids"),
        ({"click_id": 1, "offer_ids": "1", "ucb_c": BIG}, "ucb_c"),
        ({"click_id": 1, "offer_ids": "1", "payouts": BIG}, "payouts"),
        ({"click_id": 1, "offer_ids": "1,2", "payouts": "1e400,"}, "payouts"),
        ({"click_id": 1, "offer_ids": "1", "floor": BIG}, "floor"),
        ({"click_id": 1, "offer_ids": "1", "epsilon_decay": "1e400"}, "epsilon_decay"),
        ({"click_id": 1, "offer_ids": "1", "thompson_a": "1e7"}, "thompson_a"),
        # found by `make fuzz`: a denormal prior made the exact propensity NaN or crash
        ({"click_id": 0, "offer_ids": "0", "thompson_b": "5e-324"}, "thompson_b"),
        ({"click_id": 1, "offer_ids": "1,2", "thompson_a": "1.1e-308", "thompson_b": "7e5"}, "thompson_a"),
    ],
)
def test_sample_numbers_are_range_checked(api, params, field):
    answer = requests.get(f"{api}/sample", params=params, timeout=30)
    assert answer.status_code == 400 and answer.json()["field"] == field


def test_a_400_digit_number_in_a_json_body_is_400(api):
    answer = requests.get(f"{api}/sample", data=f'{{"click_id": 1, "offer_ids": [1], "ucb_c": {BIG}}}', timeout=30)
    assert answer.status_code == 400 and answer.json()["field"] == "ucb_c"


def test_errors_of_the_http_layer_are_json_naming_the_field(api):
    assert_json_error(*raw_request(api, b"GET /sample?x=" + b"a" * 5000 + b" HTTP/1.1"), 414, "path")
    assert_json_error(*raw_request(api, b"GET /sample/\xc3\xa6 HTTP/1.1"), 400, "path")
    assert_json_error(*raw_request(api, b"GET /offer_ids/%0A%C3%A6/stats/ HTTP/1.1"), 404, "path")
    assert_json_error(*raw_request(api, b"GET /nowhere HTTP/1.1"), 404, "path")
    assert_json_error(*raw_request(api, b"DELETE /sample HTTP/1.1"), 405, "method")
    big = requests.put(f"{api}/rewards", data=b"x" * 70_000, timeout=30)
    assert_json_error(big.status_code, {k.lower(): v for k, v in big.headers.items()}, big.content, 413, "body")
