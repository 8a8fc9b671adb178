"""A Firestore client of a closed port fails fast, as unavailable (no emulator)."""

import time

import pytest

from devstack import emulators
from shared.platform.firestore import RETRY_BUDGET_S, get_request_db, is_unavailable


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
