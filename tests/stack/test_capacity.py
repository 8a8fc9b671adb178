"""A serving process killed mid-traffic loses nothing from the rolled-up totals (gunicorn gateways
against the Firestore emulator)."""

import concurrent.futures
import os
import signal
import tempfile
import time

import requests

from devstack import emulators
from devstack.serve import start_in_background
from shared.cpa import store as cpa
from shared.platform import stats_cache
from tests.store.test_capacity import click_sums, max_age


def test_killing_a_serving_process_mid_traffic_loses_nothing_from_the_totals(firestore_emulator, db):
    """SIGKILL the gateway while 8 clients send clicks and feedback; a new one takes over. The
    rolled-up totals then equal the sums over the click documents that were committed, and every
    click answered 200 is among them."""
    env = {**os.environ, **firestore_emulator.env}
    log = tempfile.NamedTemporaryFile(prefix="gateway-kill-", suffix=".log", delete=False)
    process, url = start_in_background(emulators.free_port(), env, log)
    offers = "31,32,33,34"
    answered: set[int] = set()
    restarted = [float("inf")]

    def client(index):
        session = requests.Session()
        click = index * 100_000
        while time.monotonic() < restarted[0] + 1.0:
            click += 1
            try:
                chosen = session.get(f"{url}/sample/", params={"click_id": click, "offer_ids": offers}, timeout=30)
                if chosen.status_code == 200:
                    answered.add(click)
                    session.put(f"{url}/feedback/", params={"click_id": click, "reward": click % 3 * 100}, timeout=30)
            except requests.RequestException:
                time.sleep(0.05)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(client, index) for index in range(8)]
        deadline = time.monotonic() + 60
        while len(answered) < 40 and time.monotonic() < deadline:  # mid-traffic
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        process, url = start_in_background(emulators.free_port(), env, log)
        restarted[0] = time.monotonic()
        for future in futures:
            future.result()
    try:
        truth = click_sums(db)
        stored = {snapshot.get("click_id") for snapshot in db.collection(cpa.CLICKS).stream()}
        assert answered and answered <= stored
        time.sleep(max_age())
        summaries = stats_cache.StatsCache(db).get([cpa.offer_counter(int(o)) for o in offers.split(",")])
        for offer, expected in truth.items():
            totals = summaries[cpa.offer_counter(offer)].totals
            assert {key: totals.get(key, 0) for key in expected} == expected
    finally:
        process.terminate()
        process.wait(timeout=10)
