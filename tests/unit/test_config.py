import subprocess
import sys
from pathlib import Path

import pytest

from lib import config
from lib.errors import ConfigError, MissingCredentialError, UnknownAppError, UnknownContainerError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


GOOD = """
app_id:
  prod: 5d79512148c4af00106d1507
  dev: 5d79512148c4af00106d1508
containers:
  view_197:
    scene: scene_73
    modified_date_field: field_205
    socrata: {resource_id: p53x-x73x, location_field: field_182}
    agol: {service_id: e6eb94d1e7cc45c2ac452af6ae6aa534, layer_id: 0}
  object_11: {}
"""


def test_shipped_params_validate():
    assert config.known_apps(ROOT / "params") == ["data-tracker", "demo", "demo-copy"]
    tracker = config.load_app("data-tracker", ROOT / "params")
    signals = tracker.container("view_197")
    assert signals.scene == "scene_73"
    assert signals.modified_date_field == "field_205"
    assert signals.socrata.resource_id == "p53x-x73x"
    assert signals.socrata.location_field == "field_182"
    assert signals.agol.service_id == "e6eb94d1e7cc45c2ac452af6ae6aa534"
    assert signals.agol.layer_id == 0
    assert signals.agol.upsert_matching_field == "id"
    assert tracker.container("object_11").modified_date_field == "field_508"
    assert tracker.container("view_395").socrata.resource_id == "b4k4-adkb"
    assert tracker.container("view_2681").scene == "scene_1075"
    assert tracker.container("view_2681").socrata.resource_id == "p7pt-re4k"
    demo = config.load_app("demo", ROOT / "params")
    assert demo.app_id_for("dev") == "5d79512148c4af00106d1507"


def test_defaults_and_env_lookup(tmp_path):
    app = config.load_app("x", write(tmp_path, "x", GOOD))
    assert app.app_id_for("dev") == "5d79512148c4af00106d1508"
    assert app.container("object_11").socrata is None
    assert app.container("object_11").modified_date_field is None
    assert app.container("view_197").socrata.no_replace is False


def test_params_dir_from_environment(tmp_path, monkeypatch):
    write(tmp_path, "other-app", GOOD)
    monkeypatch.setenv("KNACK_PARAMS_DIR", str(tmp_path))
    assert config.known_apps() == ["other-app"]
    assert config.load_app("other-app").name == "other-app"


def test_unknown_app_lists_known_ones(tmp_path):
    write(tmp_path, "a", GOOD)
    write(tmp_path, "b", GOOD)
    with pytest.raises(UnknownAppError, match=r"unknown app 'nope'.*known apps: a, b"):
        config.load_app("nope", tmp_path)
    with pytest.raises(UnknownAppError):
        config.load_app("../a", tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            GOOD.replace("layer_id: 0", "layer_id: 0, layer: 1"),
            r"unknown key 'containers.view_197.agol.layer'",
        ),
        (
            GOOD.replace("  object_11: {}", "  object_11: {modified_field: field_1}"),
            r"unknown key 'containers.object_11.modified_field'",
        ),
        (GOOD + "extra: 1\n", r"unknown key 'extra'"),
        (GOOD.replace("app_id:", "app_ids:"), r"missing key 'app_id'.*unknown key 'app_ids'"),
        (
            GOOD.replace("socrata: {resource_id: p53x-x73x, ", "socrata: {"),
            r"missing key 'containers.view_197.socrata.resource_id'",
        ),
        (GOOD.replace("  object_11: {}", "  table_1: {}"), r"containers.table_1"),
        (GOOD.replace("prod: 5d79512148c4af00106d1507", "prod: not-an-id"), r"app_id.prod"),
        (GOOD.replace("  dev:", "  staging:"), r"app_id.staging"),
    ],
)
def test_bad_params_name_file_and_key(tmp_path, text, message):
    write(tmp_path, "bad", text)
    with pytest.raises(ConfigError, match=message) as info:
        config.load_app("bad", tmp_path)
    assert str(tmp_path / "bad.yaml") in str(info.value)


