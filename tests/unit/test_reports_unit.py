import datetime as dt

import pytest

from lib import reports


def test_report_key_sorts_by_time_and_names_the_container():
    t1 = dt.datetime(2026, 11, 29, 9, 5, 3, 120000, tzinfo=dt.UTC)
    t2 = t1 + dt.timedelta(milliseconds=5)
    k1 = reports.report_key(
        app_name="data-tracker",
        env="prod",
        notebook="knack_container_to_s3",
        container="view_197",
        now=t1,
    )
    k2 = reports.report_key(
        app_name="data-tracker",
        env="prod",
        notebook="knack_container_to_s3",
        container="view_197",
        now=t2,
    )
    assert k1 == (
        "reports/data-tracker-prod/knack_container_to_s3/20261129T090503.120Z_view_197.ipynb"
    )
    assert k1 < k2
    app = reports.report_key(app_name="demo", env="dev", notebook="upload_metadata.ipynb", now=t1)
    assert app.endswith("/upload_metadata/20261129T090503.120Z_app.ipynb")


def test_report_key_in_another_timezone_is_utc():
    t = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.timezone(dt.timedelta(hours=-6)))
    assert "20261129T090000.000Z" in reports.report_key(
        app_name="a", env="dev", notebook="n", now=t
    )


def test_report_key_never_escapes_its_prefix():
    key = reports.report_key(
        app_name="../../x", env="dev/../prod", notebook="n", container="a/../../b"
    )
    assert key.startswith("reports/")
    assert ".." not in key
    assert key.count("/") == 3


def test_notebook_path_resolves_names_and_lists_known():
    assert reports.notebook_path("upload_metadata").name == "upload_metadata.ipynb"
    assert reports.notebook_path("upload_metadata.ipynb").is_file()
    with pytest.raises(FileNotFoundError, match="known: .*upload_metadata"):
        reports.notebook_path("nope")
