"""Per-tenant request limits on each instance, so that one client's burst cannot take the instances
from the others (the gateway's quota counts per project, not per key: docs/clients-and-tenants.md).

TENANT_REQUESTS_PER_MINUTE (JSON tenant -> requests a minute, from the client registry) is a
tenant's allowance over the whole service. Each instance admits its share, the allowance divided by
MAX_INSTANCES (the most instances a function runs), through a token bucket holding BURST_SECONDS of
that rate: strict when few instances run, never more than the allowance when all do. A tenant the
map does not name, or no map at all, is not limited. No I/O: the limit costs no Firestore read.
"""

import functools
import json
import os
import threading
import time
from collections.abc import Callable

BURST_SECONDS = 10.0


class TokenBucket:
    def __init__(self, per_second: float, capacity: float, clock: Callable[[], float] = time.monotonic):
        self.per_second = per_second
        self.capacity = capacity
        self.clock = clock
        self.tokens = capacity
        self.at = clock()

    def take(self) -> float:
        """0 when a request may go now (it takes one token), else the seconds until it could."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.per_second


class TenantLimits:
    def __init__(self, per_minute: dict[str, float], instances: int, clock: Callable[[], float] = time.monotonic):
        self._buckets = {}
        for tenant, allowance in per_minute.items():
            per_second = float(allowance) / 60.0 / max(instances, 1)
            self._buckets[tenant] = TokenBucket(per_second, max(1.0, per_second * BURST_SECONDS), clock)
        self._lock = threading.Lock()

    def wait_for(self, tenant: str) -> float:
        """0 when the tenant's request may go now, else the seconds to wait (the request is refused)."""
        bucket = self._buckets.get(tenant)
        if bucket is None:
            return 0.0
        with self._lock:
            return bucket.take()


@functools.cache
def _limits(per_minute: str, instances: str) -> TenantLimits:
    return TenantLimits(json.loads(per_minute), int(instances))


def from_env() -> TenantLimits:
    """The instance's limits (one per process, as the environment says)."""
    return _limits(os.environ.get("TENANT_REQUESTS_PER_MINUTE") or "{}", os.environ.get("MAX_INSTANCES") or "1")
