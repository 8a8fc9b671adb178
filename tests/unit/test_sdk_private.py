"""Only shared/platform/sdk_private.py touches private google-cloud-firestore attributes (a scan of the
source); the attributes themselves are checked against the emulator in tests/store/test_sdk_private.py."""

import pathlib
import re


def test_nothing_outside_sdk_private_touches_private_attributes():
    root = pathlib.Path(__file__).resolve().parents[2]
    private = re.compile(r"\._data\b|_firestore_api|_rpc_metadata|_database_string")
    offenders = [
        str(path.relative_to(root))
        for folder in ("shared", "functions")
        for path in (root / folder).rglob("*.py")
        if path.name != "sdk_private.py" and private.search(path.read_text())
    ]
    assert not offenders, f"private SDK attributes used outside shared/platform/sdk_private.py: {offenders}"
