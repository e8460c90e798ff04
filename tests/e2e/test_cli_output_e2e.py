"""What ``knack-nb run`` prints in a terminal: its outcome, summary and report by default;
papermill's cell by cell log and the notebook's output only under ``-v``; never the
kernel's own warnings. Its own process, against the stand-ins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

KNACK_NB = Path(sys.executable).with_name("knack-nb")
KERNEL_WARNING = "without encryption"


def knack_nb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KNACK_NB), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )


def test_a_run_prints_what_matters_and_v_shows_the_rest(demo_env):
    run = ("run", "upload_metadata", "-a", "demo", "-e", "dev")
    quiet = knack_nb(*run)
    assert quiet.returncode == 0, quiet.stderr
    printed = quiet.stdout + quiet.stderr
    assert "upload_metadata: ok" in quiet.stdout and "report: s3://" in quiet.stdout
    assert "Executing Cell" not in printed and KERNEL_WARNING not in printed  # before: both
    assert len(printed.splitlines()) < 30, printed  # before: ~100 lines

    verbose = knack_nb("-v", *run)
    assert verbose.returncode == 0, verbose.stderr
    printed = verbose.stdout + verbose.stderr
    assert "Executing Cell" in printed and "upload_metadata: ok" in verbose.stdout
    assert KERNEL_WARNING not in printed
