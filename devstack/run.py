"""`make run`: the emulators, every function behind one local URL, and the sample data loaded;
plus the batch path: the storage emulator (inbox and results buckets), `score_upload` served by
functions-framework as deployed, and the bridge that turns new inbox objects into its CloudEvents.
The running stack's addresses go to STATE_FILE, which `make drop` reads.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from devstack import emulators
from devstack.load_products import load_products_file
from devstack.serve import wait_for

LOCAL_PROJECT = "offer-bandits-local"
SAMPLE_PRODUCTS = "examples/company_A_products.csv"
INBOX_BUCKET = "local-inbox"
RESULTS_BUCKET = "local-results"
STATE_FILE = pathlib.Path("local-results/.devstack.json")  # local-results/ is gitignored


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    try:
        firestore = emulators.start_firestore(emulators.free_port(avoid=(port,)))
    except emulators.MissingPrerequisite as missing:
        print(missing, file=sys.stderr)
        return 1
    env = {**os.environ, **firestore.env, "GOOGLE_CLOUD_PROJECT": os.environ.get("GOOGLE_CLOUD_PROJECT", LOCAL_PROJECT)}
    os.environ.update(env)
    gateway = storage = None
    batch: list[subprocess.Popen] = []
    try:
        loaded = load_products_file(SAMPLE_PRODUCTS)
        gateway = subprocess.Popen([sys.executable, "-m", "devstack.serve", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        storage = emulators.start_storage(emulators.free_port(avoid=(port,)))
        env.update(storage.env, INBOX_BUCKET=INBOX_BUCKET, RESULTS_BUCKET=RESULTS_BUCKET)
        batch_url = _start_batch(env, storage, batch)
        wait_for(f"{url}/is-alive", gateway)
        STATE_FILE.parent.mkdir(exist_ok=True)
        STATE_FILE.write_text(
            json.dumps(
                {
                    "gateway": url,
                    "project": env["GOOGLE_CLOUD_PROJECT"],
                    "firestore_emulator_host": firestore.host_port,
                    "storage_emulator_host": storage.env["STORAGE_EMULATOR_HOST"],
                    "inbox_bucket": INBOX_BUCKET,
                    "results_bucket": RESULTS_BUCKET,
                    "score_upload": batch_url,
                    "pid": os.getpid(),
                },
                indent=2,
            )
        )
        print(
            f"\noffer-bandits is running at {url}\n"
            f"  Firestore emulator: {firestore.host_port} (FIRESTORE_EMULATOR_HOST), "
            f"project {env['GOOGLE_CLOUD_PROJECT']}\n"
            f"  Storage emulator: {storage.env['STORAGE_EMULATOR_HOST']}, buckets {INBOX_BUCKET} and {RESULTS_BUCKET}; "
            f"score_upload at {batch_url}, fed by the bridge\n"
            f"  sample data: {loaded} products from {SAMPLE_PRODUCTS}\n"
            f"  try: curl '{url}/sample/?click_id=1&offer_ids=3,5,7'\n"
            f"       make drop FILE=examples/company_B.csv CLIENT=company_b\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while all(process.poll() is None for process in [gateway, *batch]):
            time.sleep(0.5)
        return next(process.returncode for process in [gateway, *batch] if process.poll() is not None) or 0
    except KeyboardInterrupt:
        return 0
    finally:
        STATE_FILE.unlink(missing_ok=True)
        for process in [gateway, *batch]:
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        if storage:
            storage.stop()
        firestore.stop()


def _start_batch(env: dict, storage: emulators.Emulator, processes: list) -> str:
    """Create the buckets, serve score_upload as deployed (functions-framework) and start the bridge."""
    from google.cloud import storage as gcs

    os.environ.update(storage.env)
    client = gcs.Client(project=env["GOOGLE_CLOUD_PROJECT"])
    for bucket in (INBOX_BUCKET, RESULTS_BUCKET):
        client.create_bucket(bucket)
    port = emulators.free_port()
    processes.append(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--target",
                "score_upload",
                "--source",
                "functions/main.py",
                "--signature-type",
                "cloudevent",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
        )
    )
    url = f"http://127.0.0.1:{port}/"
    wait_for(url, processes[-1])
    processes.append(
        subprocess.Popen([sys.executable, "-m", "devstack.bridge", "--bucket", INBOX_BUCKET, "--target", url], env=env)
    )
    return url


if __name__ == "__main__":
    sys.exit(main())
