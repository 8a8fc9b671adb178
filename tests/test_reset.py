"""Statistics reset (shared/admin.py, shared/platform/counter_reset.py, the admin function, `make reset`)
against the Firestore emulator."""

import base64
import concurrent.futures
import json
import pathlib
import threading

import functions_framework
import numpy as np
import pytest
import requests

from devstack.routes import entry_points, load_routes, resolve
from shared import admin
from shared.cpa.models import FeedbackRequest, SampleRequest
from shared.cpa.store import CpaStore, offer_counter
from shared.customer.models import PredictRequest, RewardRequest
from shared.customer.store import CustomerStore, segment_counter
from shared.platform import counter_reset, counters
from tests.conftest import PROJECT
from tools import reset as reset_cli

MAIN = str(pathlib.Path(__file__).resolve().parent.parent / "functions" / "main.py")
ADMIN_PATHS = ["/admin_reset", "/admin-reset", "/admin/reset", "/admin_reset/", "/reset"]


@pytest.fixture(scope="module", autouse=True)
def _patient_first_clear(firestore_emulator):
    """The emulator's first delete-all can take over the fixture's 10 s on a loaded machine: one
    unhurried request first, so the `db` fixture's clears are the quick ones."""
    import urllib.request

    url = f"http://{firestore_emulator.host_port}/emulator/v1/projects/{PROJECT}/databases/(default)/documents"
    urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=120).read()


def _clicks(db, offers: str, count: int, start: int = 1, rewards=(0, 300)) -> None:
    store = CpaStore(db, np.random.default_rng(0))
    for click in range(start, start + count):
        store.sample(SampleRequest(click_id=click, offer_ids=offers, sampler="random"))
        store.feedback(FeedbackRequest(click_id=click, reward=rewards[click % len(rewards)]))


def test_reset_archives_the_exact_totals_then_zeroes_shards_and_summary(db):
    _clicks(db, "7", 12)
    _clicks(db, "8", 3, start=100)
    path = offer_counter(7)
    before = counters.exact_totals(db, [path])[path]
    assert before["clicks"] == 12 and before["conversions"] == 6 and before["reward"] == 1800

    shards = counters.read_summaries(db, [path])[path].shards
    archive = admin.reset(db, "offer", "7", who="alice@example.com", reason="new landing page")

    stored = db.collection(counter_reset.ARCHIVE).document(archive.id).get().to_dict()
    assert stored["who"] == "alice@example.com" and stored["reason"] == "new landing page"
    assert stored["counter"] == path and stored["status"] == "done"
    assert stored["started_at"] <= stored["finished_at"]
    assert stored["totals"] == before  # every field, exactly: clicks, conversions, reward, their sums, _writes
    assert counters.exact_totals(db, [path])[path] == {}
    assert not [s for s in db.collection(f"{path}/shards").stream()]
    summary = counters.read_summaries(db, [path])[path]
    assert summary.totals == {} and summary.shards == shards and summary.as_of is not None  # count kept
    assert CpaStore(db, np.random.default_rng()).offer_stats(7).clicks == 0
    assert counters.exact_totals(db, [offer_counter(8)])[offer_counter(8)]["clicks"] == 3  # others untouched

    _clicks(db, "7", 2, start=500)  # the new period counts from zero
    assert counters.exact_totals(db, [path])[path]["clicks"] == 2


def test_reset_of_a_segment_archives_its_offers_counts(db):
    store = CustomerStore(db, np.random.default_rng(0), "thompson-slate")
    offers = {f"OFFER_{n}": True for n in range(1, 6)}
    for number in range(4):
        request = PredictRequest(
            customer_id=f"c{number}",
            timestamp="2024-01-01",
            states={"age": 35, "gender": "F", "region": "Asia"},
            offers=offers,
        )
        episode_id = store.predict(request).episode_id
        store.reward(
            RewardRequest(customer_id=f"c{number}", timestamp="2024-01-02", accepted=number % 2, episode_id=episode_id)
        )
    segment = "30-44|Asia|F"
    path = segment_counter(segment)
    before = counters.exact_totals(db, [path])[path]
    assert sum(v["shown"] for k, v in before.items() if k.startswith("OFFER_")) == 12

    archive = admin.reset(db, "segment", segment, who="bob")
    assert archive.totals == before and archive.who == "bob" and archive.kind == "segment"
    assert counters.exact_totals(db, [path])[path] == {}


