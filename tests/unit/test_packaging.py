"""The project's files agree with each other: environment.yml and pyproject.toml, notebooks."""

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONTRACT_PARAMETERS = {
    "upload_metadata": {"app_name", "env"},
    "knack_container_to_s3": {"app_name", "container", "env", "date"},
    "upsert_knack_container_to_socrata": {"app_name", "container", "env", "date"},
    "knack_container_to_agol": {"app_name", "container", "env", "date"},
    "knack_container_to_postgres": {"app_name", "container", "env", "date"},
    "backup_socrata": {"app_name", "container", "env"},
    "explore_container": {"app_name", "container", "env"},
    "health": {"app_name", "env"},
    "knack_container_to_knack": {"app_name", "container", "env", "date"},
}


def _normalise(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = set(project["dependencies"]) | {
        req for name in ("demo", "dev") for req in extras[name] if "knack-notebooks" not in req
    }
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {req for req in pip if not req.startswith("-")}
    assert {_normalise(r) for r in listed} == {_normalise(r) for r in wanted}
    assert "-e ." in pip


def test_notebooks_are_clean_and_follow_the_contract():
    assert NOTEBOOKS, "no notebooks"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: {len(tagged)} parameters cells"
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), path.name
        source = "".join(tagged[0]["source"])
        names = set(re.findall(r"^(\w+)\s*=", source, flags=re.M))
        assert names == CONTRACT_PARAMETERS[path.stem], path.name
        for c in code:
            text = "".join(c["source"])
            assert not re.search(r"^\s*(def|class) ", text, flags=re.M), f"{path.name} defines"
            assert "sys.path" not in text
            assert not re.search(r"(?i)(api_key|password|secret|token)\s*=", text), path.name
        # the last code cell glues the summary (notebook.finish: scrapbook's format,
        # tests/e2e/test_glue.py) and updates the header the first code cell after the
        # parameters showed (notebook.start)
        assert "".join(code[-1]["source"]).startswith("notebook.finish(result)"), path.name
        assert f'notebook.start("{path.stem}"' in "".join(code[1]["source"]), path.name
