"""Debian's headless Chromium: found, installed by `make prereqs` when missing, and used to screenshot
the report (tests/test_report.py checks that the page really renders in a browser).

Installing needs root (or password-less sudo) and Debian's apt; without them `make prereqs` says so
loudly and goes on, and the screenshot test skips with the same message.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

PACKAGE = "chromium"  # Debian's package; its binary is /usr/bin/chromium
NAMES = ("chromium", "chromium-browser")
INSTALL_HINT = "Debian's chromium package: apt-get install -y chromium (as root), or `make prereqs`"
# Flags for a quiet, offline, single-shot run: no sandbox (root and containers), no GPU, no network
# chatter (component updates, sync, QUIC), a throwaway profile.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find() -> str | None:
    return next((path for path in map(shutil.which, NAMES) if path), None)


def _apt_prefix() -> list[str] | None:
    """How to run apt-get here: directly as root, through password-less sudo, or not at all."""
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


def ensure() -> str | None:
    """The Chromium binary, installing Debian's package first when it is missing and we can."""
    found = find()
    if found:
        return found
    prefix = _apt_prefix()
    if prefix is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"Installing {PACKAGE} (Debian) for the report's screenshot test ...", flush=True)
    install = [*prefix, "apt-get", "install", "-y", "--no-install-recommends", PACKAGE]
    if subprocess.run(install, env=env).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run([*prefix, "apt-get", "update"], env=env)
        subprocess.run(install, env=env)
    return find()


def screenshot(
    page: pathlib.Path, png: pathlib.Path, width: int = 1280, height: int = 2000, timeout: float = 120
) -> None:
    """Render `page` (a local HTML file) in headless Chromium and save a PNG of the window."""
    binary = find()
    if not binary:
        raise FileNotFoundError(f"Chromium is not installed: {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png.resolve()}",
            f"--window-size={width},{height}",
            page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")


def main() -> int:
    """`make prereqs`: install Chromium if missing; never fails the build when it cannot."""
    if ensure():
        return 0
    banner = "!" * 100
    print(
        f"{banner}\nWARNING: Chromium is missing and cannot be installed here (needs root or password-less sudo "
        f"and apt-get).\nThe report's screenshot test (tests/test_report.py) will be SKIPPED. Install "
        f"{INSTALL_HINT}.\n{banner}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
