"""The serving configuration document (shared/platform/config.py) read from the Firestore emulator at
most once per period."""

from shared.customer import agents
from shared.customer import serving as customer_serving
from shared.customer.serving import CustomerServing
from shared.platform import config as platform_config


def test_the_config_is_read_once_per_period_whatever_the_requests(db):
    now = [1000.0]
    cache = platform_config.ConfigDocuments(db, (platform_config.SERVING_DOCUMENT,), ttl=5.0, clock=lambda: now[0])
    assert cache.cached(customer_serving.parse) == CustomerServing() and cache.reads == 1  # no document: defaults
    db.document(platform_config.SERVING_DOCUMENT).set({"customer": {"policy": agents.STATIC}})
    for _ in range(100):
        assert cache.cached(customer_serving.parse).policy is None  # the copy held until it is 5 s old
    assert cache.reads == 1
    now[0] += 5.0
    assert cache.cached(customer_serving.parse).policy == agents.STATIC and cache.reads == 2
    for _ in range(100):
        cache.cached(customer_serving.parse)
    assert cache.reads == 2
