"""`make run`: the emulators, every function behind one local URL, and the sample data loaded."""
import os
import signal
import subprocess
import sys
import time

import requests

from devstack import emulators
from devstack.load_products import load_products_file

LOCAL_PROJECT = "offer-bandits-local"
SAMPLE_PRODUCTS = "examples/company_A_products.csv"


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    try:
        firestore = emulators.start_firestore(emulators.free_port(avoid=(port,)))
    except emulators.MissingPrerequisite as missing:
        print(missing, file=sys.stderr)
        return 1
    env = {**os.environ, **firestore.env, "GOOGLE_CLOUD_PROJECT": os.environ.get("GOOGLE_CLOUD_PROJECT", LOCAL_PROJECT)}
    os.environ.update(env)
    gateway = None
    try:
        loaded = load_products_file(SAMPLE_PRODUCTS)
        gateway = subprocess.Popen([sys.executable, "-m", "devstack.serve", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        _wait_for(f"{url}/is-alive", gateway)
        print(
            f"\noffer-bandits is running at {url}\n"
            f"  Firestore emulator: {firestore.host_port} (FIRESTORE_EMULATOR_HOST), project {env['GOOGLE_CLOUD_PROJECT']}\n"
            f"  sample data: {loaded} products from {SAMPLE_PRODUCTS}\n"
            f"  try: curl '{url}/sample/?click_id=1&offer_ids=3,5,7'\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        gateway.wait()
        return gateway.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        if gateway and gateway.poll() is None:
            gateway.terminate()
            gateway.wait(timeout=10)
        firestore.stop()


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited with {process.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit(f"the gateway did not answer at {url}")


if __name__ == "__main__":
    sys.exit(main())
