"""`make drop FILE=<csv> CLIENT=<client>`: put a file into the running stack's inbox (as the client
would), wait for its batch job, print its counts and copy its result and error CSVs to local-results/.

Needs `make run` going in another terminal; its addresses are read from its state file (tools/target.py).
"""

import argparse
import os
import pathlib
import sys
import time

from shared.platform.namespace import DEFAULT_TENANT, Namespace
from tools import target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--name", help="object name under the client's folder (default: the file's name)")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    state = target.running_stack()
    if state is None:
        print(f"no running stack ({target.state_file()} is missing): start `make run` first", file=sys.stderr)
        return 1
    os.environ.update(
        STORAGE_EMULATOR_HOST=state["storage_emulator_host"],
        FIRESTORE_EMULATOR_HOST=state["firestore_emulator_host"],
        GOOGLE_CLOUD_PROJECT=state["project"],
    )
    from google.cloud import firestore, storage

    from shared.batch import job as batch_job

    tenants = state.get("batch_tenants", {})
    if tenants and args.client not in tenants:
        print(f"{args.client!r} is no batch client of this stack (clients: {', '.join(tenants)})", file=sys.stderr)
        return 1
    space = Namespace(tenants.get(args.client, DEFAULT_TENANT))  # whose episodes and job status these are
    source = pathlib.Path(args.file)
    name = f"{args.client}/{args.name or source.name}"
    blob = storage.Client(project=state["project"]).bucket(state["inbox_bucket"]).blob(name)
    started = time.monotonic()
    blob.upload_from_filename(str(source), content_type="text/csv")
    print(f"uploaded {source} to gs://{state['inbox_bucket']}/{name} (generation {blob.generation})", flush=True)
    job = (
        firestore.Client(project=state["project"])
        .collection(space.path(batch_job.JOBS))
        .document(batch_job.Upload(state["inbox_bucket"], name, str(blob.generation)).job_id)
    )
    status = _wait(job, started + args.timeout)
    if status is None:
        print(f"no finished job for {name} after {args.timeout:.0f} s (see the `make run` terminal)", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    print(
        f"{status['state']}: {status['rows_read']} rows read, {status['rows_scored']} scored, "
        f"{status['rejected_rows']} rejected in {elapsed:.1f} s ({status['rows_read'] / elapsed:.0f} rows/s)"
    )
    if status["state"] != "done":
        print(f"reason: {status.get('reason')}", file=sys.stderr)
        return 1
    results = storage.Client(project=state["project"]).bucket(state["results_bucket"])
    for path in (status["results_path"], status["errors_path"]):
        if path:
            object_name = path.split("/", 3)[3]
            local = pathlib.Path("local-results") / object_name
            local.parent.mkdir(parents=True, exist_ok=True)
            results.blob(object_name).download_to_filename(str(local))
            print(f"  {path} -> {local}")
    return 0


def _wait(job, deadline: float) -> dict | None:
    shown = None
    while time.monotonic() < deadline:
        snapshot = job.get()
        status = snapshot.to_dict() if snapshot.exists else None
        if status and status["state"] in ("done", "failed"):
            return status
        progress = (status or {}).get("progress") or {}
        now = status and (status["state"], status.get("stage"), progress.get("rows_done"))
        if now and now != shown:
            shown = now
            # last_error: a delivery failed (the bridge delivers again) or a task is being retried
            why = f" ({status['last_error']})" if status.get("last_error") else ""
            eta = f", about {progress['eta_seconds']} s to go" if progress.get("eta_seconds") else ""
            total = f"{progress['rows_total']:,}" if progress.get("rows_total") else "?"
            done = f"{progress.get('rows_done') or 0:,} of ~{total} rows" if progress else ""
            stage = f" {status['stage']}" if status.get("stage") else ""
            print(f"  {status['state']}{stage}{': ' + done if done else ''}{eta}{why}", flush=True)
        time.sleep(0.5)
    return None


if __name__ == "__main__":
    sys.exit(main())
