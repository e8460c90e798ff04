"""The S3 doorway (lib/clients/s3.py): one rule says an object is missing, every read then
gives None; any other error becomes one StoreError that names the object and what to do."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from lib.clients.s3 import NOT_FOUND_CODES, Bucket, not_found
from lib.errors import MissingCredentialError, StoreError


def client_error(code: str, operation: str = "GetObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"the {code} message"}}, operation)


class Refusing:
    """A boto3 client whose every call raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return call


@pytest.mark.parametrize("code", ["NoSuchKey", "404", "NotFound"])
def test_a_missing_object_is_not_found(code):
    assert code in NOT_FOUND_CODES
    assert not_found(client_error(code))
    assert not_found(client_error(code, "HeadObject"))


@pytest.mark.parametrize("code", ["NoSuchBucket", "AccessDenied", "403", "500", "SlowDown", ""])
def test_anything_else_is_an_error_not_a_missing_object(code):
    assert not not_found(client_error(code))


def test_errors_that_are_no_answer_of_s3_are_not_missing_objects():
    assert not not_found(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert not not_found(NoCredentialsError())
    assert not not_found(KeyError("NoSuchKey"))
    assert not not_found(ClientError({}, "GetObject"))  # no Error in the answer


@pytest.mark.parametrize("code", sorted(NOT_FOUND_CODES))
def test_every_read_of_a_missing_object_gives_none(code):
    bucket = Bucket("b", client=Refusing(client_error(code)))
    assert bucket.open("k") is None
    assert bucket.get_body("k") is None
    assert bucket.get_json("k") is None
    assert bucket.head("k") is None
    assert bucket.etag("k") is None
    out = io.BytesIO()
    assert bucket.download("k", out) is False and out.getvalue() == b""


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            client_error("NoSuchBucket"),
            "cannot read s3://b/k: the bucket does not exist; create "
            "it or set KNACK_SERVICES_BUCKET",
        ),
        (
            client_error("AccessDenied"),
            "cannot read s3://b/k: access denied (AccessDenied); check the AWS credentials",
        ),
        (client_error("SlowDown"), "cannot read s3://b/k: An error occurred (SlowDown)"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            "cannot read s3://b/k: Could not connect",
        ),
    ],
)
def test_any_other_error_is_one_store_error_naming_the_object(error, expected):
    bucket = Bucket("b", client=Refusing(error))
    for read in (bucket.open, bucket.get_body, bucket.get_json, bucket.head, bucket.etag):
        with pytest.raises(StoreError) as info:
            read("k")
        assert str(info.value).startswith(expected), str(info.value)
    with pytest.raises(StoreError, match=r"^cannot write s3://b/k: "):
        bucket.put_body("k", b"{}", "application/json")
    with pytest.raises(StoreError, match=r"^cannot list s3://b/p/: "):
        bucket.list_objects("p/")
    with pytest.raises(StoreError, match=r"^cannot delete in s3://b/k: "):
        bucket.delete_keys(["k"])


def test_missing_credentials_name_the_variables():
    bucket = Bucket("b", client=Refusing(NoCredentialsError()))
    with pytest.raises(MissingCredentialError, match="AWS_ACCESS_KEY_ID") as info:
        bucket.get_body("k")
    assert "cannot read s3://b/k" in str(info.value)
