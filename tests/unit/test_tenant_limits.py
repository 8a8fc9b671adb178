"""Per-tenant limits on one instance (shared/web/limits.py): pure."""

from shared.web.limits import BURST_SECONDS, TenantLimits


def test_a_tenant_over_its_share_waits_and_the_others_do_not():
    now = [0.0]
    # 600 a minute over 10 instances: 1 a second on this one, BURST_SECONDS of them at once
    limits = TenantLimits({"busy": 6000, "quiet": 600}, instances=10, clock=lambda: now[0])
    admitted = sum(limits.wait_for("busy") == 0 for _ in range(500))
    assert admitted == 10 * BURST_SECONDS  # 10 a second on this instance: its burst, then refused
    assert limits.wait_for("busy") > 0
    assert limits.wait_for("quiet") == 0 and limits.wait_for("unlisted") == 0
    now[0] += 1.0  # a second later: ten more
    assert sum(limits.wait_for("busy") == 0 for _ in range(50)) == 10


def test_the_wait_says_when_the_next_request_would_go():
    now = [0.0]
    limits = TenantLimits({"t": 60}, instances=1, clock=lambda: now[0])  # 1 a second, 10 at once
    for _ in range(10):
        assert limits.wait_for("t") == 0
    assert 0.99 < limits.wait_for("t") <= 1.0
