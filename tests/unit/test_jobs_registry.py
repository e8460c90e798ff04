"""The jobs' registry (lib/jobs/registry.py): every notebook is a registered job and every
registered job a notebook with the parameters it lists; unknown names fail listing the
known ones; destinations match params and their modules."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path

import pydantic
import pytest

from emulators.demo import JOBS as DEMO_JOBS
from lib import config, publish, reports
from lib.errors import ConfigError
from lib.header import meaning
from lib.jobs import registry

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_an_unknown_job_fails_listing_the_known_ones():
    with pytest.raises(ConfigError) as e:
        registry.get("upload_metadta")
    assert "no job named 'upload_metadta'" in str(e.value)
    assert f"(known: {', '.join(registry.names())})" in str(e.value)
    assert registry.find("upload_metadta") is None  # the header's look-up: no error


def test_an_unknown_destination_fails_listing_the_known_ones():
    with pytest.raises(
        ConfigError,
        match=r"no publisher for destination 'ftp' \(known: socrata, "
        r"agol, postgres, knack\)",
    ):
        registry.publisher("ftp")
    with pytest.raises(ConfigError, match="no publisher for destination 'ftp'"):
        publish.get_publisher("ftp")


def test_every_notebook_is_registered():
    assert sorted(registry.names()) == NOTEBOOKS


@pytest.mark.parametrize("job", registry.jobs(), ids=lambda job: job.name)
def test_every_registered_job_is_a_notebook_with_its_parameters(job):
    path = ROOT / "notebooks" / f"{job.name}.ipynb"
    assert path.is_file()
    assert reports.notebook_parameters(path) == set(job.parameters)
    assert set(registry.IDS) <= set(job.parameters)


@pytest.mark.parametrize("job", registry.jobs(), ids=lambda job: job.name)
def test_every_entry_point_is_a_function_its_notebook_calls(job):
    function = job.load()
    module, _, name = job.entry.partition(":")
    assert callable(function) and function.__name__ == name
    assert function.__module__.startswith(module)  # its module, or a package exporting it
    source = (ROOT / "notebooks" / f"{job.name}.ipynb").read_text()
    called = f'get_publisher(\\"{job.destination}\\")' if job.publishes else f"{function.__name__}("
    assert called in source


def test_destinations_are_the_container_settings_of_params():
    settings = set()
    for name, field in config.ContainerConfig.model_fields.items():
        kinds = typing.get_args(field.annotation) or (field.annotation,)
        if any(isinstance(k, type) and issubclass(k, pydantic.BaseModel) for k in kinds):
            settings.add(name)
    assert set(registry.destinations()) == settings
    for key, job in registry.destinations().items():
        assert publish.get_publisher(key) is job.load()
        assert job.takes_container and job.takes_date and not job.calls_knack


def test_a_publisher_the_registry_does_not_name_is_refused():
    def publish_elsewhere(**kwargs):  # pragma: no cover - never called
        return None

    with pytest.raises(ConfigError, match="the jobs' registry names lib.publish.socrata:publish"):
        publish.register("socrata")(publish_elsewhere)
    with pytest.raises(ConfigError, match="no publisher for destination 'ftp'"):
        publish.register("ftp")(publish_elsewhere)


def test_a_name_or_destination_is_registered_once():
    taken = registry.get("upload_metadata")
    with pytest.raises(ConfigError, match="registered already"):
        registry.register(taken)
    other = registry.Job("another", "x:y", registry.IDS, "", destination="socrata")
    with pytest.raises(ConfigError, match="has a publisher already"):
        registry.register(other)
    assert "another" not in registry.names()


def test_arguments_keep_the_given_order_and_only_the_jobs_parameters():
    given = {"app_name": "a", "env": "dev", "container": "c", "date": None}
    assert list(registry.get("knack_container_to_s3").arguments(**given)) == list(given)
    assert registry.get("upload_metadata").arguments(**given) == {"app_name": "a", "env": "dev"}
    assert "date" not in registry.get("backup_socrata").arguments(**given)


def test_the_header_and_the_demo_read_it():
    for job in registry.jobs():
        if job.takes_date:
            said = meaning("date", "auto", notebook=job.name)
            assert ("written to S3" in said) == job.publishes
    assert {name for name, _ in DEMO_JOBS} == set(registry.names())  # the demo runs them all


def test_reading_the_registry_imports_no_job():
    code = (
        "import sys; from lib.jobs import registry; from lib import header; "
        "registry.jobs(); print(sorted(m for m in sys.modules if m.startswith('lib.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(eval(done.stdout))  # noqa: S307 - our own printout
    assert loaded <= {
        "lib.jobs",
        "lib.jobs.registry",
        "lib.errors",
        "lib.redact",
        "lib.text",
        "lib.header",
        "lib.table",
        "lib.dates",  # the date parameter's rule (the header says what a date did): no job
    }, loaded
