"""pytest configuration shared by tests/ and the notebook checks.

Fake AWS credentials and an endpoint that answers nothing are set before any test runs,
so no test can ever reach real AWS (or a cloud metadata service); the fixtures then point
the product at the local stand-ins.
"""

import os

SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # discard port: nothing listens
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_CONFIG_FILE": os.devnull,
    "KNACK_API_URL": "http://127.0.0.1:9/v1",
}


def pytest_configure(config):
    os.environ.update(SAFE_ENV)
    for name in ("KNACK_API_KEY", "KNACK_PARAMS_DIR", "KNACK_SERVICES_BUCKET"):
        os.environ.pop(name, None)
