"""`pytest --nbval-lax notebooks/`: every notebook runs with its default parameters
against the demo stand-ins (moto S3 server and the emulators), started before the first
notebook's kernel so the kernel inherits their environment."""

import moto.backends

from lib.emulators.stack import Stack

# moto's server lists its package folder twice a request to find the service: once is enough
# (tests/conftest.py says more)
_MOTO_MODULES = tuple(moto.backends.list_of_moto_modules())
moto.backends.list_of_moto_modules = lambda: _MOTO_MODULES

_stack: Stack | None = None


def pytest_runtest_setup(item):
    global _stack
    if _stack is None:
        _stack = Stack().start()
        _stack.seed_demo()  # metadata and records in S3, as after `make demo`
        _stack.apply_env()


def pytest_unconfigure(config):
    if _stack is not None:
        _stack.stop()
