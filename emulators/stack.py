"""The demo stack: moto's S3 server and the service emulators on 127.0.0.1, a real
PostgreSQL server (``emulators.postgres``), and the environment variables that point the
product at them.

Used by the demo (``python -m emulators.demo``), the tests and the notebook checks.
Credentials here are random per stack so tests can prove none of them leaks into a report.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from emulators.arcgis import ArcGISEmulator
from emulators.knack import KnackEmulator, load_fixture_app
from emulators.knack_pair import demo_copy_metadata
from emulators.postgres import PostgresServer
from emulators.socrata import SocrataEmulator

logger = logging.getLogger(__name__)

DEMO_BUCKET = "atd-knack-services"
DEMO_DATASET = "demo-allf"  # params/demo.yaml: object_3's Socrata dataset
DEMO_LOCATION_FIELD = "field_44"  # "Address Lat Lon"
# Knack field type -> the Socrata column type a publisher would choose for it
SOCRATA_TYPES = {
    "auto_increment": "number",
    "number": "number",
    "rating": "number",
    "currency": "number",
    "equation": "number",
    "sum": "number",
    "average": "number",
    "count": "number",
    "boolean": "checkbox",
    "date_time": "calendar_date",
}
# left out of the demo dataset on purpose: the report shows how a dropped field looks
DEMO_LEFT_OUT = {"Signature"}
DEMO_AGOL_SERVICE = "de30a9c15e5b4c8f9d7e6a1b2c3d4e5f"  # params/demo.yaml: object_3's layer
# Knack field type -> the field type of an ArcGIS layer made for it (else string)
AGOL_TYPES = {
    "auto_increment": "integer",
    "number": "double",
    "rating": "double",
    "currency": "double",
    "equation": "double",
    "sum": "double",
    "average": "double",
    "count": "double",
    "date_time": "date",
}
AGOL_STRING_LENGTH = 4000  # long enough for the fixtures' paragraphs and rich text


def _published_fields(
    metadata: dict[str, Any], object_key: str, left_out: set[str]
) -> list[tuple[dict[str, Any], str]]:
    """An object's fields (but ``left_out`` labels), each with the name a publisher gives it."""
    from lib.records import column_names

    obj = next(o for o in metadata["objects"] if o["key"] == object_key)
    names = column_names(metadata, object_key)
    return [(f, names[f["key"]]) for f in obj["fields"] if f["name"] not in left_out]


def socrata_columns(
    metadata: dict[str, Any],
    object_key: str,
    *,
    location_field: str | None,
    left_out: set[str] = frozenset(),
) -> list[dict[str, str]]:
    """Columns of a dataset for an object's fields, named by the publishers' rule."""
    columns = [{"fieldName": "id", "dataTypeName": "text", "name": "id"}]
    for f, name in _published_fields(metadata, object_key, left_out):
        kind = "point" if f["key"] == location_field else SOCRATA_TYPES.get(f["type"], "text")
        columns.append({"fieldName": name, "dataTypeName": kind, "name": f["name"]})
    return columns


def agol_fields(
    metadata: dict[str, Any], object_key: str, *, left_out: set[str] = frozenset()
) -> list[dict[str, Any]]:
    """Fields of an ArcGIS layer for an object's fields, named by the publishers' rule."""
    fields: list[dict[str, Any]] = [{"name": "id", "type": "string", "length": 24}]
    for f, name in _published_fields(metadata, object_key, left_out):
        kind = AGOL_TYPES.get(f["type"], "string")
        spec: dict[str, Any] = {"name": name, "type": kind, "alias": f["name"]}
        if kind == "string":
            spec["length"] = AGOL_STRING_LENGTH
        fields.append(spec)
    return fields


