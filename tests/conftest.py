"""Fixtures that start the real emulators and the one-URL gateway on free ports.

Pure tests never ask for them, so they run without Java or servers.

Every gateway a test starts knows the test tenants' API keys (API_KEY_TENANTS, set for the whole
session), and every HTTP call to 127.0.0.1 carries the `default` tenant's key unless it names one
(or None, for no key): as a client configured with its key would. The default tenant's documents
are at the root, so tests that read Firestore find them where they always were.
"""

import json
import os
import pathlib
import tempfile
import urllib.parse

import pytest
import requests

from devstack import emulators
from devstack.serve import start_in_background

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = "offer-bandits-test"
# Decisions may use statistics this old (shared/platform/stats_cache.py); short here so tests that wait
# for the freshness bound wait little. Tests read it as os.environ["STATS_MAX_AGE_SECONDS"].
STATS_MAX_AGE_SECONDS = "0.5"
# How long an instance keeps its copy of config/serving (shared/platform/config.py); short here so a
# test that changes the document waits little for every server to see it.
SERVING_CONFIG_TTL_SECONDS = "0.5"
# The test tenants' API keys (two for tenant_a: a rotation in progress).
TEST_KEYS = {"default": ["test-key-default"], "tenant_a": ["test-key-a", "test-key-a-next"], "tenant_b": ["test-key-b"]}
DEFAULT_KEY = TEST_KEYS["default"][0]


def api_key_tenants(keys: dict[str, list[str]]) -> str:
    """API_KEY_TENANTS for these keys (shared/web/identity.py: SHA-256 of each key -> its tenant)."""
    from shared.web.identity import key_hash

    return json.dumps({key_hash(key): tenant for tenant, tenant_keys in keys.items() for key in tenant_keys})


os.environ["API_KEY_TENANTS"] = api_key_tenants(TEST_KEYS)
_request = requests.Session.request


def _with_the_default_key(self, method, url, *args, headers=None, **kwargs):
    local = urllib.parse.urlsplit(str(url)).hostname in ("127.0.0.1", "localhost")
    if local and not any(name.lower() == "x-api-key" for name in (headers or {})):
        headers = {**(headers or {}), "x-api-key": DEFAULT_KEY}
    return _request(self, method, url, *args, headers=headers, **kwargs)


requests.Session.request = _with_the_default_key


@pytest.fixture(scope="session")
def firestore_emulator():
    emulator = emulators.start_firestore()
    keys = ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "STATS_MAX_AGE_SECONDS", "SERVING_CONFIG_TTL_SECONDS")
    previous = {key: os.environ.get(key) for key in keys}
    os.environ.update(
        emulator.env,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        STATS_MAX_AGE_SECONDS=STATS_MAX_AGE_SECONDS,
        SERVING_CONFIG_TTL_SECONDS=SERVING_CONFIG_TTL_SECONDS,
    )
    yield emulator
    emulator.stop()
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def db(firestore_emulator):
    """A Firestore client on an emptied emulator."""
    from shared.platform.firestore import get_db

    emulators.clear_firestore(firestore_emulator.host_port, PROJECT)
    get_db.cache_clear()
    return get_db()


@pytest.fixture(scope="session")
def storage_emulator():
    emulator = emulators.start_storage()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ.update(emulator.env)
    yield emulator
    emulator.stop()
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def gateway(firestore_emulator):
    """The one local URL, served by gunicorn exactly as `make run` serves it."""
    env = {**os.environ, **firestore_emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT}
    log = tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log", delete=False)
    process, url = start_in_background(emulators.free_port(), env, log)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def api(gateway, db):
    """The gateway URL with Firestore emptied first."""
    return gateway


@pytest.fixture
def batch_buckets(db, storage_emulator, monkeypatch):
    """Empty inbox and results buckets on the storage emulator, named in the env as deployed."""
    from google.cloud import storage

    from shared.batch import job as batch_job

    batch_job.get_gcs.cache_clear()
    client = storage.Client(project=PROJECT)
    buckets = {}
    for role in ("inbox", "results"):
        name = f"test-{role}"
        bucket = client.bucket(name)
        if not bucket.exists():
            client.create_bucket(name)
        for blob in client.list_blobs(name):
            blob.delete()
        buckets[role] = bucket
    monkeypatch.setenv("INBOX_BUCKET", "test-inbox")
    monkeypatch.setenv("RESULTS_BUCKET", "test-results")
    return buckets


def function_client(target: str, key: str | None = DEFAULT_KEY):
    """The Flask test client of one entry point of functions/main.py, built as deployed, whose
    requests carry `key` (the default tenant's, unless told otherwise)."""
    import functions_framework

    client = functions_framework.create_app(target, str(ROOT / "functions" / "main.py")).test_client()
    if key is not None:
        client.environ_base["HTTP_X_API_KEY"] = key
    return client
