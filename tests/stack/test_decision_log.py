"""The decision log end to end, as `make run` runs it: traffic through the gateway, the functions
publishing to the Pub/Sub emulator, the feeder appending to DuckDB, killed (SIGKILL) and started again
mid-stream. Every accepted decision and outcome is in the log's views exactly once, the same as
Firestore holds; `make evaluate` prints the same figures from the log as from Firestore; the holdout's
split passes its sample-ratio-mismatch check."""

import datetime
import os
import re
import threading
import time

import pytest

from shared.platform.namespace import Namespace
from tools import evaluate, traffic
from tools.analytics import warehouse
from tools.report import proof

TENANT, KEY = "tenant_a", "test-key-a"
CLICKS, CUSTOMERS = 400, 60
SPACE = Namespace(TENANT)


@pytest.fixture(scope="module")
def sent(logged_gateway, decision_log, firestore_emulator):
    from shared.platform.firestore import get_db

    get_db.cache_clear()
    db = get_db()
    for collection in ("cpa_clicks", "episodes"):  # this tenant's documents from an earlier module, if any
        for snapshot in db.collection(SPACE.path(collection)).stream():
            snapshot.reference.delete()
    db.document(SPACE.path("config/serving")).set({"cpa": {"holdout": 0.2}, "customer": {"holdout": 0.2}})
    time.sleep(2 * float(os.environ["SERVING_CONFIG_TTL_SECONDS"]))
    found: dict = {}
    sender = threading.Thread(target=lambda: found.update(traffic.send(logged_gateway, CLICKS, CUSTOMERS, 9, KEY)))
    sender.start()
    assert decision_log.wait_for("decisions", TENANT, 100) >= 100  # mid-stream
    killed_at = datetime.datetime.now(datetime.UTC)
    decision_log.kill()
    time.sleep(1)
    decision_log.start()
    sender.join()
    assert decision_log.wait_for("decisions", TENANT, CLICKS + CUSTOMERS) == CLICKS + CUSTOMERS
    assert (
        decision_log.wait_for("outcomes", TENANT, found["conversions"] + CUSTOMERS) == found["conversions"] + CUSTOMERS
    )
    return found, killed_at, db


def test_every_accepted_decision_is_in_the_log_exactly_once(sent, decision_log):
    _, killed_at, db = sent
    clicks = {str(s.get("click_id")): s.to_dict() for s in db.collection(SPACE.path("cpa_clicks")).stream()}
    episodes = {s.id: s.to_dict() for s in db.collection(SPACE.path("episodes")).stream()}
    assert len(clicks) == CLICKS and len(episodes) == CUSTOMERS
    logged = decision_log.query("SELECT product, decision_id, holdout FROM decisions WHERE tenant = ?", [TENANT])
    assert sorted(d for p, d, _ in logged if p == "cpa") == sorted(clicks)
    assert sorted(d for p, d, _ in logged if p == "customer") == sorted(episodes)
    assert {d for p, d, h in logged if p == "cpa" and h} == {c for c, doc in clicks.items() if doc.get("holdout")}
    # one row per record in the views, whatever the raw tables received (a batch fed twice after the kill)
    for view, raw in (("decisions", "decision_records"), ("outcomes", "outcome_records")):
        ((rows, unique),) = decision_log.query(
            f"SELECT COUNT(*), COUNT(DISTINCT record_id) FROM {view} WHERE tenant = ?", [TENANT]
        )
        (delivered,) = decision_log.query(f"SELECT COUNT(*) FROM {raw} WHERE tenant = ?", [TENANT])[0]
        assert rows == unique and delivered >= rows
    # the feeder was killed mid-stream: decisions from before and after the kill are all there
    times = [row[0] for row in decision_log.query("SELECT time FROM decisions WHERE tenant = ?", [TENANT])]
    naive = killed_at.replace(tzinfo=None)
    assert any(t < naive for t in times) and any(t > naive for t in times)


def test_every_outcome_is_in_the_log_exactly_once(sent, decision_log):
    _, _, db = sent
    events = {
        f"{TENANT}/cpa/{doc['click_id']}/{event}": amount["amount"]
        for doc in (s.to_dict() for s in db.collection(SPACE.path("cpa_clicks")).stream())
        for event, amount in (doc.get("events") or {}).items()
    }
    rewarded = {s.id: s.get("accepted") for s in db.collection(SPACE.path("episodes")).stream() if s.get("up_to_date")}
    logged = decision_log.query(
        "SELECT record_id, product, decision_id, reward FROM outcomes WHERE tenant = ?", [TENANT]
    )
    assert {r: reward for r, p, _, reward in logged if p == "cpa"} == events
    assert {d: reward == 1.0 for _, p, d, reward in logged if p == "customer"} == rewarded


