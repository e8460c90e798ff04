from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import moto.backends
import papermill.s3
import pytest
from signals_app import Signals

from emulators.knack import Faults, load_fixture_app
from emulators.socrata import SocrataFaults
from emulators.stack import Stack

ROOT = Path(__file__).resolve().parent.parent

# moto's server finds the service of each request by listing its own package folder, twice a
# request (``moto.backends.list_of_moto_modules``: ~180 stat calls, ~15-20% of a request's
# CPU here); the folder does not change while the tests run, so list it once.
_MOTO_MODULES = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MOTO_MODULES


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The demo stand-ins, shared by the session (each test gets its own bucket)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto server's access log
    with Stack() as s:
        yield s


@pytest.fixture
def demo_env(stack: Stack, monkeypatch: pytest.MonkeyPatch, request, tmp_path) -> Stack:
    """Point the product at the stack, with a fresh bucket for this test.

    The emulator serves the fixture app as shipped, with no faults and an empty log; the
    working directory is a temp dir (local report fall-backs land there).
    """
    name = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    stack.s3().create_bucket(Bucket=bucket)
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KNACK_SERVICES_BUCKET", bucket)
    monkeypatch.setattr(stack, "bucket", bucket)
    monkeypatch.chdir(tmp_path)
    # papermill caches one boto3 session per process; a run from the command line is a
    # fresh process, so start each test without it (environment changes then apply)
    monkeypatch.setattr(papermill.s3.S3, "s3_session", (None, None, None))
    stack.knack.add_app(*load_fixture_app())
    stack.reset_knack_copy()
    stack.reset_socrata()
    stack.reset_arcgis()
    stack.reset_postgres()
    stack.socrata.faults = SocrataFaults()
    stack.socrata.reset_log()
    stack.knack.faults = Faults()
    stack.knack.reset_log()
    return stack


@pytest.fixture
def signals(demo_env, tmp_path, monkeypatch):
    params = tmp_path / "params"
    params.mkdir()
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(params))
    return Signals(demo_env, params)
