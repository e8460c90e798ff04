"""Headless Chromium for the tests that lay a page out or run its scripts (Debian's chromium
package; `.ci/run` installs it): no host resolves, so nothing reaches the network."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(page: Path, profile: Path, *flags: str, budget_ms: int) -> str:
    """The DOM of ``page`` after ``budget_ms`` of virtual time ran its scripts; ``profile``:
    the browser's own folder; ``flags``: more of Chromium's switches (a window size...)."""
    assert CHROMIUM, "no chromium"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            *flags,
            f"--virtual-time-budget={budget_ms}",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
