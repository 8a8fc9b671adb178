"""The example clients of `make run` (examples/clients.json): a fresh API key for each, the environment
the functions read their tenants from, and each client's sample products.

Keys are random at every start and live only in the stack's state file (gitignored) and on the
terminal: they are test credentials of a local stack. API_KEY_TENANTS already in the environment
(tests set it) is kept, and the example clients' keys are added to it.
"""

import json
import pathlib
import secrets

from shared.web.identity import key_hash

CLIENTS_FILE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "clients.json"


def example_clients() -> dict[str, dict]:
    return json.loads(CLIENTS_FILE.read_text())["clients"]


def new_keys(clients: dict[str, dict]) -> dict[str, str]:
    """A fresh API key per client, by tenant."""
    return {client["tenant"]: f"ob-{client['tenant']}-{secrets.token_urlsafe(18)}" for client in clients.values()}


def environment(clients: dict[str, dict], keys: dict[str, str], inherited: dict) -> dict[str, str]:
    """API_KEY_TENANTS (the HTTP functions) and BATCH_TENANTS (score_upload) for these clients."""
    tenants = json.loads(inherited.get("API_KEY_TENANTS") or "{}")
    tenants.update({key_hash(key): tenant for tenant, key in keys.items()})
    folders = {client["batch_folder"]: client["tenant"] for client in clients.values() if client.get("batch_folder")}
    return {"API_KEY_TENANTS": json.dumps(tenants), "BATCH_TENANTS": json.dumps(folders)}
