"""The import graph follows DESIGN.md, and no module uses hidden randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("drive_sim", "perception", "envs", "agents")
# package -> project packages it must not import
FORBIDDEN = {
    "drive_sim": {"perception", "envs", "agents"},
    "perception": {"drive_sim", "envs", "agents"},
    "envs": {"agents"},
    "agents": set(),
}
# third-party modules a package must not import (drive_sim is the world: no RL, no torch)
FORBIDDEN_THIRD_PARTY = {"drive_sim": {"torch", "stable_baselines3", "gymnasium"}}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _files(pkg: str) -> list[Path]:
    return sorted((ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_forbidden_import_edges(pkg):
    bad = []
    for path in _files(pkg):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN[pkg] or top in FORBIDDEN_THIRD_PARTY.get(pkg, set()):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, "imports that DESIGN.md forbids:\n" + "\n".join(bad)


def test_layering_check_catches_a_bad_edge(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import envs.driving_env\nfrom agents import cli\n")
    assert [m for _, m in _imports(bad)] == ["envs.driving_env", "agents"]


@pytest.mark.parametrize("pkg", PACKAGES + ("scripts",))
def test_no_hidden_randomness(pkg):
    """No `random` module, no global np.random state, no time-based seeds."""
    bad = []
    for path in _files(pkg):
        text = path.read_text(encoding="utf-8")
        for line, module in _imports(path):
            if module == "random":
                bad.append(f"{path.relative_to(ROOT)}:{line} imports random")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
                if node.value.attr == "random" and getattr(node.value.value, "id", "") == "np":
                    if node.attr not in ("default_rng", "Generator"):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} uses np.random.{node.attr}")
    assert not bad, "\n".join(bad)