def test_invalid_yaml_names_file(tmp_path):
    write(tmp_path, "broken", "app_id: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml is not valid YAML"):
        config.load_app("broken", tmp_path)
    write(tmp_path, "list", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list.yaml must hold a mapping"):
        config.load_app("list", tmp_path)


def test_env_must_be_prod_or_dev(tmp_path):
    app = config.load_app("x", write(tmp_path, "x", GOOD))
    for env in ("staging", "PROD", "", None):
        with pytest.raises(ConfigError, match="env must be 'prod' or 'dev'"):
            app.app_id_for(env)


def test_unknown_container_lists_configured(tmp_path):
    app = config.load_app("x", write(tmp_path, "x", GOOD))
    with pytest.raises(UnknownContainerError, match=r"'view_1'.*configured: object_11, view_197"):
        app.container("view_1")


def test_credentials_come_from_environment(monkeypatch):
    monkeypatch.delenv("KNACK_API_KEY", raising=False)
    assert config.knack_api_key() is None
    monkeypatch.setenv("KNACK_API_KEY", "k")
    assert config.knack_api_key() == "k"
    monkeypatch.delenv("SOCRATA_API_KEY_ID", raising=False)
    monkeypatch.setenv("SOCRATA_APP_TOKEN", "t")
    with pytest.raises(MissingCredentialError, match="SOCRATA_API_KEY_ID is not set"):
        config.require_env("SOCRATA_APP_TOKEN", "SOCRATA_API_KEY_ID", purpose="publishing")


def test_environment_defaults(monkeypatch):
    monkeypatch.delenv("KNACK_SERVICES_BUCKET", raising=False)
    monkeypatch.delenv("KNACK_API_URL", raising=False)
    assert config.bucket() == "atd-knack-services"
    assert config.knack_api_url() == "https://api.knack.com/v1"


@pytest.mark.parametrize(
    "text, key, lines",
    [
        (
            GOOD.replace(
                "    modified_date_field: field_205\n",
                "    modified_date_field: field_205\n    modified_date_field: field_206\n",
            ),
            "containers.view_197.modified_date_field",
            (8, 9),
        ),
        (GOOD + "app_id: {prod: 5d79512148c4af00106d1507}\n", "app_id", (2, 12)),
        (
            GOOD.replace("  object_11: {}", "  object_11: {}\n  object_11: {scene: scene_1}"),
            "containers.object_11",
            (11, 12),
        ),
        (
            GOOD.replace("layer_id: 0}", "layer_id: 0, layer_id: 1}"),
            "containers.view_197.agol.layer_id",
            (10, 10),
        ),
    ],
)
def test_a_key_given_twice_names_file_key_and_lines(tmp_path, text, key, lines):
    write(tmp_path, "twice", text)
    with pytest.raises(ConfigError) as info:
        config.load_app("twice", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "twice.yaml") in message
    assert f"key {key!r} is given twice" in message
    assert f"line {lines[0]}" in message and f"line {lines[1]}" in message


def test_yaml_merge_keys_may_still_override(tmp_path):
    text = GOOD.replace(
        "  object_11: {}",
        "  object_11: &base {description: a}\n  object_12:\n    <<: *base\n    description: b",
    )
    app = config.load_app("merged", write(tmp_path, "merged", text))
    assert app.container("object_12").description == "b"


def alias_bomb(levels: int, *, used_by: str | None = None) -> str:
    """A params file with a "billion laughs": each anchor a list of 9 aliases of the one
    before, so the last one stands for 9**levels values; ``used_by`` a key that uses it."""
    names = "abcdefghijklmnop"[:levels]
    lines = ["x:", "  a: &a [l,l,l,l,l,l,l,l,l]"]
    lines += [
        f"  {n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]"
        for p, n in zip(names[:-1], names[1:], strict=True)
    ]
    text = "\n".join(lines) + "\napp_id: {prod: 5d79512148c4af00106d1507}\n"
    if used_by:
        return text + f"containers:\n  object_1: {{{used_by}: *{names[-1]}}}\n"
    return text + "containers: {}\n"


def test_an_alias_bomb_of_600_bytes_is_a_quick_one_line_error(tmp_path):
    """9**14 values in 600 bytes: the loader refuses it (it walked every alias: years) in
    a process of its own, so that a hang fails this test instead of the whole run."""
    text = alias_bomb(14)
    assert len(text.encode()) <= 600
    write(tmp_path, "bomb", text)
    code = (
        "import sys\nfrom pathlib import Path\nfrom lib import config\n"
        "try:\n    config.load_app('bomb', Path(sys.argv[1]))\n"
        "except config.ConfigError as e:\n    print(e)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("loading a 600-byte params file did not end: the aliases were expanded")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()  # one line
    assert line.startswith(f"{tmp_path / 'bomb.yaml'}: ")
    assert "aliases" in line and len(line) < 400


def test_a_huge_value_is_shown_cut_in_the_message(tmp_path):
    """A wrong value is quoted in the error, cut: never its whole repr (40 kB here)."""
    write(tmp_path, "huge", alias_bomb(4, used_by="description"))
    with pytest.raises(ConfigError) as info:
        config.load_app("huge", tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'huge.yaml'}: 'containers.object_1.description'")
    assert "\n" not in message and len(message) < 400, message[:500]
    write(
        tmp_path,
        "long",
        GOOD.replace("object_11: {}", "object_11: {description: [" + "x" * 100_000 + "]}"),
    )
    with pytest.raises(ConfigError) as info:
        config.load_app("long", tmp_path)
    assert "containers.object_11.description" in str(info.value)
    assert len(str(info.value)) < 400
    write(tmp_path, "key", GOOD + "? " + "k" * 100_000 + "\n: 1\n")  # a long key
    with pytest.raises(ConfigError, match="unknown key 'kkk") as info:
        config.load_app("key", tmp_path)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    "nested",
    [
        "[" * 5000 + "]" * 5000,  # a flow sequence
        "{a: " * 1000 + "1" + "}" * 1000,  # flow mappings
        "\n" + "".join(" " * (2 * i + 4) + "a:\n" for i in range(1000)) + " " * 2004 + "b: 1",
    ],
)
def test_deep_nesting_is_a_one_line_error(tmp_path, nested):
    write(tmp_path, "deep", GOOD.replace("object_11: {}", f"object_11: {{}}\nx: {nested}"))
    with pytest.raises(ConfigError) as info:  # not a RecursionError
        config.load_app("deep", tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'deep.yaml'}: ")
    assert "nested deeper than" in message and "\n" not in message and len(message) < 400


def test_nesting_through_aliases_is_counted(tmp_path):
    """Each anchor shallow, their chain deep: the depth is the one the value has."""
    lines = ["x:", "  a0: &a0 1"] + [
        f"  a{i}: &a{i} " + "[" * 20 + f"*a{i - 1}" + "]" * 20 for i in range(1, 60)
    ]
    write(tmp_path, "chain", "\n".join(lines) + "\n" + GOOD)
    with pytest.raises(ConfigError, match="nested deeper than"):
        config.load_app("chain", tmp_path)


def test_invalid_yaml_is_one_line(tmp_path):
    write(tmp_path, "broken", "app_id:\n  prod: [unclosed\ncontainers: {}\n")
    with pytest.raises(ConfigError) as info:
        config.load_app("broken", tmp_path)
    message = str(info.value)
    assert "\n" not in message and "line " in message, message