def test_make_evaluate_prints_the_same_figures_from_the_log_as_from_firestore(sent, decision_log, tmp_path):
    saved = {"log": tmp_path / "log.jsonl", "firestore": tmp_path / "firestore.jsonl"}
    from_log, from_firestore = [], []
    common = ["--since", "1h", "--tenant", TENANT, "--samplers", SAMPLERS]
    assert (
        evaluate.main([*common, "--log", str(decision_log.path), "--save", str(saved["log"])], out=from_log.append) == 0
    )
    assert evaluate.main([*common, "--firestore", "--save", str(saved["firestore"])], out=from_firestore.append) == 0
    assert from_log[0].startswith("Off-policy evaluation from the local decision log")
    assert any(line.startswith("Holdout: ") for line in from_log)
    # What rests on the logged decisions and rewards alone is identical: counts, the logged policy's
    # value, the customer slates' estimates.
    replayed = {row: values for row, values in estimates(from_log).items() if row != "(logged)"}
    assert replayed
    same = [line for line in from_log[1:] if not _replay_line(line, replayed)]
    assert same == [line for line in from_firestore[1:] if not _replay_line(line, replayed)]
    assert estimates(from_log)["(logged)"] == estimates(from_firestore)["(logged)"]
    # The replay rebuilds each sampler's counters from the clicks' times, and those are the one thing
    # the two sources may differ in: the log's is the commit's time, Firestore's `sampled_at` a server
    # timestamp (the emulator puts it 1 to 100 ms before the commit). A click moved across the lag
    # changes a replayed probability, so the replay's figures are compared on the same times.
    log_clicks, _ = evaluate.read_export(saved["log"])
    firestore_clicks, firestore_episodes = evaluate.read_export(saved["firestore"])
    by_id = {row["click_id"]: row for row in firestore_clicks}
    assert sorted(by_id) == sorted(row["click_id"] for row in log_clicks) and len(by_id) == CLICKS
    for mine in log_clicks:
        theirs = by_id[mine["click_id"]]
        # one commit apart: 5 s is 50 times the most measured
        assert abs(mine["sampled_at"] - theirs["sampled_at"]) < 5.0, mine
        assert (mine["feedback_at"] is None) == (theirs["feedback_at"] is None), mine
        assert abs((mine["feedback_at"] or 0) - (theirs["feedback_at"] or 0)) < 1e-3, mine
        assert _untimed(mine) == _untimed(theirs)
    retimed = tmp_path / "firestore-on-the-log-times.jsonl"
    evaluate.save_export(
        retimed, [by_id[mine["click_id"]] | {t: mine[t] for t in TIMES} for mine in log_clicks], firestore_episodes
    )
    from_retimed = []
    assert evaluate.main(["--export", str(retimed), "--samplers", SAMPLERS], out=from_retimed.append) == 0
    assert estimates(from_retimed) == estimates(from_log)


SAMPLERS = "random,greedy,thompson"
TIMES = ("sampled_at", "feedback_at")  # a click row's times, the one thing the two sources may differ in


def _untimed(row: dict) -> dict:
    return {field: value for field, value in row.items() if field not in TIMES}


_ESTIMATE = re.compile(r"^  (\S+)\s+(.*)$")
_NUMBERS = re.compile(r"(-?[\d,]+\.\d+) \[(-?[\d,]+\.\d+), (-?[\d,]+\.\d+)\]")


def estimates(lines: list[str]) -> dict[str, list[float]]:
    """Policy -> the numbers of its row of the revenue-per-click table (those it has)."""
    found = {}
    for line in lines:
        match = _ESTIMATE.match(line)
        if match and (numbers := _NUMBERS.findall(match.group(2))):
            found[match.group(1)] = [float(x.replace(",", "")) for triple in numbers for x in triple]
    return found


def _replay_line(line: str, replayed: dict) -> bool:
    match = _ESTIMATE.match(line)
    timed = line.startswith(("Revenue per click, cents", "Replay check:"))
    return timed or bool(match and (match.group(1) in replayed or match.group(1) == "policy"))


def test_the_holdouts_split_passes_its_srm_check(sent, decision_log):
    until = datetime.datetime.now(datetime.UTC)
    since = until - datetime.timedelta(hours=1)
    found = proof.read(warehouse.DuckDBWarehouse(decision_log.path), TENANT, since, until)
    cpa = found["cpa"].overall
    assert cpa.decisions == CLICKS and cpa.expected == pytest.approx(0.2 * CLICKS)
    assert not cpa.test.mismatch, cpa
    assert found["customer"].overall.decisions == CUSTOMERS
