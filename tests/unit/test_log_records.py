"""The decision log's records (shared/cpa/log_records.py, shared/customer/log_records.py) fit the
tables (shared/platform/log_tables.py), which DuckDB and BigQuery build from the same columns: pure."""

import datetime

import pytest

from shared.cpa import log_records as cpa_records
from shared.customer import log_records as customer_records
from shared.platform import log_tables
from tools.analytics import duck

CLICK = {
    "click_id": 77,
    "offer_id": 102,
    "sampler": "thompson",
    "probability": 0.61,
    "candidates": "101,102,103",
    "served_by": "thompson",
    "payouts": [400.0, None, 2000.0],
    "floor": 0.05,
    "shadow": {"sampler": "klucb", "offer_id": 101, "probability": 0.3},
    "geo": "FR",
    "device": "mobile",
}
EPISODE = {
    "customer_id": "c1",
    "policy": "thompson-slate",
    "served_by": "thompson-slate",
    "agent_version": "2.0.0",
    "segment": "30-44|Europa|F",
    "eligible_offers": "OFFER_1,OFFER_2,OFFER_3,OFFER_4",
    "predicted_offer_1": "OFFER_2",
    "predicted_offer_2": "OFFER_1",
    "predicted_offer_3": "OFFER_4",
    "inclusion": {"OFFER_1": 0.8, "OFFER_2": 0.9, "OFFER_3": 0.4, "OFFER_4": 0.9},
    "shadow": {"policy": "static", "slate": ["OFFER_1", "OFFER_2"], "inclusion": {"OFFER_1": 1.0, "OFFER_2": 1.0}},
}


def records() -> list[tuple[str, dict]]:
    return [
        ("decisions", cpa_records.decision("adnet", CLICK, 0.02, 1_700_000_000_000_000)),
        (
            "decisions",
            cpa_records.decision("adnet", {**CLICK, "click_id": 78, "shadow": None, "payouts": None}, None, 1),
        ),
        ("outcomes", cpa_records.outcome("adnet", CLICK, "sale-1", 1500, 1500, False, 2)),
        ("decisions", customer_records.decision("company_a", "ep-1", EPISODE, 0.02, 3)),
        (
            "outcomes",
            customer_records.outcome(
                "company_a", "ep-1", {"holdout": True, "accepted": True, "accepted_offer": "OFFER_2", "late": True}, 4
            ),
        ),
    ]


@pytest.mark.parametrize(("table", "record"), records())
def test_every_record_fits_its_table(table, record):
    assert log_tables.problems(table, record) == []


def test_a_cpa_decision_carries_what_evaluation_and_the_holdout_need():
    record = cpa_records.decision("adnet", {**CLICK, "holdout": True}, 0.02, 5)
    assert record["record_id"] == "adnet/cpa/77" and record["candidates"] == ["101", "102", "103"]
    assert (record["offer_id"], record["probability"], record["holdout"], record["holdout_share"]) == (
        "102",
        0.61,
        True,
        0.02,
    )
    assert record["payouts"] == "[400.0, null, 2000.0]"  # unknown payouts survive as JSON null
    assert (record["shadow_policy"], record["shadow_offer_id"]) == ("klucb", "101")
    assert (record["geo"], record["device"]) == ("FR", "mobile") and "os" not in record
    nested = cpa_records.decision("a", {**CLICK, "geo": None, "context": {"geo": "DE", "os": "ios"}}, 0.02, 5)
    assert (nested["geo"], nested["os"]) == ("DE", "ios")


def test_the_problems_check_finds_what_a_table_would_refuse():
    assert log_tables.problems("outcomes", {"record_id": "x", "colour": "red"}) == [
        "colour: not a column of outcomes",
        "tenant: required",
        "product: required",
        "time: required",
        "decision_id: required",
        "reward: required",
        "late: required",
        "holdout: required",
    ]
    bad = {**cpa_records.decision("a", CLICK, 0.02, 1), "candidates": "101,102", "slate": ["a", None]}
    assert log_tables.problems("decisions", bad) == ["candidates: a list expected", "slate: a list may not hold null"]


def test_duckdb_takes_the_records_as_the_columns_say(tmp_path):
    connection = duck.connect(tmp_path / "log.duckdb")
    duck.create(connection)
    for table, record in records():
        duck.insert(connection, table, [record, record])  # delivered twice: the view keeps one
    assert connection.execute("SELECT COUNT(*) FROM decision_records").fetchone() == (6,)
    assert connection.execute("SELECT COUNT(*) FROM decisions").fetchone() == (3,)
    found = connection.execute("SELECT inclusion, slate, time FROM decisions WHERE product = 'customer'").fetchone()
    assert found[0][0] == {"offer": "OFFER_1", "probability": 0.8} and found[1] == ["OFFER_2", "OFFER_1", "OFFER_4"]
    assert found[2] == datetime.datetime(1970, 1, 1, 0, 0, 0, 3)  # UTC
