"""The admin reset is not reachable through the one local URL (routes, spec and the running gateway)."""

import pathlib

import requests

from devstack.routes import entry_points, load_routes, resolve
from shared.cpa.store import offer_counter
from shared.platform import counter_reset, counters
from tests.store.test_reset import MAIN, _clicks

ADMIN_PATHS = ["/admin_reset", "/admin-reset", "/admin/reset", "/admin_reset/", "/reset"]


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
