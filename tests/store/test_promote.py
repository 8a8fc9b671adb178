"""Promotion on evidence (tools/promote.py) from a simulated decision log in DuckDB, against the
Firestore emulator: a better challenger is promoted with its evidence archived, a worse or undecided
one is not, and a dry run changes nothing."""

import numpy as np
import pytest

from devstack import emulators
from shared.cpa import log_records
from shared.customer import log_records as customer_records
from tests.conftest import PROJECT
from tools import promote
from tools.analytics import duck

RATES = {1: (0.05, 400.0), 2: (0.05, 400.0), 3: (0.10, 1000.0)}  # 20, 20 and 100 cents a click


@pytest.fixture(autouse=True)
def leaves_no_config(firestore_emulator):
    """Empty the emulator afterwards too: a gateway started next reads config/serving on its first
    request, before that test's `db` empties it, and keeps the copy SERVING_CONFIG_TTL_SECONDS."""
    yield
    emulators.clear_firestore(firestore_emulator.host_port, PROJECT)


def simulated_log(path, clicks: int, shadow_offer: int, seed: int = 0, tenant: str = "default") -> None:
    """Clicks served uniformly at random (probability 1/3) by `random`, with a `greedy` shadow that
    always picks `shadow_offer`; conversions drawn from RATES."""
    rng = np.random.default_rng(seed)
    decisions, outcomes = [], []
    for i in range(clicks):
        offer = int(rng.integers(1, 4))
        click = {
            "click_id": 10_000 + i,
            "offer_id": offer,
            "sampler": "random",
            "probability": 1 / 3,
            "candidates": "1,2,3",
            "served_by": "random",
            "shadow": {"sampler": "greedy", "offer_id": shadow_offer, "probability": 0.95},
        }
        time_us = 1_767_225_600_000_000 + i * 1_000_000  # 2026-01-01, a click a second
        decisions.append(log_records.decision(tenant, click, 0.0, time_us))
        rate, payout = RATES[offer]
        if rng.random() < rate:
            outcomes.append(log_records.outcome(tenant, click, "_", payout, payout, False, time_us + 500_000))
    connection = duck.connect(path)
    duck.create(connection)
    duck.insert(connection, "decisions", decisions)
    duck.insert(connection, "outcomes", outcomes)
    connection.close()


def run(path, *extra) -> tuple[int, str]:
    lines = []
    code = promote.main(["--log", str(path), "--since", "2025-12-31", *extra], out=lines.append)
    return code, "\n".join(lines)


def test_a_better_challenger_is_promoted_with_its_evidence_archived(db, tmp_path):
    path = tmp_path / "log.duckdb"
    simulated_log(path, 3000, shadow_offer=3)
    db.document("config/serving").set({"cpa": {"shadow": "greedy"}, "customer": {"policy": "static"}})
    code, text = run(path, "--who", "alice")
    assert code == 0 and "Decision: promoted greedy over random as alice" in text, text
    config = db.document("config/serving").get().to_dict()
    assert config["cpa"] == {"sampler": "greedy", "shadow": "random"}
    assert config["customer"] == {"policy": "static"}  # the other product's settings untouched
    (promotion,) = [snapshot.to_dict() for snapshot in db.collection("promotions").stream()]
    assert (promotion["who"], promotion["from"], promotion["to"], promotion["product"]) == (
        "alice",
        "random",
        "greedy",
        "cpa",
    )
    evidence = promotion["evidence"]
    assert evidence["decisions"] == 3000
    assert evidence["challenger_value"]["low"] > evidence["live_value"]["value"]
    assert evidence["challenger_value"]["low"] < 100 < evidence["challenger_value"]["high"]  # the truth
    assert promotion["config_before"] == {"cpa": {"shadow": "greedy"}, "customer": {"policy": "static"}}


@pytest.mark.parametrize(("shadow_offer", "clicks", "why"), [(1, 3000, "lower bound"), (3, 60, "fewer than 500")])
def test_a_worse_or_undecided_challenger_is_not_promoted(db, tmp_path, shadow_offer, clicks, why):
    path = tmp_path / "log.duckdb"
    simulated_log(path, clicks, shadow_offer=shadow_offer, seed=1)
    code, text = run(path)
    assert code == 0 and "Decision: not promoted" in text and why in text, text
    assert not db.document("config/serving").get().exists
    assert not list(db.collection("promotions").stream())


def test_a_dry_run_prints_the_decision_and_changes_nothing(db, tmp_path):
    path = tmp_path / "log.duckdb"
    simulated_log(path, 3000, shadow_offer=3)
    code, text = run(path, "--dry-run")
    assert "Decision: promote greedy over random (dry run: nothing changed)." in text, text
    assert "challenger, doubly robust: " in text and "live policy's value: " in text
    assert not db.document("config/serving").get().exists and not list(db.collection("promotions").stream())


def test_another_tenants_log_and_config_are_left_alone(db, tmp_path):
    path = tmp_path / "log.duckdb"
    simulated_log(path, 3000, shadow_offer=3, tenant="adnet")
    code, text = run(path)  # the default tenant has no decision in this log
    assert "on 0 decisions" in text and "not promoted" in text, text
    code, text = run(path, "--tenant", "adnet")
    assert "promoted greedy over random" in text, text
    assert db.document("tenants/adnet/config/serving").get().to_dict()["cpa"]["sampler"] == "greedy"
    assert not db.document("config/serving").get().exists
    assert len(list(db.collection("tenants/adnet/promotions").stream())) == 1


def test_a_better_shadow_agent_is_promoted_for_customers(db, tmp_path):
    """Slates of two drawn at random among four offers (inclusion 1/2 each) by the live agent, a
    `static` shadow always showing the two offers customers accept most."""
    rng = np.random.default_rng(2)
    offers = ["OFFER_1", "OFFER_2", "OFFER_3", "OFFER_4"]
    accept = {"OFFER_1": 0.05, "OFFER_2": 0.1, "OFFER_3": 0.2, "OFFER_4": 0.3}
    decisions, outcomes = [], []
    for i in range(1500):
        slate = list(rng.choice(offers, size=2, replace=False))
        episode = {
            "policy": "thompson-slate",
            "eligible_offers": ",".join(offers),
            "predicted_offer_1": slate[0],
            "predicted_offer_2": slate[1],
            "inclusion": dict.fromkeys(offers, 0.5),
            "shadow": {
                "policy": "static",
                "slate": ["OFFER_4", "OFFER_3"],
                "inclusion": {"OFFER_3": 1.0, "OFFER_4": 1.0},
            },
        }
        time_us = 1_767_225_600_000_000 + i * 1_000_000
        decisions.append(customer_records.decision("default", f"e{i}", episode, 0.0, time_us))
        accepted = next((offer for offer in slate if rng.random() < accept[offer]), None)
        rewarded = {**episode, "accepted": accepted is not None, "accepted_offer": accepted}
        outcomes.append(customer_records.outcome("default", f"e{i}", rewarded, time_us + 1))
    path = tmp_path / "log.duckdb"
    connection = duck.connect(path)
    duck.create(connection)
    duck.insert(connection, "decisions", decisions)
    duck.insert(connection, "outcomes", outcomes)
    connection.close()
    code, text = run(path, "--product", "customer", "--who", "bob")
    assert "Decision: promoted static over thompson-slate as bob" in text, text
    assert db.document("config/serving").get().to_dict() == {
        "customer": {"policy": "static", "shadow": "thompson-slate"}
    }
