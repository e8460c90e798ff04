"""knack_container_to_s3.ipynb end to end with S3 failing: the kernel reaches moto through
an S3 fault proxy (emulators/s3_faults.py) answering S3's own 500 InternalError. An outage
that outlasts botocore's retries (minutes of backoff) is a case of
benchmarks/fault_matrix.py, not of the suite."""

from __future__ import annotations

import pytest
from signals_app import N

from emulators.s3_faults import S3FaultProxy


@pytest.fixture
def proxy(signals, monkeypatch):
    with S3FaultProxy(signals.stack.s3_url) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)  # the product, its kernels included
        yield p


def test_internal_error_every_fourth_request_is_retried_to_completion(signals, proxy):
    # 500, not 503 SlowDown: botocore's adaptive mode answers throttling by slowing every
    # request of the client (minutes for this run), which benchmarks/fault_matrix.py shows
    proxy.faults.status, proxy.faults.fail_every = 500, 4
    result = signals.run()
    assert result.ok, result.error
    assert result.summary["written"] == N and proxy.faults.failed > N // 4
    signals.assert_s3_equals_knack()


def test_the_proxy_passes_s3_through_and_takes_faults_over_http(demo_env):
    import boto3
    import requests

    with S3FaultProxy(demo_env.s3_url) as proxy:
        s3 = boto3.client(
            "s3",
            endpoint_url=proxy.url,
            region_name="us-east-1",
            config=boto3.session.Config(retries={"max_attempts": 1}),
        )
        s3.put_object(Bucket=demo_env.bucket, Key="k.json", Body=b"{}")
        assert s3.get_object(Bucket=demo_env.bucket, Key="k.json")["Body"].read() == b"{}"
        answer = requests.post(
            f"{proxy.url}/_emulator/faults", json={"methods": ["GET"], "fail_after": 0}, timeout=10
        )
        assert answer.status_code == 200 and answer.json()["methods"] == ["GET"]
        with pytest.raises(s3.exceptions.ClientError, match="SlowDown"):
            s3.get_object(Bucket=demo_env.bucket, Key="k.json")
        s3.put_object(Bucket=demo_env.bucket, Key="k.json", Body=b"[]")  # PUTs still pass
        assert (
            requests.post(f"{proxy.url}/_emulator/faults", json={"nope": 1}, timeout=10).status_code
            == 400
        )


def test_the_proxy_waits_its_delay_before_each_request(demo_env, monkeypatch):
    import types

    import boto3
    import requests

    from emulators import s3_faults

    waits: list[float] = []  # the proxy's sleeps, recorded instead of slept
    monkeypatch.setattr(s3_faults, "time", types.SimpleNamespace(sleep=waits.append))
    with S3FaultProxy(demo_env.s3_url) as proxy:
        faults = f"{proxy.url}/_emulator/faults"
        assert requests.post(faults, json={"delay": 0.02}, timeout=10).json()["delay"] == 0.02
        for bad in (-1, "1", True):
            assert requests.post(faults, json={"delay": bad}, timeout=10).status_code == 400
        s3 = boto3.client(
            "s3",
            endpoint_url=proxy.url,
            region_name="us-east-1",
            config=boto3.session.Config(retries={"max_attempts": 1}),
        )
        s3.put_object(Bucket=demo_env.bucket, Key="k.json", Body=b"{}")
        assert s3.get_object(Bucket=demo_env.bucket, Key="k.json")["Body"].read() == b"{}"
    assert waits == [0.02, 0.02]  # one per S3 request, none for the control route
