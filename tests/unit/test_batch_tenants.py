"""Which tenant an uploaded file belongs to (shared/batch/job.py `tenant_of`): BATCH_TENANTS, the
client registry's folder -> tenant map that Terraform sets."""

import pytest

from shared.batch.job import tenant_of
from shared.platform.namespace import ROOT, Namespace


def test_without_the_map_every_folder_is_the_default_tenants(monkeypatch):
    monkeypatch.delenv("BATCH_TENANTS", raising=False)
    assert tenant_of("anyone/file.csv") == (ROOT, None)


def test_a_folder_goes_to_its_tenant_and_one_the_map_does_not_name_is_refused(monkeypatch):
    monkeypatch.setenv("BATCH_TENANTS", '{"company_b": "acme"}')
    assert tenant_of("company_b/file.csv") == (Namespace("acme"), None)
    space, reason = tenant_of("company_c/file.csv")
    assert space == ROOT and reason == "folder 'company_c' belongs to no client"


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"company_b": "Not A Tenant"}'])
def test_a_broken_map_refuses_the_file_and_says_why(monkeypatch, raw):
    monkeypatch.setenv("BATCH_TENANTS", raw)
    space, reason = tenant_of("company_b/file.csv")
    assert space == ROOT and "BATCH_TENANTS" in reason
