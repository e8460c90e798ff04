"""upload_metadata.ipynb end to end: papermill → kernel → Knack emulator → moto S3 server."""

from __future__ import annotations

import copy
import json

import nbformat
import pytest

from lib import reports
from lib.cli import main as cli
from lib.emulators.knack import load_fixture_app

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


def test_metadata_lands_in_s3_with_a_report(demo_env, capsys):
    stack = demo_env
    assert run() == 0
    out = capsys.readouterr().out
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
    # metadata comes from the public endpoint; one request, no retries
    assert [r.path for r in stack.knack.requests] == [f"/v1/applications/{APP_ID}"]


def test_no_credential_in_any_report_or_object(demo_env):
    stack = demo_env
    assert run() == 0
    stack.knack.faults.metadata_body = "<html>maintenance</html>"
    assert run() == 1  # a failed run's report too
    keys = stack.s3_keys()
    assert len(report_keys(stack)) == 2
    for key in keys:
        body = s3_text(stack, key)
        for secret in stack.secrets:
            assert secret not in body, f"a credential leaked into {key}"


def test_rerun_writes_nothing_and_schema_changes_are_reported(demo_env, capsys):
    stack = demo_env
    assert run() == 0
    assert run() == 0
    assert "unchanged: 1" in capsys.readouterr().out

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
        str(reports.notebook_path("upload_metadata")), out,
        parameters={"app_name": "demo", "env": "prod"}, progress_bar=False, kernel_name="python3",
    )
    assert s3_json(stack, f"demo-prod/{APP_ID}.json")["id"] == APP_ID
    assert "reports/demo-dev/upload_metadata/by-papermill.ipynb" in stack.s3_keys()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--app-name", "nope"], "unknown app 'nope'"),
        (["--env", "staging"], "env must be 'prod' or 'dev', not 'staging'"),
    ],
)
def test_bad_parameters_fail_with_one_clear_message(demo_env, capsys, args, message):
    stack = demo_env
    code = cli(["run", "upload_metadata", "--app-name", "demo", "--env", "dev", "-q", *args])
    assert code == 1
    err = capsys.readouterr().err
    assert message in err
    if "nope" in args:
        assert "known apps: data-tracker, demo" in err
    keys = stack.s3_keys()
    assert keys and all(k.startswith("reports/") for k in keys), keys  # nothing else written
    (report,) = keys
    text = s3_text(stack, report)
    assert message in text
    assert "Traceback" not in text  # one clear message, not a stack dump


BAD_PARAMS = {
    "unknown key": ("app_id: {prod: 5d79512148c4af00106d1507, dev: 5d79512148c4af00106d1507}\n"
                    "containers: {object_3: {modified: field_13}}\n",
                    "unknown key 'containers.object_3.modified'"),
    "missing key": ("containers: {}\n", "missing key 'app_id'"),
    "invalid yaml": ("app_id: {prod: [\n", "is not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_PARAMS))
def test_bad_params_file(demo_env, capsys, monkeypatch, tmp_path, case):
    text, message = BAD_PARAMS[case]
    params = tmp_path / "params"
    params.mkdir()
    (params / "demo.yaml").write_text(text)
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(params))
    assert run() == 1
    err = capsys.readouterr().err
    assert message in err and "demo.yaml" in err
    keys = demo_env.s3_keys()
    assert len(keys) == 1 and keys[0].startswith("reports/")
    assert message in s3_text(demo_env, keys[0])


@pytest.mark.parametrize(
    "body, message",
    [
        ("<html><body>Knack is down for maintenance</body></html>", "is not JSON"),
        ('{"app": {"id": "x"}}', "has no `application` object"),
    ],
)
def test_bad_knack_answers(demo_env, capsys, body, message):
    stack = demo_env
    stack.knack.faults.metadata_body = body
    assert run() == 1
    err = capsys.readouterr().err
    assert "KnackAPIError" in err and message in err
    keys = stack.s3_keys()
    assert len(keys) == 1 and keys[0].startswith("reports/")
    assert message in s3_text(stack, keys[0])


def test_knack_503s_are_retried(demo_env):
    stack = demo_env
    stack.knack.faults.fail_next = 2
    assert run() == 0
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


def test_report_kept_locally_when_s3_refuses_it(demo_env, monkeypatch, capsys, tmp_path):
    stack = demo_env
    monkeypatch.setenv("KNACK_SERVICES_BUCKET", "no-such-bucket")
    assert run() == 1
    err = capsys.readouterr().err
    assert "the bucket does not exist; create it or set KNACK_SERVICES_BUCKET" in err
    assert "report: reports/demo-dev/upload_metadata/" in err
    (local,) = (tmp_path / "reports").rglob("*.ipynb")
    assert "the bucket does not exist" in local.read_text()
    assert stack.s3_keys() == []  # nothing in S3


def test_a_corrupt_stored_metadata_object_is_replaced_and_said(demo_env, capsys):
    stack = demo_env
    stack.s3().put_object(Bucket=stack.bucket, Key=META_KEY, Body=b'{"application": tru')
    assert run() == 0
    assert s3_json(stack, META_KEY) == load_fixture_app()[0]["application"]
    (key,) = report_keys(stack)
    assert f"s3://{stack.bucket}/{META_KEY} is not JSON" in s3_text(stack, key)
    assert "replacing it with the metadata just fetched" in s3_text(stack, key)
