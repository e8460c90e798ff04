"""A generated "signals" app on the demo stack, with its params file, for sync tests."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import yaml
from inprocess import run as run_in_process

from emulators.knack import generate_app
from lib import reports
from lib.clients.s3_records import dumps_stable

CENTRAL = ZoneInfo("America/Chicago")
# moto's server takes about 100 PUTs a second here (a CPU's): keep it small. 50 records are
# one page, 48 of them located (seed 1): more than one ArcGIS chunk of 25, 2 without coordinates
N = 50
MODIFIED = "field_5"


class Signals:
    """A generated signals app on the stack, with its params file."""

    def __init__(self, stack, params_dir, seed=1, n=N):
        self.stack = stack
        self.params_dir = params_dir
        metadata, records = generate_app(n, seed=seed)
        self.app_id = stack.knack.add_app(metadata, records)
        self.containers = {
            "object_1": {"modified_date_field": MODIFIED},
            "view_1": {"scene": "scene_1", "modified_date_field": MODIFIED},
        }
        self.write_params()

    def write_params(self, **container_overrides):
        containers = {
            k: {**v, **container_overrides.get(k, {})} for k, v in self.containers.items()
        }
        (self.params_dir / "signals.yaml").write_text(
            yaml.safe_dump(
                {
                    "app_id": {"prod": self.app_id, "dev": self.app_id},
                    "containers": containers,
                }
            )
        )

    def knack(self, container="object_1"):
        return {r["id"]: r for r in self.stack.knack.records(self.app_id, "object_1")}

    def s3(self, container="object_1"):
        s3 = self.stack.s3()
        prefix = f"signals-dev/{container}/"
        out = {}
        for key in self.stack.s3_keys(prefix):
            body = s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"].read()
            out[key[len(prefix) :].removesuffix(".json")] = body
        return out

    def assert_s3_equals_knack(self, container="object_1"):
        stored = self.s3(container)
        knack = self.knack(container)
        assert set(stored) == set(knack)
        for rid, body in stored.items():
            assert body == dumps_stable(knack[rid]), rid

    def touch(self, rid, when, change=None):
        if change is not None:
            record = self.knack()[rid]
            record["field_2"] = change
            self.stack.knack.put_record(self.app_id, "object_1", record)
        self.stack.knack.touch(self.app_id, "object_1", rid, field=MODIFIED, when=when)

    def run(self, container="object_1", date=None) -> reports.RunResult:
        return reports.run_notebook(
            "knack_container_to_s3", app_name="signals", env="dev", container=container, date=date
        )

    def sync(self, container="object_1", date=None) -> reports.RunResult:
        """The notebook's steps in process (tests/inprocess.py): no kernel, no report."""
        return run_in_process(
            "knack_container_to_s3", app_name="signals", env="dev", container=container, date=date
        )

    def report_text(self, result):
        key = result.report.removeprefix(f"s3://{self.stack.bucket}/")
        return self.stack.s3().get_object(Bucket=self.stack.bucket, Key=key)["Body"].read().decode()

    def state(self, container="object_1"):
        key = f"_state/signals-dev/{container}/knack_container_to_s3.json"
        if key not in self.stack.s3_keys("_state/"):
            return None
        return json.loads(
            self.stack.s3().get_object(Bucket=self.stack.bucket, Key=key)["Body"].read()
        )
