"""No credential on stderr, stdout or in any report: ``knack-nb run`` as a subprocess against
the demo stack, with a password in KNACK_API_URL and with debug logging (``-v``)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lib import reports

KNACK_NB = str(Path(sys.executable).with_name("knack-nb"))


def knack_nb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KNACK_NB, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


def with_userinfo(url: str, user: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest}"


def reports_text(stack) -> dict[str, str]:
    s3 = stack.s3()
    return {
        key: s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()
        for key in stack.s3_keys("reports/")
    }


@pytest.mark.parametrize(
    "notebook, extra",
    [
        ("upload_metadata", []),
        ("knack_container_to_s3", ["-c", "object_3"]),
    ],
)
def test_a_password_in_knack_api_url_is_in_no_output_and_no_report(
    demo_env, monkeypatch, notebook, extra
):
    stack = demo_env
    password = "pw-" + secrets.token_hex(8)
    monkeypatch.setenv("KNACK_API_URL", with_userinfo(stack.knack.url, "user", password))
    # the metadata answer lacks `application`: the error message names the client's URL
    stack.knack.faults.metadata_body = '{"x": 1}'

    done = knack_nb("run", notebook, "-a", "demo", "-e", "dev", *extra)

    assert done.returncode == 1, done.stderr
    texts = reports_text(stack)
    assert len(texts) == 1  # the failed run's report
    for where, text in {"stdout": done.stdout, "stderr": done.stderr, **texts}.items():
        assert password not in text, f"the password leaked into {where}"
    redacted_url = with_userinfo(stack.knack.url, "user", "***")
    # the message still says what to check, with the userinfo redacted
    assert f"check KNACK_API_URL ({redacted_url})" in done.stderr
    (report,) = texts.values()
    nb = nbformat.reads(report, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors and f"check KNACK_API_URL ({redacted_url})" in errors[0].evalue


def test_debug_output_carries_no_credential(demo_env):
    stack = demo_env
    done = knack_nb("-v", "run", "upload_metadata", "-a", "demo", "-e", "dev")

    assert done.returncode == 0, done.stderr
    # debug output is still there: botocore's request signing and the requests it sent
    assert "DEBUG botocore" in done.stderr
    assert "Sending http request" in done.stderr
    assert "'Authorization': b'AWS4-HMAC-SHA256 ***'" in done.stderr
    assert re.search(r"Signature:\s*\*\*\*", done.stderr)
    for where, text in {
        "stdout": done.stdout,
        "stderr": done.stderr,
        **reports_text(stack),
    }.items():
        for secret in stack.secrets:
            assert secret not in text, f"a credential leaked into {where}"
        assert not re.search(r"Credential=AKIA", text), where
        assert not re.search(r"Signature=(?!\*\*\*)", text), where
        assert not re.search(r"Signature:\s*[0-9a-f]{32}", text), where


def test_a_foreign_exception_in_a_report_is_redacted(demo_env, tmp_path, monkeypatch):
    """Not one of the project's errors: the report's traceback and ``evalue`` are redacted."""
    stack = demo_env
    monkeypatch.setenv("TEST_ENDPOINT", "http://me:hunter2-secret@host/x")  # not a *_URL
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
            "language_info": {"name": "python"},
        }
    )
    nb.cells = [
        nbformat.v4.new_code_cell("from lib import notebook\nnotebook.setup()"),
        nbformat.v4.new_code_cell(
            "import os\n"
            "raise RuntimeError('key ' + os.environ['KNACK_API_KEY']"
            " + ' at ' + os.environ['TEST_ENDPOINT'])"
        ),
    ]
    path = tmp_path / "foreign.ipynb"
    nbformat.write(nb, path)
    output = tmp_path / "out.ipynb"

    result = reports.run_notebook(str(path), app_name="demo", env="dev", output=str(output))

    assert not result.ok
    text = output.read_text()
    for leaked in (stack.knack_api_key, "hunter2-secret"):
        assert leaked not in text
        assert leaked not in result.error
    assert "RuntimeError: key *** at http://me:***@host/x" in result.error
    assert "Traceback" in text or "raise RuntimeError" in text  # still a traceback
