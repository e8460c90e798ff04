"""A kernel that dies before it answers is started once more by ``lib.reports.run_notebook``.

jupyter_client picks free TCP ports for a kernel and the kernel binds them a moment later;
on a busy machine another process can take one in between, and the kernel exits with
"Address already in use" before any cell ran. Here a ``python3`` kernelspec (found first
through ``JUPYTER_PATH``) exits at its first start, as that kernel does, then starts the
real ipykernel.
"""

from __future__ import annotations

import json
import sys

import pytest

from lib import reports

FLAKY = """\
import os, sys
starts = os.environ["KNACK_NB_TEST_KERNEL_STARTS"]
with open(starts, "a") as f:
    f.write("start\\n")
if open(starts).read().count("start") <= int(os.environ["KNACK_NB_TEST_KERNEL_DEATHS"]):
    sys.exit(1)  # dies before answering kernel_info, like a kernel whose port was taken
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


@pytest.fixture
def flaky_kernel(demo_env, tmp_path, monkeypatch):
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (tmp_path / "flaky_kernel.py").write_text(FLAKY)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    sys.executable,
                    str(tmp_path / "flaky_kernel.py"),
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "Python 3 (dies at its first start)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    starts = tmp_path / "starts.txt"
    monkeypatch.setenv("KNACK_NB_TEST_KERNEL_STARTS", str(starts))
    return starts, monkeypatch


def test_a_kernel_that_dies_at_start_is_started_again(flaky_kernel, caplog):
    starts, monkeypatch = flaky_kernel
    monkeypatch.setenv("KNACK_NB_TEST_KERNEL_DEATHS", "1")
    result = reports.run_notebook("upload_metadata", app_name="demo", env="dev")
    assert result.ok, result.error
    assert result.summary["app_id"]
    assert starts.read_text().count("start") == 2
    assert "the kernel failed to start (Kernel died before replying" in caplog.text


def test_a_kernel_that_keeps_dying_fails_after_two_starts(flaky_kernel):
    starts, monkeypatch = flaky_kernel
    monkeypatch.setenv("KNACK_NB_TEST_KERNEL_DEATHS", "9")
    with pytest.raises(RuntimeError, match="Kernel died before replying"):
        reports.run_notebook("upload_metadata", app_name="demo", env="dev")
    assert starts.read_text().count("start") == reports.KERNEL_START_ATTEMPTS == 2
