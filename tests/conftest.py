"""Fixtures that start the real emulators and the one-URL gateway on free ports, and the layer
markers: each test is marked `unit`, `store`, `stack` or `infra` by the folder it lives in.

Pure tests (tests/unit/) never start them, so they run without Java or servers: a unit test that
asks for an emulator or the gateway, or starts a process through devstack, fails.
"""

import os
import pathlib
import tempfile

import pytest

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
