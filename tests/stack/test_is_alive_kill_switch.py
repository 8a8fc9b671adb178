"""/is-alive through the local gateway names the agent the kill switch (config/serving) forces:
its policy and version, and `served_by: "config:<policy>"`; without the switch, the registered agent."""

import os
import time

import pytest
import requests

from shared.customer.agents import registry
from shared.platform import config
from tests.openapi_check import check


def _wait_for_every_copy_to_expire() -> None:
    """Each server keeps its copy of config/serving up to SERVING_CONFIG_TTL_SECONDS (tests/conftest.py)."""
    time.sleep(float(os.environ["SERVING_CONFIG_TTL_SECONDS"]) + 0.3)


@pytest.fixture
def kill_switch(db):
    def set_document(document: dict) -> None:
        db.document(config.SERVING_DOCUMENT).set(document)
        _wait_for_every_copy_to_expire()

    yield set_document
    db.document(config.SERVING_DOCUMENT).delete()
    _wait_for_every_copy_to_expire()


def is_alive(api: str) -> dict:
    answer = requests.get(f"{api}/is-alive", timeout=30)
    assert answer.status_code == 200, answer.text
    assert not check("GET", "/is-alive", 200, answer.json())  # as infra/openapi.json declares it
    return answer.json()


def test_is_alive_reports_the_agent_the_kill_switch_forces(api, kill_switch):
    registered = registry.AGENTS[registry.DEFAULT_AGENT]
    assert is_alive(api) == {
        "status": "I'm alive and running",
        "agent-version": f"{registered.version}-API",
        "policy": registered.name,
    }

    kill_switch({"customer": {"policy": registry.STATIC}})
    forced = registry.AGENTS[registry.STATIC]
    assert is_alive(api) == {
        "status": "I'm alive and running",
        "agent-version": f"{forced.version}-API",
        "policy": forced.name,
        "served_by": f"config:{forced.name}",
    }

    kill_switch({"customer": {"policy": "no-such-agent"}})  # ignored, as /predict ignores it
    assert is_alive(api)["policy"] == registered.name and "served_by" not in is_alive(api)
