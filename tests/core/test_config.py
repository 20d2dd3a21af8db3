"""Config: config.yaml and the pydantic model agree; unknown keys and bad values are one-line ConfigErrors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from src.core.config import DEFAULT_CONFIG_PATH, AppConfig, load_config, parse_override
from src.core.errors import ConfigError, UserError


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def test_every_default_loads_and_yaml_mirrors_the_model() -> None:
    loaded = _flatten(load_config().model_dump())
    model = _flatten(AppConfig().model_dump())
    assert loaded.keys() == model.keys()
    differing = {k: (loaded[k], model[k]) for k in loaded if loaded[k] != model[k]}
    assert not differing, f"config.yaml and the model defaults differ: {differing}"
    raw = _flatten(yaml.safe_load(DEFAULT_CONFIG_PATH.read_text()))
    missing = sorted(set(model) - set(raw))
    assert not missing, f"model keys without a default in config.yaml: {missing}"


def test_config_error_is_a_user_error_and_a_value_error() -> None:
    assert issubclass(ConfigError, UserError) and issubclass(ConfigError, ValueError)
    assert ConfigError.exit_code == 2


def test_unknown_key_in_file_names_key_and_allowed(tmp_path: Path) -> None:
    p = _write(tmp_path, "pipeline:\n  fsp: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "pipeline.fsp" in msg and "fps" in msg and "queue_size" in msg
    assert str(p) in msg
    assert "\n" not in msg


def test_unknown_section_lists_sections(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "pipelines:\n  fps: 3\n"))
    msg = str(e.value)
    assert "pipelines" in msg
    for section in ("pipeline", "capture", "animation", "output"):
        assert section in msg


def test_unknown_nested_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "animation:\n  meshwarp:\n    head_margn: 1.2\n"))
    assert "animation.meshwarp.head_margn" in str(e.value) and "head_margin" in str(e.value)


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("pipeline:\n  fps: -1\n", "pipeline.fps", "greater than 0"),
        ("pipeline:\n  queue_size: 0\n", "pipeline.queue_size", "greater than or equal to 1"),
        ("animation:\n  motion_mode: sideways\n", "animation.motion_mode", "relative"),
        ("capture:\n  width_px: wide\n", "capture.width_px", "integer"),
        ("idle:\n  blink_interval_s: [6, 2]\n", "idle.blink_interval_s", "min <= max"),
    ],
)
def test_bad_value_in_file(tmp_path: Path, text: str, key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, text))
    msg = str(e.value)
    assert key in msg and hint in msg, msg
    assert "\n" not in msg


def test_unknown_key_through_set() -> None:
    with pytest.raises(ConfigError) as e:
        load_config(overrides=["pipeline.fsp=3"])
    msg = str(e.value)
    assert msg.startswith("--set") and "pipeline.fsp" in msg and "fps" in msg


@pytest.mark.parametrize(
    ("override", "key", "hint"),
    [
        ("pipeline.fps=0", "pipeline.fps", "greater than 0"),
        ("animation.motion_mode=sideways", "animation.motion_mode", "absolute"),
        ("animation.output_size_px=10", "animation.output_size_px", "64"),
        ("tracking.min_detection_confidence=2", "tracking.min_detection_confidence", "less than or equal to 1"),
    ],
)
def test_bad_value_through_set(override: str, key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(overrides=[override])
    msg = str(e.value)
    assert msg.startswith("--set") and key in msg and hint in msg, msg


def test_set_without_equals_or_key() -> None:
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(overrides=["pipeline.fps"])
    with pytest.raises(ConfigError, match="empty key"):
        load_config(overrides=["=3"])


def test_set_values_are_typed() -> None:
    cfg = load_config(overrides=["pipeline.fps=60", "idle.seed=null", "idle.blink_interval_s=[1, 3]", "capture.driver=webcam:1"])
    assert cfg.pipeline.fps == 60.0
    assert cfg.idle.seed is None
    assert cfg.idle.blink_interval_s == (1.0, 3.0)
    assert cfg.capture.driver == "webcam:1"
    assert parse_override("a.b=1.5") == (["a", "b"], 1.5)


def test_missing_and_invalid_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "pipeline:\n  fps: [1,\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_write(tmp_path, "- 1\n- 2\n"))


def test_assignment_is_validated() -> None:
    cfg = load_config()
    with pytest.raises(ValueError):
        cfg.pipeline.fps = -5  # type: ignore[assignment]


def test_cli_unknown_key_exits_2_with_one_line(run_cli) -> None:
    r = run_cli("run", "--set", "pipeline.fsp=3")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "pipeline.fsp" in lines[0] and "fps" in lines[0]


def test_cli_bad_config_file_exits_2(run_cli, tmp_path: Path) -> None:
    p = _write(tmp_path, "output:\n  queue_size: 1000\n")
    r = run_cli("run", "--config", str(p), "--output", "null", "--duration", "1")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "output.queue_size" in lines[0] and "Traceback" not in r.stderr
