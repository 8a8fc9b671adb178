"""Tenant namespaces (shared/platform/namespace.py): pure."""

import pytest

from shared.cpa.store import offer_counter
from shared.customer.store import segment_counter
from shared.platform import namespace
from shared.platform.namespace import ROOT, Namespace


def test_the_default_tenant_lives_at_the_root_and_others_under_tenants():
    assert ROOT.path("cpa_clicks") == "cpa_clicks"
    assert Namespace("company_a").path("cpa_clicks") == "tenants/company_a/cpa_clicks"
    assert offer_counter(7, Namespace("company_a")) == "tenants/company_a/cpa_offers/7"
    assert segment_counter("30-44|Asia|F", Namespace("b")) == "tenants/b/agent_segments/30-44|Asia|F"


def test_a_path_tells_its_namespace_and_collection():
    assert namespace.of_path("tenants/company_a/cpa_offers/7") == Namespace("company_a")
    assert namespace.of_path("cpa_offers/7") == ROOT
    assert namespace.collection_id("tenants/company_a/cpa_offers/7") == "cpa_offers"
    assert namespace.collection_id("cpa_counters/clicks") == "cpa_counters"


@pytest.mark.parametrize("name", ["", "A", "1abc", "a/b", "a" * 41, "tenants/x"])
def test_a_tenant_name_that_could_escape_its_namespace_is_refused(name):
    with pytest.raises(ValueError):
        Namespace(name)
