"""Fixtures that start the real emulators and the one-URL gateway on free ports, and the layer
markers: each test is marked `unit`, `store`, `stack` or `infra` by the folder it lives in.

Pure tests (tests/unit/) never start them, so they run without Java or servers: a unit test that
asks for an emulator or the gateway, or starts a process through devstack, fails.

Every gateway a test starts knows the test tenants' API keys (API_KEY_TENANTS, set for the whole
session), and every HTTP call to 127.0.0.1 carries the `default` tenant's key unless it names one
(or None, for no key; or sets one on its session): as a client configured with its key would. The
default tenant's documents are at the root, so tests that read Firestore find them where they always were.
"""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest
import requests

from devstack import emulators, processes
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
# No holdout unless a test sets one (tests/stack/test_decision_log.py, tests/store/test_holdout_store.py):
# the other tests count what the learning counters hold, and every click they send must be in them.
os.environ["HOLDOUT_SHARE"] = "0"
_request = requests.Session.request


def _with_the_default_key(self, method, url, *args, headers=None, **kwargs):
    local = urllib.parse.urlsplit(str(url)).hostname in ("127.0.0.1", "localhost")
    named = [*(headers or {}), *self.headers]  # a key in the call, or the session's (tools/traffic.py)
    if local and not any(name.lower() == "x-api-key" for name in named):
        headers = {**(headers or {}), "x-api-key": DEFAULT_KEY}
    return _request(self, method, url, *args, headers=headers, **kwargs)


requests.Session.request = _with_the_default_key

TESTS = pathlib.Path(__file__).resolve().parent
LAYERS = ("unit", "store", "stack", "infra")  # the folders under tests/, each its marker (pytest.ini)
# What a unit test must never ask for: each starts the Firestore emulator (Java), the storage
# emulator or the gateway, or needs one that is running.
NOT_FOR_UNIT = {"firestore_emulator", "storage_emulator", "gateway", "api", "db", "batch_buckets"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = item.path.resolve().relative_to(TESTS).parts
        if len(parts) < 2 or parts[0] not in LAYERS:
            raise pytest.UsageError(f"{item.path}: a test lives in one of tests/{{{','.join(LAYERS)}}}/")
        item.add_marker(parts[0])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture starts: a unit test that needs an emulator or the gateway fails, naming them."""
    if item.get_closest_marker("unit"):
        needs = sorted(NOT_FOR_UNIT & set(item.fixturenames))
        if needs:
            pytest.fail(
                f"{item.nodeid} is in tests/unit/ but uses {', '.join(needs)}: unit tests start no emulator "
                "and no server; move it to tests/store/ or tests/stack/",
                pytrace=False,
            )


@pytest.fixture(autouse=True)
def _unit_tests_spawn_nothing(request, monkeypatch):
    """devstack's emulators and gateway all start through processes.spawn: refused in a unit test."""
    if request.node.get_closest_marker("unit"):

        def refuse(command, **kwargs):
            raise AssertionError(
                f"{request.node.nodeid} is in tests/unit/ but starts {command[:4]}: "
                "move it to tests/store/ or tests/stack/"
            )

        monkeypatch.setattr(processes, "spawn", refuse)


@pytest.fixture(scope="session")
def firestore_emulator():
    emulator = emulators.start_firestore()
    settings = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "STATS_MAX_AGE_SECONDS": STATS_MAX_AGE_SECONDS,
        "SERVING_CONFIG_TTL_SECONDS": SERVING_CONFIG_TTL_SECONDS,
    }
    with _environment({**emulator.env, **settings}):
        yield emulator
        emulator.stop()


@pytest.fixture
def db(firestore_emulator):
    """A Firestore client on an emptied emulator."""
    from shared.platform.firestore import get_db

    emulators.clear_firestore(firestore_emulator.host_port, PROJECT)
    get_db.cache_clear()
    return get_db()


