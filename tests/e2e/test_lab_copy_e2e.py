"""``make lab`` works on a scratch copy of ``notebooks/`` (``lab/``, git-ignored, outside the
tests' paths): an analyst's Run All, edits and saves never change the notebooks Airflow runs.
A notebook of the copy is run with a real kernel and saved back as Lab saves it."""

from __future__ import annotations

import subprocess

import nbformat
from nbclient import NotebookClient

from emulators.demo import LAB_DIR, NOTEBOOKS_DIR, ROOT, seed_lab


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout


def test_lab_runs_and_saves_its_copy_and_notebooks_stay_unchanged(demo_env, tmp_path):
    before = git("status", "--porcelain", "--", "notebooks")
    shipped = {p.name: p.read_bytes() for p in NOTEBOOKS_DIR.glob("*.ipynb")}
    lab = tmp_path / "lab"
    copied = seed_lab(lab)
    assert sorted(p.name for p in copied) == sorted(shipped)

    path = lab / "upload_metadata.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source += "\n# an analyst's edit"  # the parameters cell, edited in Lab
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(lab)}}).execute()
    nbformat.write(nb, path)  # Run All, then save
    (lab / "Untitled.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))

    saved = nbformat.read(path, as_version=4)
    assert any(c.get("outputs") for c in saved.cells)  # the copy holds the run's outputs
    assert {p.name: p.read_bytes() for p in NOTEBOOKS_DIR.glob("*.ipynb")} == shipped
    assert git("status", "--porcelain", "--", "notebooks") == before  # nothing new, nothing changed
    assert seed_lab(lab) == []  # a second `make lab` keeps the analyst's copies


def test_the_lab_copy_is_ignored_by_git_and_the_tests():
    assert git("check-ignore", str(LAB_DIR / "Untitled.ipynb")).strip()
    assert not LAB_DIR.is_relative_to(NOTEBOOKS_DIR) and not LAB_DIR.is_relative_to(ROOT / "tests")
    makefile = (ROOT / "Makefile").read_text()
    assert "pytest -n 2 --dist loadfile tests notebooks" in makefile  # lab/ is not collected