def test_clicks_during_a_reset_are_counted_once_either_in_the_archive_or_after_it(db):
    """Writers keep adding to a 250-shard counter (three chunks) while it is reset: every commit
    that succeeded is in the archive or in the new period, never both, never neither."""
    path = offer_counter(42)
    shards = 250
    db.document(path).set({"shards": shards, "totals": {}, "as_of": None, "rate": 0.0})
    committed = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            batch = db.batch()
            amount = int(rng.integers(1, 4))
            counters.add(batch, db, path, {"clicks": amount, "reward": 10 * amount}, shards)
            batch.commit()
            with lock:
                committed.append(amount)

    for index in range(shards):  # every shard holds something before the reset
        batch = db.batch()
        batch.set(counters.shard_ref(db, path, index), {"c": {"clicks": 1, "reward": 10, "_writes": 1}})
        batch.commit()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(writer, seed) for seed in range(4)]
        archive = admin.reset(db, "offer", "42", who="carol")
        stop.set()
        for future in futures:
            future.result()
    during = sum(committed)
    after = counters.exact_totals(db, [path])[path]
    archived = archive.totals.get("clicks")
    print(f"{len(committed)} commits during the reset; clicks archived {archived}, after {after.get('clicks', 0)}")
    assert archive.shards_moved <= shards and archive.status == "done"
    assert archive.totals["clicks"] + after.get("clicks", 0) == shards + during
    assert archive.totals["reward"] + after.get("reward", 0) == 10 * (shards + during)
    assert archive.totals["clicks"] >= shards  # what was there before the reset began is archived
    assert counters.read_summaries(db, [path])[path].shards == shards  # never shrinks


def _token(claims: dict) -> str:
    def part(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_the_admin_function_records_the_callers_identity_and_refuses_bad_requests(db):
    _clicks(db, "9", 4)
    client = functions_framework.create_app("admin_reset", MAIN, "http").test_client()
    header = {"Authorization": f"Bearer {_token({'email': 'admin@example.com', 'sub': '123'})}"}

    answer = client.post("/", json={"offer": 9, "reason": "test"}, headers=header)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["who"] == "admin@example.com" and body["archived"]["clicks"] == 4 and body["status"] == "done"
    assert db.collection(counter_reset.ARCHIVE).document(body["archive_id"]).get().get("who") == "admin@example.com"
    assert counters.exact_totals(db, [offer_counter(9)])[offer_counter(9)] == {}

    assert client.post("/", json={"offer": 9}).status_code == 401
    assert client.post("/", json={"offer": 9}, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    for bad in ({}, {"offer": 9, "segment": "30-44|Asia|F"}, {"offer": "x"}, {"segment": "Asia"}):
        answer = client.post("/", json=bad, headers=header)
        assert answer.status_code == 400 and answer.get_json()["field"] in ("offer", "segment"), bad
    assert client.get("/", headers=header).status_code == 405


def test_the_admin_path_is_unreachable_through_the_gateway_routes(api, db):
    routes = load_routes()
    assert "admin_reset" not in entry_points(routes)
    for path in ADMIN_PATHS:
        for method in ("GET", "POST", "PUT"):
            assert resolve(routes, method, path) == (None, False), (method, path)
    spec = (pathlib.Path(MAIN).parent.parent / "infra" / "openapi.json").read_text()
    assert "admin" not in spec.lower()
    # and the running gateway (as `make run` serves it): 404, nothing reset
    _clicks(db, "5", 2)
    for path in ADMIN_PATHS:
        answer = requests.post(f"{api}{path}", json={"offer": 5}, timeout=30)
        assert answer.status_code == 404 and answer.json()["field"] == "path", path
    assert counters.exact_totals(db, [offer_counter(5)])[offer_counter(5)]["clicks"] == 2
    assert not list(db.collection(counter_reset.ARCHIVE).stream())


def test_make_reset_resets_with_the_who_flag(db, capsys):
    _clicks(db, "3", 5)
    assert reset_cli.main(["offer=3", "--who", "dave", "--reason", "cli"]) == 0
    out = capsys.readouterr().out
    assert "cpa_offers/3" in out and "as dave" in out
    (archive,) = [s.to_dict() for s in db.collection(counter_reset.ARCHIVE).stream()]
    assert archive["who"] == "dave" and archive["totals"]["clicks"] == 5
    with pytest.raises(SystemExit):
        reset_cli.arguments(["shop=3"])