@contextlib.contextmanager
def _environment(variables: dict):
    """This process's environment with `variables` set, as it was afterwards (a session fixture
    cannot use monkeypatch)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="session")
def storage_emulator():
    emulator = emulators.start_storage()
    with _environment(emulator.env):
        yield emulator
        emulator.stop()


@pytest.fixture(scope="session")
def gateway(firestore_emulator):
    """The one local URL, served by gunicorn exactly as `make run` serves it."""
    yield from _served({**os.environ, **firestore_emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT}, "gateway-")


def _served(env: dict, log_prefix: str):
    """A gunicorn gateway on a free port with `env`, its log in a temporary file: yields its URL."""
    log = tempfile.NamedTemporaryFile(prefix=log_prefix, suffix=".log", delete=False)
    process, url = start_in_background(emulators.free_port(), env, log)
    yield url
    process.terminate()
    process.wait(timeout=10)


TOPIC_PREFIX = "test-"  # the decision log's topics in the tests' Pub/Sub emulator


class DecisionLog:
    """The local decision log (a DuckDB file) fed by devstack/feeder.py, which a test may kill and start
    again as `make run`'s supervisor would."""

    def __init__(self, path: pathlib.Path, env: dict):
        self.path, self.env = path, env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "devstack.feeder", "--database", str(self.path), "--prefix", TOPIC_PREFIX]
        self.process = processes.spawn(command, env=self.env, cwd=ROOT)

    def kill(self) -> None:
        """As a crash: SIGKILL, wherever it is (between a commit and its acknowledgement, perhaps)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        processes.stop(self.process)

    def query(self, sql: str, params=None) -> list[tuple]:
        from tools.analytics import duck

        connection = duck.connect(self.path, read_only=True)
        try:
            return connection.execute(sql, params or []).fetchall()
        finally:
            connection.close()

    def wait_for(self, table: str, tenant: str, count: int, timeout: float = 180) -> int:
        """Until the view `table` holds `count` rows of the tenant (the feeder is asynchronous); the count."""
        deadline = time.monotonic() + timeout
        while True:
            found = 0
            if self.path.exists():
                found = self.query(f"SELECT COUNT(*) FROM {table} WHERE tenant = ?", [tenant])[0][0]
            if found >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


@pytest.fixture(scope="session")
def pubsub_emulator():
    emulator = emulators.start_pubsub()
    with _environment(emulator.env):  # this process's clients too (the feeder's setup, the tests' reads)
        yield emulator
        emulator.stop()


@pytest.fixture(scope="session")
def decision_log(pubsub_emulator, firestore_emulator, tmp_path_factory):
    """The decision log `logged_gateway` publishes, fed into a DuckDB file for the whole session:
    tests tell their records apart by tenant."""
    from devstack import feeder

    env = {**os.environ, **pubsub_emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT}
    feeder.setup(PROJECT, TOPIC_PREFIX)
    log = DecisionLog(tmp_path_factory.mktemp("decision-log") / "log.duckdb", env)
    log.start()
    yield log
    log.stop()


@pytest.fixture(scope="session")
def logged_gateway(decision_log, firestore_emulator):
    """A gateway whose functions publish the decision log (DECISION_LOG=pubsub), as `make run`'s."""
    env = {
        **decision_log.env,
        **firestore_emulator.env,
        "DECISION_LOG": "pubsub",
        "DECISION_LOG_TOPIC_PREFIX": TOPIC_PREFIX,
    }
    yield from _served(env, "logged-gateway-")


def _after_the_gateway_forgets(url: str) -> str:
    """`url`, once long enough has passed that its gateway forgets what it held before Firestore
    was emptied: its statistics and configuration copies are refreshed before a request uses them
    once they are older than STATS_MAX_AGE_SECONDS or SERVING_CONFIG_TTL_SECONDS (a young counter's
    copy is kept up to M after a pause, shared/platform/stats_cache.py). Without the wait, an
    earlier test's copies steered a test's first decisions, and a copy that still counted an
    earlier test's 16 shards sent writes to a shard that the emptied summary's 8 do not read."""
    from shared.platform.stats_cache import DEFAULT_MIN_AGE  # the cache's tick T, unset in the tests

    settle = max(float(os.environ["STATS_MAX_AGE_SECONDS"]), float(os.environ["SERVING_CONFIG_TTL_SECONDS"]))
    time.sleep(settle + DEFAULT_MIN_AGE)
    return url


@pytest.fixture
def api(gateway, db):
    """The gateway URL with Firestore emptied first, and the gateway's earlier copies forgotten."""
    return _after_the_gateway_forgets(gateway)


@pytest.fixture(scope="session")
def linear_gateway(firestore_emulator):
    """A gateway serving AGENT_POLICY=linear-ts (the session's gateway serves the default agent)."""
    from shared.customer import agents

    env = {**os.environ, **firestore_emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT, "AGENT_POLICY": agents.LINEAR_TS}
    yield from _served(env, "gateway-linear-")


@pytest.fixture
def linear_api(linear_gateway, db):
    """The linear gateway's URL with Firestore emptied first, and its earlier copies forgotten."""
    return _after_the_gateway_forgets(linear_gateway)


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
