"""What both benchmarks share: the project on sys.path, the generated app's names, a params
file for it, and silencing stderr while a phase is timed."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

APP = "bench"
ENV = "dev"
CONTAINER = "object_1"
MODIFIED = "field_5"
# loggers a benchmark silences (their lines would interleave with the tables)
QUIET_LOGGERS = ("werkzeug", "botocore", "boto3", "urllib3", "moto", "s3transfer",
                 "papermill", "traitlets", "lib")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence file descriptor 2 (this process's and its kernels'): the product's progress
    bars still run, so their cost counts, but print nowhere."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def write_params(directory: Path, app_id: str, *, writer: str, extra: str = "") -> None:
    """``<directory>/bench.yaml`` for the generated signals app; ``extra``: more lines of
    the container's settings, indented by four spaces."""
    (directory / f"{APP}.yaml").write_text(
        f"# written by benchmarks/{writer}: the generated signals app\n"
        f"app_id:\n  prod: {app_id}\n  dev: {app_id}\n"
        f"containers:\n  {CONTAINER}:\n    description: generated signals\n"
        f"    modified_date_field: {MODIFIED}\n" + extra
    )
