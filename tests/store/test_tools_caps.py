"""tools/caps.py: an operator sets, lists and removes a tenant's daily caps in its config/serving."""

import pytest

from shared.cpa import caps, serving
from shared.platform import config
from shared.platform.namespace import Namespace
from tools import caps as caps_tool


def test_an_operator_sets_and_removes_a_tenants_cap(db, capsys):
    tenant = Namespace("tenant_a")
    caps_tool.main(["offer=42", "--conversions", "100", "--tz", "Europe/Paris", "--tenant", "tenant_a"])
    caps_tool.main(["offer=7", "--cents", "250000", "--tenant", "tenant_a"])
    document = db.document(tenant.path(config.SERVING_DOCUMENT)).get().to_dict()
    assert serving.parse_caps(None, document) == (
        {42: caps.Cap("conversions", 100.0, "Europe/Paris"), 7: caps.Cap("cents", 250000.0, "UTC")},
        [],
    )
    assert not db.document(config.SERVING_DOCUMENT).get().exists  # the default tenant's is untouched
    caps_tool.main(["offer=42", "--remove", "--tenant", "tenant_a"])
    document = db.document(tenant.path(config.SERVING_DOCUMENT)).get().to_dict()
    assert serving.parse_caps(None, document)[0] == {7: caps.Cap("cents", 250000.0, "UTC")}
    capsys.readouterr()
    caps_tool.main(["--list", "--tenant", "tenant_a"])
    assert '"7"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["offer=x", "--cents", "5"],
        ["offer=1", "--cents", "-5"],
        ["offer=1", "--conversions", "5", "--tz", "Mars/Olympus"],
    ],
)
def test_a_cap_the_service_would_ignore_is_refused(argv):
    with pytest.raises(SystemExit):
        caps_tool.arguments(argv)
