"""The README works for a newcomer: the quick start on its first screen, and every link
stays inside the repository (a clone is self-contained)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_SCREEN = 40  # lines

# Markdown links and images: [text](target); the target up to a space or ")".
LINK = re.compile(r"\]\(([^)\s]+)")
# Code (fenced blocks and `spans`) shows text, not links.
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def _docs() -> list[Path]:
    return [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *ROOT.glob("docs/*.md")]


def test_quick_start_is_on_the_first_screen() -> None:
    first = "\n".join((ROOT / "README.md").read_text().splitlines()[:FIRST_SCREEN])
    assert "## Quick start" in first
    for command in ("make demo", "make test", "make test-fast", "make lab"):
        assert command in first, command
    order = ["upload_metadata", "knack_container_to_s3", "upsert_knack_container_to_socrata"]
    order += ["backup_socrata", "explore_container", "health"]
    positions = [first.index(f"`{job}`") for job in order]
    assert positions == sorted(positions), "the jobs are listed in the order they run"
    assert "docs/CONTRACTS.md" in first


def test_no_link_leaves_the_repository() -> None:
    for doc in _docs():
        text = doc.read_text()
        assert "../shared" not in text, doc
        for target in LINK.findall(CODE.sub("", text)):
            if re.match(r"https?://", target):
                continue  # a web page (a project's site), not a file
            path = (doc.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT), f"{doc.name}: {target} is outside the repository"
            assert path.exists(), f"{doc.name}: {target} does not exist"


def test_contracts_are_in_the_repository() -> None:
    contracts = (ROOT / "docs" / "CONTRACTS.md").read_text()
    for section in ("## 1. Contracts", "### S3 layout", "### Command line", "## 2. Facts"):
        assert section in contracts, section


def test_docs_say_what_is_true_now() -> None:
    """No diary: history (issue numbers, commit hashes) belongs to git."""
    for doc in (ROOT / "README.md", ROOT / "benchmarks" / "README.md"):
        text = doc.read_text()
        assert not re.search(r"\bissue \d+", text, re.IGNORECASE), doc.name
        assert not re.search(r"\b(at|commit|since) [0-9a-f]{7,40}\b", text), doc.name


def test_the_trust_hint_names_what_jupyter_lab_has():
    """Lab has no File-menu entry to trust a notebook: its command palette and
    ``jupyter trust`` do it (the map's hint in reports, and the README)."""
    from lib.maps import UNTRUSTED

    readme = (ROOT / "README.md").read_text()
    for text in (UNTRUSTED, readme):
        assert "File → Trust" not in text
    assert "Trust Notebook" in UNTRUSTED and "jupyter trust" in UNTRUSTED
