"""Airflow at scale, the parts that need no Airflow run: the pools computed from params, the
clients' pace, the schedule tick of a run, and ``upload_metadata``'s once-per-tick decision
against a real S3 (moto's server). ``test_dags_test_e2e.py`` shows the same with real runs.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.providers.papermill.operators.papermill import PapermillOperator

try:  # Airflow 3
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowSkipException
except ImportError:  # Airflow 2
    from airflow.exceptions import AirflowSkipException
    from airflow.models import DagBag

from emulators.stack import Stack
from lib import airflow_pools, cli, config, metadata
from lib.errors import ConfigError
from lib.state import RunStore
from lib.sync import container as sync

ROOT = Path(__file__).resolve().parent.parent
DAGS_DIR = ROOT / "dags"
UTC = dt.UTC
APP_ID = "0123456789abcdef01234567"


def params(tmp_path: Path, name: str, app_keys: str = "") -> Path:
    (tmp_path / f"{name}.yaml").write_text(
        f"app_id: {{dev: {APP_ID}}}\n{app_keys}containers:\n  object_1: {{}}\n  view_2:\n"
        "    scene: scene_1\n"
    )
    return tmp_path


def test_one_pool_per_app_sized_from_params(tmp_path, monkeypatch, capsys):
    shutil.copy(ROOT / "params" / "demo.yaml", tmp_path / "demo.yaml")
    params(tmp_path, "busy-app", "requests_per_second: 9\nconcurrent_knack_tasks: 3\n")
    found = airflow_pools.pools(tmp_path)
    assert {name: pool["slots"] for name, pool in found.items()} == {
        "knack_demo": 1,  # the default
        "knack_busy-app": 3,
    }
    assert all(pool["include_deferred"] is False for pool in found.values())
    assert (
        "3 at once, each pacing at 3 of the app's 9 requests/s"
        in found["knack_busy-app"]["description"]
    )
    # `knack-nb airflow-pools` prints them (or writes -o FILE) as `airflow pools import` reads
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(tmp_path))
    assert cli.main(["airflow-pools"]) == 0
    assert json.loads(capsys.readouterr().out) == found
    assert cli.main(["airflow-pools", "-o", str(tmp_path / "pools.json")]) == 0
    assert "airflow pools import" in capsys.readouterr().out
    assert json.loads((tmp_path / "pools.json").read_text()) == found


@pytest.mark.parametrize("value", ["0", "11", "1.5"])
def test_concurrent_knack_tasks_out_of_range_fails_naming_the_key(tmp_path, value):
    params(tmp_path, "bad", f"concurrent_knack_tasks: {value}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'concurrent_knack_tasks'"):
        config.load_app("bad", tmp_path)


class _Built(Exception):
    """Raised by the stand-in KnackClient: the test needs only its arguments."""


@pytest.mark.parametrize(
    "app_keys, pace",
    [("", 8.0), ("requests_per_second: 10\nconcurrent_knack_tasks: 4\n", 2.5)],
)
def test_each_client_paces_at_its_share_of_the_apps_rate(tmp_path, monkeypatch, app_keys, pace):
    """Both places that build a Knack client (the metadata upload and the container sync)
    pace it at requests_per_second / concurrent_knack_tasks: with the defaults, 8/s as
    before; with 4 tasks at once, 2.5/s each, 10/s for the app."""
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(params(tmp_path, "app", app_keys)))
    built = []

    def client(**kwargs):
        built.append(kwargs)
        raise _Built

    monkeypatch.setattr(metadata, "KnackClient", client)
    monkeypatch.setattr(sync, "KnackClient", client)
    with pytest.raises(_Built):
        metadata.upload_metadata(app_name="app", env="dev")
    with pytest.raises(_Built):
        sync.sync_container(app_name="app", container="object_1", env="dev")
    assert built == [{"app_id": APP_ID, "requests_per_second": pace}] * 2
    assert config.load_app("app", tmp_path).client_requests_per_second == pace


def dags_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("knack_dags_scale", DAGS_DIR / "knack_dags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_schedule_tick_of_a_run():
    tick = dags_module().schedule_tick
    # a scheduled run (cron, Airflow 3): due at its logical date, its data interval's end
    scheduled = SimpleNamespace(
        data_interval_end=at("2026-11-02T10:00"),
        logical_date=at("2026-11-02T10:00"),
        run_after=at("2026-11-02T10:00"),
        start_date=at("2026-11-02T10:03"),
    )
    assert tick(scheduled) == at("2026-11-02T10:00")
    # data intervals (Airflow 2, create_cron_data_intervals): due at the interval's end
    interval = SimpleNamespace(
        data_interval_end=at("2026-11-02T10:00"),
        logical_date=at("2026-11-02T09:00"),
        run_after=at("2026-11-02T10:00"),
    )
    assert tick(interval) == at("2026-11-02T10:00")
    # `airflow dags test DAG DATE`: the date given, whatever the real now (run_after)
    dags_test = SimpleNamespace(
        data_interval_end=at("2026-11-02T08:00"),
        logical_date=at("2026-11-02T08:00"),
        run_after=at("2027-03-15T12:00"),
    )
    assert tick(dags_test) == at("2026-11-02T08:00")
    # triggered with no logical date: when it was triggered
    manual = SimpleNamespace(
        data_interval_end=None, logical_date=None, run_after=at("2026-11-02T10:17")
    )
    assert tick(manual) == at("2026-11-02T10:17")


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """moto's S3 (the stack's), a params folder with one app, the demo's env for both."""
    with Stack() as stack:
        for key, value in stack.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("KNACK_PARAMS_DIR", str(params(tmp_path, "tick-app")))
        monkeypatch.setenv("KNACK_ENV", "dev")
        yield stack


