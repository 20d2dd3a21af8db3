"""The config is read-only while a job runs: no module in src/ (the benchmark's set-up aside) assigns to a
field of it. What a person changes while streaming lives in `RunState` (src/core/run_state.py)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
CONFIG_NAMES = {"config", "cfg", "acfg", "anim"}  # the names a config (or one of its sections) goes by in src/


def _root_name(node: ast.expr) -> str | None:
    """`config` for `config.a.b`, `self.config.a` and `self.config`; None for anything else."""
    while isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id == "self" and node.attr in CONFIG_NAMES:
            return node.attr
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def config_writes(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if "bench" in path.relative_to(root).parts:
            continue  # benchmarks build their configs before a run starts
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
            for t in targets:
                if isinstance(t, ast.Attribute) and _root_name(t) in CONFIG_NAMES and not (
                    isinstance(t.value, ast.Name) and t.value.id == "self"
                ):
                    found.append(f"{path}:{node.lineno}: {ast.unparse(t)} = ...")
    return found


def test_nothing_in_src_writes_to_the_config() -> None:
    writes = config_writes(SRC)
    assert not writes, "config written while running (use RunState for run-time toggles):\n" + "\n".join(writes)


def test_the_check_sees_a_write(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f(config, self):\n    config.animation.motion_mode = 'absolute'\n"
                                   "    self.config.audio.language = 'de'\n")
    assert len(config_writes(tmp_path)) == 2
