"""pytest configuration shared by tests/ and the notebook checks.

Fake AWS credentials and an endpoint that answers nothing are set before any test runs,
so no test can ever reach real AWS (or a cloud metadata service); the fixtures then point
the product at the local stand-ins.

`pytest --nbval-lax notebooks/`: every notebook runs with its default parameters against the
demo stand-ins (moto S3 server and the emulators), started before the first notebook's
kernel so the kernel inherits their environment. That set-up lives here, not in
``notebooks/``, which holds only the notebooks people open.
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


_stack = None  # the demo stand-ins of the notebook checks, started for the first one


def pytest_runtest_setup(item):
    global _stack
    if _stack is None and item.path.suffix == ".ipynb":
        import moto.backends

        from emulators.stack import Stack

        # moto's server lists its package folder twice a request to find the service: once
        # is enough (tests/conftest.py says more)
        modules = tuple(moto.backends.list_of_moto_modules())
        moto.backends.list_of_moto_modules = lambda: modules
        _stack = Stack().start()
        _stack.seed_demo(publish=True)  # S3, Socrata and ArcGIS as after `make demo`
        _stack.apply_env()


def pytest_unconfigure(config):
    if _stack is not None:
        _stack.stop()