def test_upload_metadata_runs_its_notebook_once_per_tick(s3, monkeypatch):
    """The real tasks of two container DAGs of one app built from params, with the notebook
    replaced by a recorder: it runs when no fetch is recorded, or one that started before
    the run's tick (and then records its own start); it is skipped when the last fetch, by
    either DAG, started at or after the tick; a failed notebook records nothing."""
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    task = bag.dags["knack_tick-app_object_1"].get_task("upload_metadata")
    other = bag.dags["knack_tick-app_view_2"].get_task("upload_metadata")
    store = RunStore(app_name="tick-app", env="dev")
    notebooks = []

    def notebook(self, context):
        notebooks.append(context["dag_run"].data_interval_end)
        if context.get("fail"):
            raise RuntimeError("the notebook failed")
        return "report"

    monkeypatch.setattr(PapermillOperator, "execute", notebook)

    def run(tick: dt.datetime, task=task, **extra):
        context = {
            "dag_run": SimpleNamespace(data_interval_end=tick, logical_date=tick, run_after=tick),
            **extra,
        }
        return task.execute(context)

    now = dt.datetime.now(UTC)
    tick = (now - dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    assert store.metadata_fetched(APP_ID) is None
    assert run(tick) == "report"  # nothing recorded: fetch
    fetched = store.metadata_fetched(APP_ID)
    assert fetched is not None and now <= fetched  # when this fetch started
    with pytest.raises(AirflowSkipException, match="at or after this run's tick"):
        run(tick, other)  # another container DAG of the app at the same tick
    with pytest.raises(AirflowSkipException):
        run(tick)  # a retry, or a run of the same tick cleared and run again
    with pytest.raises(AirflowSkipException):
        run(fetched, other)  # a tick at the very start of the last fetch: still fresh
    later = fetched + dt.timedelta(hours=1)  # the next tick: stale, fetch again
    with pytest.raises(RuntimeError):
        run(later, fail=True)
    assert store.metadata_fetched(APP_ID) == fetched  # a failed fetch records nothing
    run(later, other)
    assert notebooks == [tick, later, later]
    assert store.metadata_fetched(APP_ID) > fetched
    # a record of another app id (params changed) or one that is not JSON: fetch
    store.put_json(store.metadata_fetch_key(), {"app_id": "f" * 24, "started": later.isoformat()})
    assert store.metadata_fetched(APP_ID) is None
    s3.s3().put_object(Bucket=s3.bucket, Key=store.metadata_fetch_key(), Body=b"not json")
    assert store.metadata_fetched(APP_ID) is None
    run(tick)
    assert len(notebooks) == 4 and store.metadata_fetched(APP_ID) is not None
    assert store.metadata_fetch_key() == "_state/tick-app-dev/upload_metadata.json"
