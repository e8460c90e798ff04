"""Tests of the Airflow DAGs (``dags/``) with real Airflow, run by ``.venv-airflow``'s pytest.

Airflow reads ``AIRFLOW_HOME`` when it is first imported, so a throw-away home (no examples,
a SQLite database made only by the end-to-end test's ``airflow db migrate``) is set before
any test module imports it. The root ``conftest.py`` has already set fake AWS credentials.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import moto.backends

DAGS_DIR = Path(__file__).resolve().parent.parent / "dags"
_HOME: str | None = None

# moto's server (the stacks' S3) lists its package folder twice a request to find the
# service: once is enough (tests/conftest.py says more)
_MOTO_MODULES = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MOTO_MODULES


def pytest_configure(config):
    global _HOME
    _HOME = tempfile.mkdtemp(prefix="airflow-home-")
    os.environ["AIRFLOW_HOME"] = _HOME
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_DIR)
    # Airflow's CLI, run in-process by test_dags_test_e2e.py, imports fastapi's test client
    config.addinivalue_line(
        "filterwarnings", "ignore:Using `httpx` with `starlette.testclient` is deprecated"
    )


def pytest_unconfigure(config):
    if _HOME:
        shutil.rmtree(_HOME, ignore_errors=True)
