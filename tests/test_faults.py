"""The Firestore emulator killed under load: every request answers fast (503 with Retry-After, or
the degraded answer where configured), and the service recovers by itself when it returns."""

import concurrent.futures
import itertools
import os
import signal
import tempfile
import threading
import time

import pytest
import requests

from devstack import emulators
from devstack.serve import start_in_background
from shared.platform.firestore import RETRY_BUDGET_S, get_request_db, is_unavailable

PROJECT = "offer-bandits-faults"
ANSWER_WITHIN_S = 5.0
PREDICT = {"customer_id": "c", "states": {"age": 30, "gender": "F", "region": "Asia"}, "offers": {"A": True, "B": True}}


def test_a_client_of_a_closed_port_fails_fast_as_unavailable(monkeypatch):
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{emulators.free_port()}")
    get_request_db.cache_clear()
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            get_request_db().document("a/b").get()
        assert time.monotonic() - started < RETRY_BUDGET_S + 1
        assert is_unavailable(caught.value)
    finally:
        get_request_db.cache_clear()


class Load:
    """Threads sending a mix of requests to one gateway until stopped; every answer kept as
    (start time, duration, path, status, Retry-After header, JSON body)."""

    def __init__(self, url: str, threads: int = 4):
        self.url = url
        self.stop = threading.Event()
        self.answers = []
        self.ids = itertools.count(1_000_000)
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)
        self.futures = [self.pool.submit(self.run) for _ in range(threads)]

    @staticmethod
    def request_of(n: int):
        kinds = [
            ("GET", "/sample", {"params": {"click_id": n, "offer_ids": "1,2,3,4"}}),
            ("PUT", "/feedback", {"params": {"click_id": 1, "reward": 100}}),
            ("POST", "/predict", {"json": PREDICT | {"timestamp": "2022-01-01", "request_id": str(n)}}),
            ("GET", "/offer_ids/1/stats", {}),
            ("GET", "/is-alive", {}),
        ]
        return kinds[n % len(kinds)]

    def run(self):
        session = requests.Session()
        while not self.stop.is_set():
            method, path, kwargs = self.request_of(next(self.ids))
            started = time.monotonic()
            try:
                answer = session.request(method, f"{self.url}{path}", timeout=30, **kwargs)
                status, body, retry_after = answer.status_code, answer.json(), answer.headers.get("Retry-After")
            except (requests.RequestException, ValueError) as error:
                status, body, retry_after = None, repr(error), None
            self.answers.append((started, time.monotonic() - started, path, status, retry_after, body))

    def finish(self):
        self.stop.set()
        for future in self.futures:
            future.result()
        self.pool.shutdown()
        return self.answers


def _until_not_503(send, within_s: float = 60) -> requests.Response:
    deadline = time.monotonic() + within_s
    while True:
        answer = send()
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def _gateway(emulator, degraded: str):
    env = {**os.environ, **emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT, "DEGRADED_MODE": degraded}
    log = tempfile.NamedTemporaryFile(prefix=f"gateway-faults-{degraded}-", suffix=".log", delete=False)
    return start_in_background(emulators.free_port(), env, log)


def test_firestore_killed_under_load_then_back_on_the_same_port():
    emulator = emulators.start_firestore()
    port = int(emulator.host_port.rsplit(":", 1)[1])
    gateways = []
    try:
        gateways = [_gateway(emulator, "off"), _gateway(emulator, "on")]
        (plain_process, plain), (_, degraded) = gateways
        for url in (plain, degraded):
            assert requests.get(f"{url}/sample", params={"click_id": 1, "offer_ids": "1"}, timeout=30).ok

        loads = [Load(plain), Load(degraded)]
        time.sleep(1.0)
        os.killpg(emulator.process.pid, signal.SIGKILL)  # the gcloud wrapper and its java, at once
        killed = time.monotonic()
        emulator.process.wait(timeout=10)
        time.sleep(6.0)
        plain_answers, degraded_answers = (load.finish() for load in loads)

        def after_kill(answers):
            return [answer for answer in answers if answer[0] > killed + 0.1]

        for answers in (plain_answers, degraded_answers):
            slow = [answer[:4] for answer in answers if answer[1] > ANSWER_WITHIN_S]
            assert slow == [], f"answers slower than {ANSWER_WITHIN_S} s: {slow[:5]}"
            assert len(after_kill(answers)) >= 20
        for _, _, path, status, retry_after, body in after_kill(plain_answers):
            assert status == 503 and retry_after and int(retry_after) >= 1, (path, status, body)
            assert isinstance(body, dict) and body["error"]
        for _, _, path, status, retry_after, body in after_kill(degraded_answers):
            if path in ("/sample", "/predict"):
                assert status == 200 and body["recorded"] is False, (path, status, body)
            else:
                assert status == 503 and retry_after, (path, status, body)
        degraded_click = next(a[5] for a in after_kill(degraded_answers) if a[2] == "/sample")
        outage = after_kill(plain_answers) + after_kill(degraded_answers)
        print(f"after the kill: {len(outage)} answers, slowest {max(a[1] for a in outage):.2f} s")

        emulator = emulators.start_firestore(port=port)  # back on the same port, the gateways untouched
        returned = time.monotonic()
        answer = _until_not_503(lambda: requests.get(f"{plain}/sample", params={"click_id": 2, "offer_ids": "1,2"}))
        print(f"recovered {time.monotonic() - returned:.1f} s after the emulator answered again")
        assert answer.status_code == 200 and answer.json()["recorded"] is True
        assert plain_process.poll() is None  # the same gateway process, never restarted
        # the degraded click was never recorded: its feedback is a 404
        click = degraded_click["click_id"]
        answer = _until_not_503(lambda: requests.put(f"{degraded}/feedback", params={"click_id": click, "reward": 0}))
        assert answer.status_code == 404 and answer.json()["field"] == "click_id"
    finally:
        for process, _ in gateways:
            process.terminate()
            process.wait(timeout=10)
        emulator.stop()
