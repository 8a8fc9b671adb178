"""Shadow decisions and the serving configuration through the local gateway, against the Firestore
emulator; the pure checks are in tests/unit/test_shadow.py."""

import itertools
import os
import time

import pytest
import requests

from shared.cpa.store import CLICKS, click_doc_id
from shared.customer import agents, segments
from shared.platform import config as platform_config
from tests.unit.test_shadow import ELIGIBLE, _exact_static

TTL = float(os.environ.get("SERVING_CONFIG_TTL_SECONDS", "0.5"))
PREDICT = {
    "customer_id": "c-1",
    "timestamp": "2024-05-01",
    "states": {"age": 33, "gender": "M", "region": "Europa"},
    "offers": {offer: True for offer in ELIGIBLE},
}


@pytest.fixture
def serving(db):
    """Writes config/serving; removed afterwards, and every server's copy with it."""

    def write(document):
        db.document(platform_config.SERVING_DOCUMENT).set(document)
        time.sleep(float(os.environ["SERVING_CONFIG_TTL_SECONDS"]) + 0.3)  # every instance's copy expired

    yield write
    db.document(platform_config.SERVING_DOCUMENT).delete()
    time.sleep(float(os.environ["SERVING_CONFIG_TTL_SECONDS"]) + 0.3)


def test_shadow_decisions_are_logged_with_propensities(api, db, serving):
    serving({"cpa": {"shadow": "epsilon"}, "customer": {"shadow": agents.STATIC}})
    for click in range(1, 6):
        answer = requests.get(f"{api}/sample", params={"click_id": click, "offer_ids": "4,5,6"}, timeout=30).json()
        assert answer["served_by"] == "thompson" and answer["recorded"] is True
        document = db.collection(CLICKS).document(click_doc_id(click)).get().to_dict()
        assert document["served_by"] == "thompson" and document["offer_id"] == answer["offer_id"]
        logged = document["shadow"]
        assert logged["sampler"] == "epsilon" and logged["offer_id"] in (4, 5, 6)
        # epsilon's propensity: its best offer 1 - eps + eps/K (and the floor), any other eps/K (and the floor)
        assert 0 < logged["probability"] <= 1

    answer = requests.post(f"{api}/predict", json=PREDICT, timeout=30).json()
    assert answer["served_by"] == agents.DEFAULT_AGENT and answer["policy"] == agents.DEFAULT_AGENT
    episode = db.collection("episodes").document(answer["episode_id"]).get().to_dict()
    assert episode["served_by"] == agents.DEFAULT_AGENT
    assert set(episode["inclusion"]) == set(ELIGIBLE) and sum(episode["inclusion"].values()) == pytest.approx(3.0)
    assert all(episode["inclusion"][offer] > 0 for offer in answer["best-three-offers"])
    segment = segments.segment_of(33, "M", "Europa")
    assert episode["shadow"] == {
        "policy": agents.STATIC,
        "slate": agents.static_slate(segment, ELIGIBLE),
        "inclusion": _exact_static(segment, ELIGIBLE),
    }


def test_the_config_document_switches_policy_within_its_cache_time(api, db, serving):
    def served(click_id):
        return requests.get(f"{api}/sample", params={"click_id": click_id, "offer_ids": "4,5,6"}, timeout=30).json()

    assert served(1)["served_by"] == "thompson"
    db.document(platform_config.SERVING_DOCUMENT).set({"cpa": {"offer_id": 5}, "customer": {"policy": agents.STATIC}})
    changed = time.monotonic()  # the write has committed
    click = itertools.count(2)
    # Every copy read before the write expires within TTL of it: a request that starts later than
    # that must be served by the new config (however long requests take on a loaded machine).
    while True:
        started = time.monotonic()
        answer = served(next(click))
        if answer["served_by"] == "config:offer":
            break
        assert started - changed < TTL + 0.05, f"old config served {started - changed:.2f} s after the change"
        assert time.monotonic() - changed < 30
    switched = started - changed
    assert answer["offer_id"] == 5 and answer["probability"] == 1.0
    print(f"switched: first request served by the new config started {switched:.2f} s after the write (TTL {TTL} s)")
    assert served(next(click))["served_by"] == "config:offer"
    # an offer that is not a candidate: served as usual
    assert (
        requests.get(f"{api}/sample", params={"click_id": 99, "offer_ids": "7,8"}, timeout=30).json()["served_by"]
        == "thompson"
    )
    answer = requests.post(f"{api}/predict", json=PREDICT, timeout=30).json()
    assert (answer["policy"], answer["served_by"]) == (agents.STATIC, "config:static")
    assert answer["best-three-offers"] == agents.static_slate(segments.segment_of(33, "M", "Europa"), ELIGIBLE)

    # a malformed document is ignored field by field, never a 500
    serving({"cpa": "nonsense", "customer": {"policy": "no-such-agent", "shadow": 3}})
    assert served(500)["served_by"] == "thompson"
    answer = requests.post(f"{api}/predict", json=PREDICT | {"customer_id": "c-2"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["served_by"] == agents.DEFAULT_AGENT