class Stack:
    """S3 (moto server), the Knack emulator serving the fixture app, and the Socrata and
    ArcGIS emulators with the demo's dataset and layer, with their environment."""

    def __init__(
        self,
        *,
        bucket: str = DEMO_BUCKET,
        knack_rate_limit: int | None = 10,
        params_dir: str | None = None,
        moto_process: bool = False,
    ) -> None:
        """``moto_process``: run moto's server in a process of its own (benchmarks: its CPU
        then does not compete for this interpreter's GIL, and its objects are not in this
        process's memory, as with the real S3); else a thread (ThreadedMotoServer)."""
        self.bucket = bucket
        self.moto_process = moto_process
        self._moto_proc: subprocess.Popen | None = None
        self.params_dir = params_dir
        self.knack_api_key = "knack-" + secrets.token_hex(12)
        self.aws_access_key_id = "AKIA" + secrets.token_hex(8).upper()
        self.aws_secret_access_key = secrets.token_urlsafe(30)
        self.socrata_app_token = "soc-" + secrets.token_hex(10)
        self.socrata_key_id = "sockey-" + secrets.token_hex(6)
        self.socrata_key_secret = secrets.token_urlsafe(24)
        self.knack = KnackEmulator(api_key=self.knack_api_key, rate_limit=knack_rate_limit)
        self.fixture_app_id = self.knack.add_app(*load_fixture_app())
        self.reset_knack_copy()
        self.socrata = SocrataEmulator(
            app_token=self.socrata_app_token,
            key_id=self.socrata_key_id,
            key_secret=self.socrata_key_secret,
        )
        self.reset_socrata()
        self.agol_username = "agol_" + secrets.token_hex(6)
        self.agol_password = secrets.token_urlsafe(24)
        self.arcgis = ArcGISEmulator(username=self.agol_username, password=self.agol_password)
        self.reset_arcgis()
        self.postgres = PostgresServer()  # started with the stack (its URL: a secret)
        self._moto: ThreadedMotoServer | None = None
        self.s3_url = ""
        self._saved_env: dict[str, str | None] = {}

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Stack:
        if self.moto_process:
            self._start_moto_process()
        else:
            self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._moto.start()
            host, port = self._moto.get_host_and_port()
            self.s3_url = f"http://{host}:{port}"
        self.knack.start()
        self.socrata.start()
        self.arcgis.start()
        self.postgres.start()
        self.s3().create_bucket(Bucket=self.bucket)
        logger.info("stack up: S3 %s, Knack %s", self.s3_url, self.knack.url)
        return self

    def stop(self) -> None:
        self.restore_env()
        self.knack.stop()
        self.socrata.stop()
        self.arcgis.stop()
        self.postgres.stop()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._moto_proc is not None:
            self._moto_proc.terminate()
            try:
                self._moto_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._moto_proc.kill()
            self._moto_proc = None

    @property
    def moto_pid(self) -> int | None:
        """The pid of moto's server process (``moto_process=True``), else None."""
        return self._moto_proc.pid if self._moto_proc else None

    def _start_moto_process(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._moto_proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.s3_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                if self._moto_proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- environment -------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The variables that point the product (and kernels it starts) at this stack."""
        env = {
            "AWS_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask a cloud metadata service
            "KNACK_API_URL": self.knack.url,
            "KNACK_API_KEY": self.knack_api_key,
            "KNACK_SERVICES_BUCKET": self.bucket,
            "SOCRATA_URL": self.socrata.url,
            "SOCRATA_APP_TOKEN": self.socrata_app_token,
            "SOCRATA_API_KEY_ID": self.socrata_key_id,
            "SOCRATA_API_KEY_SECRET": self.socrata_key_secret,
            "AGOL_URL": self.arcgis.url,
            "AGOL_USERNAME": self.agol_username,
            "AGOL_PASSWORD": self.agol_password,
            "AGOL_CA_BUNDLE": self.arcgis.ca_bundle,
            "KNACK_POSTGRES_URL": self.postgres.url,
        }
        if self.params_dir:
            env["KNACK_PARAMS_DIR"] = self.params_dir
        return env

    @property
    def secrets(self) -> list[str]:
        """Every credential value of this stack (none may appear in a report)."""
        return [
            self.knack_api_key,
            self.aws_access_key_id,
            self.aws_secret_access_key,
            self.socrata_app_token,
            self.socrata_key_id,
            self.socrata_key_secret,
            self.agol_username,
            self.agol_password,
            self.postgres.password,
        ]

    def seed_demo(self, *, publish: bool = False) -> None:
        """Run the demo app's metadata upload and container syncs in this process, so every
        notebook's defaults find what they read (an analyst's state after ``make demo``);
        ``publish``: object_3's Socrata, ArcGIS and Knack publishes and a backup too, as ``make
        demo`` runs them (the health check then finds the demo healthy)."""
        from lib import config, sync
        from lib.metadata import upload_metadata

        saved = dict(os.environ)
        self.apply_env()
        try:
            upload_metadata(app_name="demo", env="dev")
            for container in config.load_app("demo").containers:
                sync.sync_container(app_name="demo", container=container, env="dev")
            if publish:
                from lib.backup import backup
                from lib.publish import agol, knack, postgres, socrata

                for job in (socrata.publish, agol.publish, knack.publish, postgres.publish, backup):
                    job(app_name="demo", container="object_3", env="dev").raise_for_errors()
        finally:
            self.restore_env()
            os.environ.clear()
            os.environ.update(saved)

    def reset_knack_copy(self) -> None:
        """The demo's destination Knack app (params/demo-copy.yaml), empty."""
        self.knack.add_app(demo_copy_metadata(load_fixture_app()[0]))

    def reset_socrata(self) -> None:
        """The demo dataset for object_3, empty."""
        metadata = load_fixture_app()[0]["application"]
        self.socrata.add_dataset(
            DEMO_DATASET,
            socrata_columns(
                metadata, "object_3", location_field=DEMO_LOCATION_FIELD, left_out=DEMO_LEFT_OUT
            ),
            name="all_fields_test (demo)",
        )

    def reset_postgres(self) -> None:
        """The server without the demo's tables (schema ``knack`` dropped)."""
        import psycopg

        with psycopg.connect(self.postgres.url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS knack CASCADE")

    def reset_arcgis(self) -> None:
        """The demo layer for object_3, empty (and no faults, an empty request log)."""
        metadata = load_fixture_app()[0]["application"]
        self.arcgis.reset()
        self.arcgis.add_service(
            DEMO_AGOL_SERVICE,
            "all_fields_test_demo",
            [
                {
                    "name": "all_fields_test",
                    "geometry_type": "esriGeometryPoint",
                    "fields": agol_fields(metadata, "object_3", left_out=DEMO_LEFT_OUT),
                }
            ],
            title="all_fields_test (demo)",
        )

    def apply_env(self) -> None:
        """Set ``env`` in ``os.environ`` (restored by ``restore_env`` or ``stop``)."""
        for key, value in self.env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def s3(self) -> Any:
        """A boto3 S3 client on this stack (for tests and the demo, not the product)."""
        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            region_name="us-east-1",
        )

    def s3_keys(self, prefix: str = "") -> list[str]:
        pages = (
            self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]
