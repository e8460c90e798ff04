"""The result base (lib/jobs/result.py): the summary's skeleton and the failure message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from lib.errors import KnackNbError
from lib.jobs.result import ContainerResult, JobResult


class Refused(KnackNbError):
    pass


@dataclass(kw_only=True)
class Copy(ContainerResult):
    copied: int = 0

    ERROR: ClassVar[type[KnackNbError]] = Refused
    KEPT: ClassVar[str | None] = "nothing was lost"

    def details(self) -> dict[str, Any]:
        return {"copied": self.copied}

    def failure(self) -> str:
        return f"copy of {self.container} failed: "


def test_the_summary_is_identity_details_errors_stats_in_that_order():
    result = Copy(
        app_name="demo", env="dev", container="object_3", copied=3, requests=4, seconds=1.234
    )
    assert list(result.summary().items()) == [
        ("app_name", "demo"),
        ("env", "dev"),
        ("container", "object_3"),
        ("copied", 3),
        ("errors", 0),
        ("requests", 4),
        ("retries", 0),
        ("seconds", 1.23),
    ]
    assert result.ok
    result.raise_for_errors()  # no error: nothing raised


def test_a_failure_names_what_failed_every_error_and_what_a_rerun_does():
    result = Copy(app_name="demo", env="dev", container="object_3", errors=["a", "b"])
    with pytest.raises(
        Refused,
        match=r"^copy of object_3 failed: a \| b \(nothing was lost; a "
        r"rerun is safe and completes the work\)$",
    ):
        result.raise_for_errors()
    result.rerun_helps = False
    with pytest.raises(Refused, match=r"a rerun alone fails the same way: do what the message"):
        result.raise_for_errors()


def test_a_job_without_requests_or_advice():
    @dataclass(kw_only=True)
    class Quiet(JobResult):
        STATS: ClassVar[tuple[str, ...]] = ("seconds",)
        KEPT: ClassVar[str | None] = None

    result = Quiet(app_name="demo", env="dev", errors=["x"], notes=["*a* note"])
    # a failed run says whether a rerun alone helps, after its errors (the alerts read it)
    assert list(result.summary()) == ["app_name", "env", "errors", "rerun_helps", "seconds"]
    assert result.summary()["rerun_helps"] is True
    assert "rerun_helps" not in Quiet(app_name="demo", env="dev").summary()  # none when ok
    with pytest.raises(KnackNbError, match=r"^x$"):
        result.raise_for_errors()
    assert result.notes_md() == "\n- \\*a\\* note"
