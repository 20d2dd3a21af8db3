"""The layer rule of the README's Architecture section, checked on every import in src/ (lazy ones included).

Each package under src/ belongs to one layer. A module may import its own package and any package of a
lower layer; never a higher layer, never another package of its own layer. And no module imports itself
back through a chain (no import circle), so no lazy `__getattr__` is needed to dodge one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. Packages on one line are peers: neither may import the other.
LAYERS: list[tuple[str, ...]] = [
    ("core",),
    ("capture", "audio"),
    ("animation", "output"),
    ("pipeline", "training"),
    ("serve",),
    ("app",),
    ("bench",),
]
LAYER_OF = {pkg: i for i, group in enumerate(LAYERS) for pkg in group}


def module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str, src: Path) -> bool:
    p = src.parent.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def imports_of(path: Path, src: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of a `src` module in `path`, wherever it stands."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "src"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "src" and node.level == 0:
            for a in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{node.module}.{a.name}"
                found.append((node.lineno, sub if is_module(sub, src) else node.module))
    return found


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def all_modules(src: Path = SRC) -> dict[str, Path]:
    return {module_name(p, src): p for p in sorted(src.rglob("*.py"))}


def layer_violations(modules: dict[str, Path], src: Path = SRC) -> list[str]:
    bad = []
    for name, path in modules.items():
        pkg = package_of(name)
        if pkg is None:
            continue
        if pkg not in LAYER_OF:
            bad.append(f"{path}: package src.{pkg} has no layer; add it to LAYERS and to the README's Architecture section")
            continue
        for line, target in imports_of(path, src):
            tpkg = package_of(target)
            if tpkg is None or tpkg == pkg:
                continue
            if tpkg not in LAYER_OF or LAYER_OF[tpkg] >= LAYER_OF[pkg]:
                why = "a peer" if LAYER_OF.get(tpkg) == LAYER_OF[pkg] else "a higher layer"
                bad.append(f"{path}:{line}: src.{pkg} imports {target} ({why})")
    return bad


def import_cycles(modules: dict[str, Path], src: Path = SRC) -> list[list[str]]:
    graph = {name: sorted({t for _, t in imports_of(path, src) if t != name and t in modules}) for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    return cycles


def test_no_import_runs_up_or_across_the_layers() -> None:
    bad = layer_violations(all_modules())
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_circle() -> None:
    cycles = import_cycles(all_modules())
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_lazy_module_getattr_in_packages() -> None:
    """A package-level `__getattr__` only existed to dodge import circles."""
    offenders = [str(p) for p in SRC.rglob("__init__.py") if "def __getattr__" in p.read_text()]
    assert not offenders, offenders


@pytest.mark.parametrize("case", ["upward", "peer", "circle"])
def test_the_checker_catches_what_it_should(tmp_path: Path, case: str) -> None:
    """Negative controls on a scratch tree: an upward import, a peer import and a circle are all reported."""
    root = tmp_path / "src"
    for pkg in ("core", "capture", "audio", "pipeline"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    body = {
        "upward": {"core/a.py": "from src.pipeline import b\n", "pipeline/b.py": ""},
        "peer": {"capture/a.py": "import src.audio.b\n", "audio/b.py": ""},
        "circle": {"pipeline/a.py": "from src.pipeline import b\n", "pipeline/b.py": "def f():\n    from src.pipeline import a\n"},
    }[case]
    for rel, text in body.items():
        (root / rel).write_text(text)
    modules = all_modules(root)
    if case == "circle":
        assert import_cycles(modules, root)
    else:
        assert layer_violations(modules, root)
