"""`make fuzz`: schemathesis over infra/openapi.json against a fresh local stack (its own Firestore
emulator and gateway on free ports), bounded by examples per operation, a fixed seed and a time
budget. Passes when no answer is a server error and every answer matches the declared schema,
status and content type.

schemathesis runs from its own virtualenv (.venv-fuzz, made by `make fuzz`): it brings many
packages the service and its tests never need.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

from devstack import emulators
from devstack.routes import SPEC_PATH
from devstack.serve import start_in_background

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schemathesis", default=str(ROOT / ".venv-fuzz" / "bin" / "schemathesis"))
    parser.add_argument("--max-examples", type=int, default=40, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-time", type=int, default=180, help="seconds, the whole run")
    args = parser.parse_args()

    emulator = emulators.start_firestore()
    log = tempfile.NamedTemporaryFile(prefix="gateway-fuzz-", suffix=".log", delete=False)
    env = {**os.environ, **emulator.env, "GOOGLE_CLOUD_PROJECT": "offer-bandits-fuzz"}
    gateway, url = None, None
    try:
        gateway, url = start_in_background(emulators.free_port(), env, log)
        command = [
            args.schemathesis, "run", str(SPEC_PATH), "--url", url,
            "--checks", CHECKS, "--seed", str(args.seed), "--max-examples", str(args.max_examples),
            "--max-time", str(args.max_time), "--phases", "examples,coverage,fuzzing",
            "--workers", "2", "--generation-database", "none", "--request-timeout", "30",
            "--suppress-health-check", "all",
        ]  # fmt: skip
        print(" ".join(command), flush=True)
        status = subprocess.run(command, check=False).returncode
        print(f"gateway log: {log.name}")
        return status
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(timeout=10)
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
