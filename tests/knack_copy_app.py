"""A generated source app and an empty destination app on the demo stack (emulators/
knack_pair.py), with their params files, for the tests of the Knack destination.

The destination app has a key of its own, given as ``KNACK_API_KEY_ASSETS_COPY`` (the
source is read with the stack's ``KNACK_API_KEY``): a publish that used the wrong one would
be refused.
"""

from __future__ import annotations

import secrets

import yaml
from inprocess import run as run_in_process

from emulators.knack_pair import (
    ASSET_MATCH,
    ASSETS,
    FIELD_MAP,
    MODIFIED,
    OWNER_MATCH,
    OWNERS,
    TARGET_ASSETS,
    TARGET_OWNERS,
    generate_pair,
)
from lib import reports, sync
from lib.metadata import upload_metadata

SOURCE, TARGET = "assets", "assets-copy"
KEY_VARIABLE = "KNACK_API_KEY_ASSETS_COPY"
N = 30  # assets (and 5 owners): a full copy is ~40 writes, ~5 s at 8 requests/s


class CopyApps:
    """The pair on the stack: source records synced to S3 by :meth:`sync`, published by
    :meth:`publish` (papermill) or :meth:`publish_in_process`."""

    def __init__(self, stack, params_dir, monkeypatch, n=N, seed=5):
        self.stack = stack
        self.params_dir = params_dir
        (source, records), target = generate_pair(n, seed=seed)
        self.key = "copy-" + secrets.token_hex(10)
        monkeypatch.setenv(KEY_VARIABLE, self.key)
        self.source_id = stack.knack.add_app(source, records)
        self.target_id = stack.knack.add_app(target, api_key=self.key)
        self.write_params()

    def write_params(self, **knack):
        assets = {
            "app_name": TARGET,
            "object": TARGET_ASSETS,
            "match_field": ASSET_MATCH,
            "fields": dict(FIELD_MAP),
            **knack,
        }
        source = {
            "app_id": {"prod": self.source_id, "dev": self.source_id},
            "containers": {
                OWNERS: {
                    "knack": {
                        "app_name": TARGET,
                        "object": TARGET_OWNERS,
                        "match_field": OWNER_MATCH,
                        "fields": {"field_1": "field_101"},
                    }
                },
                ASSETS: {"modified_date_field": MODIFIED, "knack": assets},
            },
        }
        target = {"app_id": {"prod": self.target_id, "dev": self.target_id}, "containers": {}}
        (self.params_dir / f"{SOURCE}.yaml").write_text(yaml.safe_dump(source))
        (self.params_dir / f"{TARGET}.yaml").write_text(yaml.safe_dump(target))

    # --- the source -------------------------------------------------------------------

    def sources(self, object_key=ASSETS):
        return {r["id"]: r for r in self.stack.knack.records(self.source_id, object_key)}

    def sync(self):
        upload_metadata(app_name=SOURCE, env="dev")
        for container in (OWNERS, ASSETS):
            assert sync.sync_container(app_name=SOURCE, container=container, env="dev").ok

    def change(self, rid, **raw):
        """Set raw values of a source record in Knack (``field_N=raw``)."""
        record = self.sources()[rid]
        for key, value in raw.items():
            record[f"{key}_raw"] = value
            record[key] = value if isinstance(value, str) else ""
        self.stack.knack.put_record(self.source_id, ASSETS, record)

    # --- the destination --------------------------------------------------------------

    def targets(self, object_key=TARGET_ASSETS):
        return self.stack.knack.records(self.target_id, object_key)

    def by_source(self, object_key=TARGET_ASSETS, match=ASSET_MATCH):
        out = {}
        for record in self.targets(object_key):
            assert record[f"{match}_raw"] not in out, "two records for one source"
            out[record[f"{match}_raw"]] = record
        return out

    def writes(self):
        """The write requests the destination app was sent since the log was reset."""
        return [
            r
            for r in self.stack.knack.requests
            if r.app_id == self.target_id and r.method in ("POST", "PUT", "DELETE")
        ]

    def publish(self, container=ASSETS, date=None) -> reports.RunResult:
        return reports.run_notebook(
            "knack_container_to_knack", app_name=SOURCE, env="dev", container=container, date=date
        )

    def publish_in_process(self, container=ASSETS, date=None) -> reports.RunResult:
        return run_in_process(
            "knack_container_to_knack", app_name=SOURCE, env="dev", container=container, date=date
        )

    def first_copy(self):
        self.sync()
        assert self.publish_in_process(OWNERS).ok
        result = self.publish_in_process()
        assert result.ok, result.error
        return result

    def report_text(self, result):
        key = result.report.removeprefix(f"s3://{self.stack.bucket}/")
        return self.stack.s3().get_object(Bucket=self.stack.bucket, Key=key)["Body"].read().decode()
