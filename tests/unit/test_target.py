"""tools/target.py: which `make run` a tool finds when one checkout runs several (one state file
per port, DEVSTACK_STATE_FILE first)."""

import json

import pytest

from tools import target


@pytest.fixture
def stacks(tmp_path, monkeypatch):
    """An empty local-results/ in a fresh folder, no PORT or DEVSTACK_STATE_FILE; returns a function
    that writes the state file of a stack on a port."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("DEVSTACK_STATE_FILE", raising=False)

    def running(port: int) -> dict:
        state = {"gateway": f"http://127.0.0.1:{port}", "port": port}
        path = target.state_file(port)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state))
        return state

    return running


def test_each_port_has_its_own_state_file(stacks):
    assert target.state_file(8000) != target.state_file(8001)
    assert target.state_file(8001).name == ".devstack-8001.json"


def test_no_stack_running_finds_none(stacks):
    assert target.running_stack() is None
    with pytest.raises(SystemExit, match="No running stack"):
        target.required_stack()


def test_the_only_stack_running_is_found_without_port(stacks):
    state = stacks(8123)
    assert target.running_stack() == state


def test_several_stacks_running_ask_for_port(stacks):
    stacks(8000)
    stacks(8001)
    with pytest.raises(SystemExit, match=r"ports 8000, 8001\): say which with PORT=<port>"):
        target.running_stack()


def test_port_picks_one_of_several(stacks, monkeypatch):
    stacks(8000)
    second = stacks(8001)
    monkeypatch.setenv("PORT", "8001")
    assert target.running_stack() == second
    monkeypatch.setenv("PORT", "8002")  # no stack on that port, though others run
    assert target.running_stack() is None


def test_devstack_state_file_wins_over_port_and_the_folder(stacks, monkeypatch, tmp_path):
    stacks(8000)
    own = tmp_path / "elsewhere" / "mine.json"
    own.parent.mkdir()
    own.write_text(json.dumps({"gateway": "http://127.0.0.1:9999"}))
    monkeypatch.setenv("DEVSTACK_STATE_FILE", str(own))
    monkeypatch.setenv("PORT", "8000")
    assert target.state_file(8000) == own
    assert target.running_stack() == {"gateway": "http://127.0.0.1:9999"}
    own.unlink()
    assert target.running_stack() is None  # the named file, not the stack on PORT
