"""The PostgreSQL destination's pure parts: params, the binding rule's types, column names,
and that the server's URL never shows in an error (no server needed: a closed port)."""

from __future__ import annotations

import socket

import pytest

from lib import config
from lib.bindings import Field
from lib.bindings.destination import (
    PG_BOOLEAN,
    PG_DOUBLE,
    PG_FLOAT_TYPES,
    PG_TEXT,
    PG_TIMESTAMP,
    Destination,
    destinations,
    postgres_type,
)
from lib.clients import postgres
from lib.errors import ConfigError, MissingCredentialError
from lib.publish.postgres import _column_name
from lib.snapshot.spec import FLOAT_TYPES


def test_the_column_types_are_the_snapshots():
    assert PG_FLOAT_TYPES == FLOAT_TYPES
    assert [postgres_type(t) for t in ("currency", "boolean", "date_time", "address")] == [
        PG_DOUBLE,
        PG_BOOLEAN,
        PG_TIMESTAMP,
        PG_TEXT,
    ]


def test_params_postgres_defaults_and_errors(tmp_path, monkeypatch):
    pg = config.ContainerConfig.model_validate({"postgres": {}}).postgres
    assert pg is not None and pg.db_schema == "knack"
    assert pg.table_name("data-tracker", "view_197") == "data_tracker_view_197"
    named = config.PostgresConfig.model_validate({"schema": "warehouse", "table": "signals"})
    assert (named.db_schema, named.table_name("x", "object_1")) == ("warehouse", "signals")
    (tmp_path / "app.yaml").write_text(
        "app_id: {dev: 5d79512148c4af00106d1507}\n"
        "containers:\n  object_1:\n    postgres: {schema: Knack-Data, tabel: x}\n"
    )
    with pytest.raises(ConfigError) as e:
        config.load_app("app", tmp_path)
    assert "unknown key 'containers.object_1.postgres.tabel'" in str(e.value)
    assert "containers.object_1.postgres.schema" in str(e.value)


def test_a_retyped_field_fits_only_a_column_of_its_own_type():
    d = Destination.postgres(config.PostgresConfig(), "demo_object_3")
    assert (d.kind, d.id, d.what) == (
        "postgres",
        "knack.demo_object_3",
        "PostgreSQL table knack.demo_object_3",
    )
    assert d.fits("currency", PG_DOUBLE) and d.fits("rating", PG_DOUBLE)
    assert not d.fits("short_text", PG_DOUBLE)  # the snapshot's text is no number
    assert not d.fits("number", PG_TEXT) and not d.fits("date_time", PG_TEXT)
    cfg = config.ContainerConfig.model_validate(
        {"postgres": {}, "socrata": {"resource_id": "abcd-1234"}}
    )
    assert [x.what for x in destinations(cfg, app_name="demo", container="object_3")] == [
        "Socrata dataset abcd-1234",
        "PostgreSQL table knack.demo_object_3",
    ]


def test_a_new_columns_name_is_a_postgresql_name():
    long = Field("field_12", "x" * 80, "short_text", "x" * 80)
    assert _column_name(long, set()) == "x" * 63
    assert _column_name(long, {"x" * 63}) == "x" * (63 - 9) + "_field_12"
    assert _column_name(Field("field_3", "Record", "short_text", "_digest"), {"_digest"}) == (
        "_digest_field_3"
    )


def test_a_missing_url_names_the_variable(monkeypatch):
    monkeypatch.delenv("KNACK_POSTGRES_URL", raising=False)
    with pytest.raises(MissingCredentialError, match="KNACK_POSTGRES_URL is not set"):
        postgres.read_columns("knack.x")


def test_a_failed_connection_says_why_and_never_shows_the_url(monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://knack:s3cret-pa55word@127.0.0.1:{port}/postgres"
    monkeypatch.setenv("KNACK_POSTGRES_URL", url)
    with pytest.raises(postgres.PostgresError) as e:
        postgres.read_columns("knack.x")
    message = str(e.value)
    assert "cannot connect to the PostgreSQL server of KNACK_POSTGRES_URL" in message
    assert "s3cret-pa55word" not in message and url not in message
