"""lib/redact.py: credentials out of messages, log lines and tracebacks."""

from __future__ import annotations

import io
import logging

import pytest

from lib.errors import KnackAPIError, MissingCredentialError
from lib.redact import CREDENTIAL_VARIABLES, RedactFilter, install_filter, redact

KEY = "knack-0123456789abcdef01234567"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    """Only the credentials a test sets."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KNACK_API_URL", raising=False)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "check KNACK_API_URL (http://user:PASSWORD@host:8080/v1)",
            "check KNACK_API_URL (http://user:***@host:8080/v1)",
        ),
        ("https://u:p%40ss@api.knack.com", "https://u:***@api.knack.com"),
        ("https://u:p@ss@api.knack.com/v1", "https://u:***@api.knack.com/v1"),
        (
            "postgresql+psycopg://airflow:pw@db/airflow",
            "postgresql+psycopg://airflow:***@db/airflow",
        ),
        ("'http://a:b@h' and 'c@d'", "'http://a:***@h' and 'c@d'"),
    ],
)
def test_url_userinfo_passwords(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://api.knack.com/v1/applications/5d79",
        "http://127.0.0.1:8080/v1 and mail me at someone@example.com",
        "http://host:8080/path?x=a@b",
        "the demo dataset leaves out Signature: not in the dataset",  # a field's label
        "AGOL_PASSWORD is not set: the login needs it. Set it in the environment",
        "Authorization failed",
        "",
    ],
)
def test_ordinary_text_is_unchanged(text):
    assert redact(text) == text


def test_credential_variables_are_masked_wherever_they_appear(monkeypatch):
    monkeypatch.setenv("KNACK_API_KEY", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AGOL_PASSWORD", "short")  # too short to tell from a word: kept
    text = f"key {KEY}, {SECRET!r}, encoded {SECRET.replace('/', '%2F').replace('+', '%2B')}"
    assert redact(text) == "key ***, '***', encoded ***"
    assert redact("a short story") == "a short story"


def test_each_apps_own_knack_key_is_masked(monkeypatch):
    assert redact(f"key {KEY}") == f"key {KEY}"  # before: not a credential variable
    monkeypatch.setenv("KNACK_API_KEY_SIGNS_MARKINGS", KEY)
    assert redact(f"key {KEY}") == "key ***"


def test_the_environment_is_read_at_each_call(monkeypatch):
    assert redact(KEY) == KEY
    monkeypatch.setenv("KNACK_API_KEY", KEY)
    assert redact(KEY) == "***"


def test_the_password_of_a_url_variable_is_masked_anywhere(monkeypatch):
    monkeypatch.setenv("KNACK_API_URL", "http://user:s3cr3t-pw-xyz@host/v1")
    assert redact("basic auth with s3cr3t-pw-xyz") == "basic auth with ***"


def test_botocore_signing_material():
    request = (
        "<AWSPreparedRequest method=PUT, url=http://127.0.0.1:5000/b/k, headers={"
        "'X-Amz-Date': b'20261201T120000Z', 'X-Amz-Security-Token': b'FwoGZXIvYXdzEJr//token==', "
        "'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAABCDEF0123456789/20261201/"
        "us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=0a1b2c3d4e5f'}>"
    )
    out = redact(request)
    for leaked in ("AKIAABCDEF", "0a1b2c3d4e5f", "FwoGZXIv"):
        assert leaked not in out
    assert "'X-Amz-Date': b'20261201T120000Z'" in out  # not a credential
    assert "'Authorization': b'AWS4-HMAC-SHA256 ***'" in out
    sig = "9f" * 32
    assert redact(f"Signature:\n{sig}") == "Signature:\n***"
    canonical = "host:127.0.0.1\nx-amz-security-token:FwoGZXIvYXdzEJr\n\nhost;x-amz-date"
    assert "FwoGZXIv" not in redact(canonical)


def test_presigned_urls_headers_tokens_and_json():
    url = (
        "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAXYZ%2F20261201%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Signature=abcdef0123&X-Amz-Security-Token=tok123"
    )
    out = redact(url)
    assert "AKIAXYZ" not in out and "abcdef0123" not in out and "tok123" not in out
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in out
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: Basic ***"
    assert redact("Authorization: Bearer eyJhbGciOi.x.y") == "Authorization: Bearer ***"
    assert redact('{"X-Knack-REST-API-KEY": "abc123"}') == '{"X-Knack-REST-API-KEY": "***"}'
    assert redact("GET /sharing/rest/portals/self?f=json&token=T0KEN-1") == (
        "GET /sharing/rest/portals/self?f=json&token=***"
    )
    assert redact('{"token": "T0KEN-1", "expires": 1}') == '{"token": "***", "expires": 1}'
    assert redact("{'password': 'hunter2', 'username': 'u'}") == (
        "{'password': '***', 'username': 'u'}"
    )


def test_idempotent(monkeypatch):
    monkeypatch.setenv("KNACK_API_KEY", KEY)
    text = f"http://u:p@h {KEY} Credential=AKIA1/x, Signature=ab Authorization: Basic xx"
    once = redact(text)
    assert redact(once) == once


def test_project_errors_are_redacted_at_construction(monkeypatch):
    monkeypatch.setenv("KNACK_API_KEY", KEY)
    e = KnackAPIError(f"check KNACK_API_URL (http://user:pw@host/v1), key {KEY}")
    assert str(e) == "check KNACK_API_URL (http://user:***@host/v1), key ***"
    assert e.args == (str(e),)
    assert "AGOL_PASSWORD" in str(MissingCredentialError("AGOL_PASSWORD", purpose="login"))


def test_the_log_filter_redacts_messages_args_and_tracebacks(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    install_filter(handler)
    install_filter(handler)  # once is enough
    assert sum(isinstance(f, RedactFilter) for f in handler.filters) == 1
    log = logging.getLogger("botocore.test_redact")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    try:
        log.debug("Sending http request: %s", {"Authorization": f"Credential=AKIA1/x {SECRET}"})
        try:
            raise RuntimeError(f"cannot reach http://me:hunter2-pw@host ({SECRET})")
        except RuntimeError:
            log.exception("failed")
        log.info("stack", stack_info=True, extra={"x": SECRET})
    finally:
        log.removeHandler(handler)
        log.propagate = True
    out = stream.getvalue()
    assert SECRET not in out and "hunter2-pw" not in out and "AKIA1" not in out
    assert "Sending http request" in out and "RuntimeError: cannot reach http://me:***@host" in out


def test_a_knack_client_shown_in_a_cell_hides_the_url_password():
    from lib.clients.knack import KnackClient

    client = KnackClient(app_id="a" * 24, api_url="http://user:PASSWORD123@host/v1", api_key="k")
    assert "PASSWORD123" not in repr(client) and "user:***@host" in repr(client)
