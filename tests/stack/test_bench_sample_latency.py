"""The /sample latency benchmark's own parts, against the emulator and the gateway: its minimal
HTTP client must read answers exactly, and one measuring round must do the work it times."""

import json
import urllib.parse

from bench.sample_latency import Caller, Lane, measure, measure_lanes
from shared.cpa.store import CLICKS, offer_counter
from shared.platform import counters
from tests.conftest import DEFAULT_KEY


def test_the_benchmark_client_reads_keep_alive_answers_whole(api):
    caller = Caller(api, DEFAULT_KEY)
    answers = []
    for click in (1, 2, 1):
        status, body = caller.get(f"/sample/?{urllib.parse.urlencode({'click_id': click, 'offer_ids': '3,5,7'})}")
        assert status == 200
        answers.append(json.loads(body))
        assert answers[-1]["click_id"] == click and answers[-1]["offer_id"] in (3, 5, 7)
    assert answers[2] == answers[0]  # the replayed click, read back on the same connection
    status, body = caller.get("/no-such-path")
    assert status == 404 and json.loads(body)["error"]
    status, body = caller.get("/sample/?click_id=x&offer_ids=3")
    assert status == 400 and json.loads(body)["field"] == "click_id"


def test_a_measuring_round_times_one_sample_and_one_bare_sample_per_pair(api, db):
    http, bare = measure(api, db, (3, 5, 7), 3, 100, DEFAULT_KEY)
    assert len(http) == len(bare) == 3 and min(http + bare) > 0
    # /sample took the even clicks, the bare work the odd ones; each counted one click.
    assert sorted(snap.get("click_id") for snap in db.collection(CLICKS).stream()) == [100, 101, 102, 103, 104, 105]
    totals = counters.exact_totals(db, [offer_counter(o) for o in (3, 5, 7)])
    assert sum(total.get("clicks", 0) for total in totals.values()) == 6


def test_lanes_take_turns_each_round_with_their_own_candidates(api, db):
    lanes = [Lane(api, (3, 5, 7)), Lane(api, (11, 13))]
    http, bare = measure_lanes(lanes, db, 2, 100, DEFAULT_KEY, steady=True)
    assert [len(times) for times in http + bare] == [2, 2, 2, 2]
    offers = {snap.get("click_id"): snap.get("offer_id") for snap in db.collection(CLICKS).stream()}
    assert sorted(offers) == list(range(100, 108))  # round 0: lane 0 100 (bare 101), lane 1 102 (103); round 1
    assert {offers[100], offers[104], offers[101], offers[105]} <= {3, 5, 7}
    assert {offers[102], offers[106], offers[103], offers[107]} <= {11, 13}


def test_lanes_take_turns_in_blocks(api, db):
    lanes = [Lane(api, (3, 5, 7)), Lane(api, (11, 13))]
    http, _ = measure_lanes(lanes, db, 3, 100, DEFAULT_KEY, block=2)
    assert [len(times) for times in http] == [3, 3]
    offers = {snap.get("click_id"): snap.get("offer_id") for snap in db.collection(CLICKS).stream()}
    # lane 0 twice (100, 102), lane 1 twice (104, 106), then once each (108, 110); bare samples odd
    assert {offers[100], offers[102], offers[108]} <= {3, 5, 7}
    assert {offers[104], offers[106], offers[110]} <= {11, 13}
