"""``knack-nb run`` never falls back to a notebook's demo default for ``container``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib import reports
from lib.cli import main as cli
from lib.errors import MissingParameterError

CONTAINER_NOTEBOOKS = [
    "knack_container_to_s3",
    "upsert_knack_container_to_socrata",
    "knack_container_to_agol",
    "explore_container",
]


@pytest.mark.parametrize("notebook", CONTAINER_NOTEBOOKS)
def test_a_container_notebook_without_container_is_refused_before_it_runs(
    demo_env, capsys, notebook
):
    stack = demo_env
    assert cli(["run", notebook, "-a", "demo", "-e", "dev"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"knack-nb run {notebook} needs --container (-c): ")
    assert "object_3" in lines[0]  # the app's configured containers are suggested
    assert captured.out == ""
    assert stack.s3_keys() == []  # no report, no record
    assert stack.knack.requests == []  # nothing was executed


def test_the_runner_refuses_too(demo_env):
    with pytest.raises(MissingParameterError, match="container") as e:
        reports.run_notebook("knack_container_to_s3", app_name="demo", env="dev")
    assert (e.value.notebook, e.value.parameter) == ("knack_container_to_s3", "container")
    assert demo_env.s3_keys() == []


# A notebook without a ``container`` parameter runs without -c: the very command of
# test_upload_metadata_e2e.py's first test, which asserts "upload_metadata: ok" too.


def test_the_refusal_is_one_line_from_the_command_line(demo_env):
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("knack-nb")),
            "run",
            "knack_container_to_s3",
            "-a",
            "demo",
            "-e",
            "dev",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("knack-nb run knack_container_to_s3 needs --container (-c): ")
    assert done.stderr.count("\n") == 1, done.stderr
    assert demo_env.s3_keys() == []
