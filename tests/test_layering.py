"""The import graph follows DESIGN.md and docs/design.md ("Where things live"): no wrong edge, no cycle, no hidden randomness.

Every import counts, also the ones inside functions (a lazy import is still a dependency).
"""

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
# The one named exception (docs/design.md, "Registration"): drive_sim.registration registers the ids with
# Gymnasium when drive_sim is imported, and its entry point imports drive-sim's own envs package when an env is made.
EXCEPTIONS = {"drive_sim/registration.py": {"gymnasium", "envs"}}
# The rooms of agents/, bottom first: a module may import its own room and the rooms below it.
AGENT_ROOMS = ("policies", "evaluation", "training", "datasets", "reports", "cli")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _files(pkg: str, root: Path = ROOT) -> list[Path]:
    return sorted((root / pkg).rglob("*.py"))


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, dict[str, int]]:
    """Module -> {project module it imports: line}; ``from a.b import c`` counts as ``a.b.c`` when that is a module."""
    modules = {_module_name(p, root): p for pkg in packages for p in _files(pkg, root)}

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            if ".".join(parts[:k]) in modules:
                return ".".join(parts[:k])
        return None

    graph: dict[str, dict[str, int]] = {}
    for mod, path in modules.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
                    base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
                targets = [resolve(f"{base}.{a.name}") or resolve(base) for a in node.names]
            else:
                continue
            for t in targets:
                if t is not None and t != mod:
                    edges.setdefault(t, node.lineno)
        graph[mod] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import cycles: strongly connected components of more than one module (Tarjan), each as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(_closed_path(graph, sorted(comp)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _closed_path(graph: dict[str, dict[str, int]], comp: list[str]) -> list[str]:
    """A cycle through the component's first module, for the message (a -> b -> a)."""
    members, start = set(comp), comp[0]
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for w in sorted(graph.get(path[-1], {})):
            if w == start:
                return [*path, start]
            if w in members and w not in path:
                paths.append([*path, w])
    return comp


def room_of(module: str) -> str | None:
    """The room of an ``agents`` module (``agents.training.trainer`` -> ``training``); None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def wrong_room_edges(graph: dict[str, dict[str, int]]) -> list[str]:
    """Edges inside agents/ that go up the rooms (or leave them), as 'module:line imports target (why)'."""
    bad = []
    for mod, edges in sorted(graph.items()):
        if not mod.startswith("agents"):
            continue
        room = room_of(mod)
        if room is not None and room not in AGENT_ROOMS:
            bad.append(f"{mod} is in no room; put it in one of agents.{{{', '.join(AGENT_ROOMS)}}}")
            continue
        for target, line in sorted(edges.items()):
            if not target.startswith("agents"):
                continue
            t_room = room_of(target)
            if room is None:
                bad.append(f"{mod}:{line} imports {target} (the agents package itself imports nothing)")
            elif t_room is None or t_room not in AGENT_ROOMS or AGENT_ROOMS.index(t_room) > AGENT_ROOMS.index(room):
                bad.append(
                    f"{mod}:{line} imports {target} (agents.{room} may import only {', '.join(AGENT_ROOMS[: AGENT_ROOMS.index(room) + 1])})"
                )
    return bad


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_forbidden_import_edges(pkg):
    bad = []
    for path in _files(pkg):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in EXCEPTIONS.get(path.relative_to(ROOT).as_posix(), set()):
                continue
            if top in FORBIDDEN[pkg] or top in FORBIDDEN_THIRD_PARTY.get(pkg, set()):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, "imports that DESIGN.md forbids:\n" + "\n".join(bad)


def test_layering_check_catches_a_bad_edge(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import envs.driving_env\nfrom agents import cli\n")
    assert [m for _, m in _imports(bad)] == ["envs.driving_env", "agents"]


def test_agents_rooms_import_only_downwards():
    bad = wrong_room_edges(import_graph(ROOT))
    assert not bad, "agents/ rooms import upwards (docs/design.md, 'Where things live'):\n" + "\n".join(bad)


def test_the_exception_is_one_module_and_only_its_entry_points_reach_envs():
    graph = import_graph(ROOT)
    upward = {
        m: sorted(t for t in edges if t.split(".")[0] in ("envs", "agents", "perception"))
        for m, edges in graph.items()
        if m.startswith("drive_sim")
    }
    assert {m: t for m, t in upward.items() if t} == {"drive_sim.registration": ["envs.driving_env", "envs.vector"]}


def test_no_import_cycles():
    graph = import_graph(ROOT)
    # The registration's entry points import envs.driving_env and envs.vector when an env is made, never at import: drop
    # those edges, which are lazy by design (Gymnasium's string entry points are the same idea), and look for cycles in the rest.
    graph["drive_sim.registration"] = {
        k: v for k, v in graph["drive_sim.registration"].items() if k not in ("envs.driving_env", "envs.vector")
    }
    found = cycles(graph)
    assert not found, "import cycles (move the shared piece to the lower module that owns it):\n" + "\n".join(" -> ".join(c) for c in found)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_room_check_fails_on_a_planted_upward_edge(tmp_path):
    root = _tree(
        tmp_path,
        {
            "agents/__init__.py": "",
            "agents/cli.py": "from agents.training.trainer import train\n",
            "agents/policies/__init__.py": "",
            "agents/policies/base.py": "def f():\n    from agents.training import trainer  # the plant, lazy\n",
            "agents/training/__init__.py": "",
            "agents/training/trainer.py": "from agents.policies.base import f\n",
            "agents/helpers.py": "",
        },
    )
    bad = wrong_room_edges(import_graph(root, ("agents",)))
    assert bad == [
        "agents.helpers is in no room; put it in one of agents.{policies, evaluation, training, datasets, reports, cli}",
        "agents.policies.base:2 imports agents.training.trainer (agents.policies may import only policies)",
    ]


def test_the_cycle_check_fails_on_a_planted_cycle(tmp_path):
    root = _tree(
        tmp_path,
        {
            "envs/__init__.py": "",
            "envs/a.py": "from envs.b import x\n",
            "envs/b.py": "def g():\n    from envs import c\n",
            "envs/c.py": "import envs.a\n",
            "envs/d.py": "import envs.a\n",
        },
    )
    assert cycles(import_graph(root, ("envs",))) == [["envs.a", "envs.b", "envs.c", "envs.a"]]
    (root / "envs/c.py").write_text("")
    assert cycles(import_graph(root, ("envs",))) == []


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
