"""upload_metadata.ipynb end to end: papermill → kernel → Knack emulator → moto S3 server.

Each behaviour the report or ``knack-nb run`` shows has a papermill run: the first upload,
a failed run (no secret in either report), a schema change, plain papermill, a bad
parameter, and the report kept on disk when S3 refuses it. Their variants (other bad
parameters and params files, other bad answers from Knack, retried 503s, an unchanged
rerun, a missing bucket, a corrupt stored object) call ``metadata.upload_metadata``, the
notebook's one call, in process: the same error and message, nothing written.
"""

from __future__ import annotations

import copy
import json
import logging

import nbformat
import pytest

from emulators.knack import load_fixture_app
from lib import reports
from lib.cli import main as cli
from lib.errors import ConfigError, KnackAPIError, StoreError
from lib.metadata import upload_metadata

APP_ID = "5d79512148c4af00106d1507"
META_KEY = f"demo-dev/{APP_ID}.json"


def s3_json(stack, key):
    return json.loads(stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def s3_text(stack, key):
    return stack.s3().get_object(Bucket=stack.bucket, Key=key)["Body"].read().decode()


def report_keys(stack, notebook="upload_metadata"):
    return sorted(stack.s3_keys(f"reports/demo-dev/{notebook}/"))


def run(*args: str) -> int:
    return cli(["run", "upload_metadata", "--app-name", "demo", "--env", "dev", "-q", *args])


def upload():
    """The notebook's call, in process."""
    return upload_metadata(app_name="demo", env="dev")


def test_metadata_lands_in_s3_with_a_report_and_no_credential_in_any(demo_env, capsys):
    """A first upload, then a failed one (Knack answers HTML): what each report says, and no
    credential in either report or the object. (Also test_cli_required_params' case of a
    notebook without a ``container`` parameter run by ``knack-nb run`` without -c.)"""
    stack = demo_env
    assert run() == 0
    out = capsys.readouterr().out
    assert "upload_metadata: ok" in out
    # the S3 object is exactly what the emulator serves
    assert s3_json(stack, META_KEY) == load_fixture_app()[0]["application"]
    (report,) = report_keys(stack)
    assert report.endswith("_app.ipynb")
    assert f"report: s3://{stack.bucket}/{report}" in out
    assert "written: 1" in out
    nb = nbformat.reads(s3_text(stack, report), as_version=4)
    summary = reports.read_summary(nb)
    assert summary["written"] == 1 and summary["objects"] == 7 and summary["views"] == 9
    assert summary["app_id"] == APP_ID
    text = s3_text(stack, report)
    assert "all_fields_test" in text  # the objects table is in the report
    assert "first upload" in text
    assert f"wrote s3://{stack.bucket}/{META_KEY}" in text  # the log is in the report
    # metadata comes from the public endpoint; one request, no retries
    assert [r.path for r in stack.knack.requests] == [f"/v1/applications/{APP_ID}"]

    # a failed run (test_bad_knack_answers' first case): its report only, the message on
    # stderr and in the report, no credential anywhere
    before = set(stack.s3_keys())
    stack.knack.faults.metadata_body = "<html><body>Knack is down for maintenance</body></html>"
    assert run() == 1
    err = capsys.readouterr().err
    assert "KnackAPIError" in err and "is not JSON" in err
    (failed,) = set(stack.s3_keys()) - before
    assert failed.startswith("reports/")  # nothing else written
    assert "is not JSON" in s3_text(stack, failed)
    keys = stack.s3_keys()
    assert len(report_keys(stack)) == 2
    for key in keys:
        body = s3_text(stack, key)
        for secret in stack.secrets:
            assert secret not in body, f"a credential leaked into {key}"


def test_rerun_writes_nothing_and_schema_changes_are_reported(demo_env, capsys):
    stack = demo_env
    assert upload().summary()["written"] == 1
    assert upload().summary()["unchanged"] == 1  # what `knack-nb run` prints as unchanged: 1

    metadata, records = load_fixture_app()
    changed = copy.deepcopy(metadata)
    obj3 = next(o for o in changed["application"]["objects"] if o["key"] == "object_3")
    obj3["fields"][2]["name"] = "Multiple Choice (renamed)"
    obj3["fields"].append({"key": "field_500", "name": "Added", "type": "short_text"})
    stack.knack.add_app(changed, records)
    assert run() == 0
    assert s3_json(stack, META_KEY) == changed["application"]
    last = report_keys(stack)[-1]
    summary = reports.read_summary(nbformat.reads(s3_text(stack, last), as_version=4))
    assert summary["written"] == 1
    assert summary["schema_changes"] == 2
    assert summary["needs_full_run"] == ["object_3", "view_6", "view_12", "view_18"]
    text = s3_text(stack, last)
    assert "need a full run" in text
    assert "Multiple Choice (renamed)" in text and "field_500" in text


def test_plain_papermill_works(demo_env, tmp_path):
    import papermill as pm

    stack = demo_env
    out = f"s3://{stack.bucket}/reports/demo-dev/upload_metadata/by-papermill.ipynb"
    pm.execute_notebook(
        str(reports.notebook_path("upload_metadata")),
        out,
        parameters={"app_name": "demo", "env": "prod"},
        progress_bar=False,
        kernel_name="python3",
    )
    assert s3_json(stack, f"demo-prod/{APP_ID}.json")["id"] == APP_ID
    assert "reports/demo-dev/upload_metadata/by-papermill.ipynb" in stack.s3_keys()


@pytest.mark.parametrize(
    "args, message",
    [
        (["upload_metadata", "-a", "nope", "-e", "dev"], "unknown app 'nope'"),
        (["upload_metadata", "-a", "demo", "-e", "qa"], "env must be 'prod' or 'dev', not 'qa'"),
        (
            ["knack_container_to_s3", "-a", "demo", "-e", "dev", "-c", "object_999"],
            "container 'object_999' is not configured for app 'demo'",
        ),
    ],
)
def test_knack_nb_run_refuses_a_bad_app_env_or_container_before_a_kernel(
    demo_env, capsys, monkeypatch, args, message
):
    """knack-nb run checks what it can before starting a kernel: exit 2, one line naming
    what is wrong and what to do, no kernel, no report (before: exit 1 after ~3 s of kernel
    and a failed report under nope-dev/)."""
    started = []
    monkeypatch.setattr(reports.run, "_execute", lambda *a, **k: started.append(a))
    assert cli(["run", *args, "-q"]) == 2
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert message in line and "(nothing ran, no report)" in line
    assert started == [] and demo_env.s3_keys() == []


def test_a_bad_parameter_fails_the_report_with_one_clear_message(demo_env):
    """Through papermill (what Airflow runs): the ConfigError of the notebook's one call
    fails the run with one line in the report; nothing else written."""
    stack = demo_env
    result = reports.run_notebook("upload_metadata", app_name="nope", env="dev")
    message = "unknown app 'nope'"
    assert not result.ok and message in result.error
    assert "known apps: data-tracker, demo" in result.error
    keys = stack.s3_keys()
    assert keys and all(k.startswith("reports/") for k in keys), keys  # nothing else written
    (report,) = keys
    text = s3_text(stack, report)
    assert message in text
    assert "Traceback" not in text  # one clear message, not a stack dump


@pytest.mark.parametrize(
    "app_name, env, message",
    [
        ("nope", "dev", "unknown app 'nope'"),
        ("demo", "staging", "env must be 'prod' or 'dev', not 'staging'"),
    ],
)
def test_bad_parameters_fail_with_one_clear_message(demo_env, app_name, env, message):
    stack = demo_env
    with pytest.raises(ConfigError) as info:
        upload_metadata(app_name=app_name, env=env)
    assert message in str(info.value) and "\n" not in str(info.value)
    if app_name == "nope":
        assert "known apps: data-tracker, demo" in str(info.value)
    assert stack.s3_keys() == []  # nothing written


BAD_PARAMS = {
    "unknown key": (
        "app_id: {prod: 5d79512148c4af00106d1507, dev: 5d79512148c4af00106d1507}\n"
        "containers: {object_3: {modified: field_13}}\n",
        "unknown key 'containers.object_3.modified'",
    ),
    "missing key": ("containers: {}\n", "missing key 'app_id'"),
    "invalid yaml": ("app_id: {prod: [\n", "is not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_PARAMS))
def test_bad_params_file(demo_env, monkeypatch, tmp_path, case):
    text, message = BAD_PARAMS[case]
    params = tmp_path / "params"
    params.mkdir()
    (params / "demo.yaml").write_text(text)
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(params))
    with pytest.raises(ConfigError) as info:  # its report: test_a_bad_parameter_fails_...
        upload()
    assert message in str(info.value) and "demo.yaml" in str(info.value)
    assert demo_env.s3_keys() == []  # nothing written


def test_a_params_file_too_deep_is_one_line_in_the_cli_and_the_report(
    demo_env, monkeypatch, tmp_path, capsys
):
    """Through papermill: values nested 5,000 deep (a RecursionError before) fail the run with
    one ConfigError line naming the file, on stderr and in the report; nothing written."""
    stack = demo_env
    params = tmp_path / "params"
    params.mkdir()
    (params / "demo.yaml").write_text(
        f"app_id: {{dev: {APP_ID}}}\ncontainers: {{}}\nx: " + "[" * 5000 + "]" * 5000 + "\n"
    )
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(params))
    assert run() == 2  # refused before a kernel starts: nothing written
    (line,) = capsys.readouterr().err.splitlines()
    refused = f"knack-nb run upload_metadata: {params / 'demo.yaml'}: "
    assert line.startswith(refused + "values nested deeper than 32 levels"), line
    assert len(line) < 300 and stack.s3_keys() == []
    result = reports.run_notebook("upload_metadata", app_name="demo", env="dev")  # papermill
    assert not result.ok and "values nested deeper than 32 levels" in result.error
    (report,) = stack.s3_keys()
    nb = nbformat.reads(s3_text(stack, report), as_version=4)
    (error,) = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert error.ename == "ConfigError" and "\n" not in error.evalue
    assert error.evalue.startswith(f"{params / 'demo.yaml'}: values nested deeper")
    assert "Traceback" not in s3_text(stack, report)


@pytest.mark.parametrize(
    "body, message",
    [
        ("<html><body>Knack is down for maintenance</body></html>", "is not JSON"),
        ('{"app": {"id": "x"}}', "has no `application` object"),
    ],
)
def test_bad_knack_answers(demo_env, body, message):
    stack = demo_env
    stack.knack.faults.metadata_body = body
    with pytest.raises(KnackAPIError, match=message):  # a failed run's report: the first test
        upload()
    assert stack.s3_keys() == []  # nothing written


def test_knack_503s_are_retried(demo_env):
    stack = demo_env
    stack.knack.faults.fail_next = 2
    assert upload().written
    assert [r.status for r in stack.knack.requests] == [503, 503, 200]


def test_missing_aws_credentials_are_named(demo_env, monkeypatch, capsys, tmp_path):
    stack = demo_env
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert run() == 1
    err = capsys.readouterr().err
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set" in err
    # S3 refused the report too: it is kept on disk, and says what was wrong
    assert "report: reports/demo-dev/upload_metadata/" in err
    (local,) = (tmp_path / "reports").rglob("*.ipynb")
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set" in local.read_text()
    assert stack.s3_keys() == []  # nothing in S3


def test_a_missing_bucket_is_named(demo_env, monkeypatch):
    """S3 refusing the report keeps it on disk: test_missing_aws_credentials_are_named."""
    stack = demo_env
    monkeypatch.setenv("KNACK_SERVICES_BUCKET", "no-such-bucket")
    with pytest.raises(
        StoreError, match="the bucket does not exist; create it or set KNACK_SERVICES_BUCKET"
    ):
        upload()
    assert stack.s3_keys() == []  # nothing in S3


def test_a_corrupt_stored_metadata_object_is_replaced_and_said(demo_env, caplog):
    stack = demo_env
    stack.s3().put_object(Bucket=stack.bucket, Key=META_KEY, Body=b'{"application": tru')
    with caplog.at_level(logging.INFO, logger="lib"):  # the log is the report's (first test)
        assert upload().written
    assert s3_json(stack, META_KEY) == load_fixture_app()[0]["application"]
    assert f"s3://{stack.bucket}/{META_KEY} is not JSON" in caplog.text
    assert "replacing it with the metadata just fetched" in caplog.text
