"""A 429 from Socrata or ArcGIS is retried, not a failed run: the publishers in-process
against the emulators' fault switch (``status`` for the next ``fail_next`` requests; for
ArcGIS also as an HTTP 200 error answer, ``http_status``)."""

from __future__ import annotations

import pytest

from emulators.stack import DEMO_AGOL_SERVICE, DEMO_DATASET
from lib import sync
from lib.metadata import upload_metadata
from lib.publish import get_publisher


@pytest.fixture
def demo(demo_env):
    upload_metadata(app_name="demo", env="dev")
    assert sync.sync_container(app_name="demo", container="object_3", env="dev").ok
    return demo_env


def test_socrata_retries_a_429_after_its_retry_after(demo):
    demo.socrata.faults.update({"status": 429, "fail_next": 2})  # answered with Retry-After: 1
    result = get_publisher("socrata")(app_name="demo", container="object_3", env="dev")
    assert result.ok, result.errors
    assert result.retries == 2
    assert len(demo.socrata.rows(DEMO_DATASET)) == 25
    log = demo.socrata.requests
    assert [r.status for r in log[:3]] == [429, 429, 200]
    # Retry-After: 1 honoured each time (the policy waits at least what the server said)
    assert log[1].time - log[0].time >= 0.9 and log[2].time - log[1].time >= 0.9


def test_arcgis_retries_a_429_error_code(demo):
    # as ArcGIS REST words most errors: HTTP 200 with {"error": {"code": 429, ...}}
    demo.arcgis.faults.update({"status": 429, "http_status": 200, "fail_next": 3})
    result = get_publisher("agol")(app_name="demo", container="object_3", env="dev")
    assert result.ok, result.errors
    assert result.retries >= 1
    assert [r.error_code for r in demo.arcgis.requests].count(429) == 3
    assert len(demo.arcgis.features(DEMO_AGOL_SERVICE, 0)) == result.added > 0


def test_arcgis_retries_a_http_429_the_library_gave_up_on(demo):
    # arcgis retries an HTTP 429 itself (12 requests for a login); more reach the policy
    demo.arcgis.faults.update({"status": 429, "fail_next": 20})
    result = get_publisher("agol")(app_name="demo", container="object_3", env="dev")
    assert result.ok, result.errors
    assert result.retries >= 1
    assert [r.status for r in demo.arcgis.requests].count(429) == 20
    assert len(demo.arcgis.features(DEMO_AGOL_SERVICE, 0)) == result.added > 0
