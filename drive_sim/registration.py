"""The Gymnasium ids of the scenario library, registered by ``import drive_sim``.

The one module of ``drive_sim`` that imports Gymnasium (docs/design.md, "Registration"): ``drive_sim``
is the package with a name no user project shadows, so importing it is what makes the ids
available, also in Ray workers, rl-zoo3 (``--gym-packages drive_sim``) and module-prefixed ids
(``gym.make("drive_sim:DriveSim/Highway-v0")``). It imports nothing of the environments until an
env is made: the entry point is this module's ``DrivingEnv``, looked up when asked for, which
imports drive-sim's own ``envs`` package from where drive-sim is installed, not whatever ``envs``
the working folder holds, and explains in one line when a user's package of that name is already
in the way.

Registration is idempotent and has no other side effect.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

from gymnasium.envs.registration import register, registry

#: Registered id -> (scenario library name, steps of its time limit). Bump the version when
#: dynamics, reward or observations change. The step counts are the library files' time_limit_s
#: over the 0.1 s control period (tests/test_scenarios.py checks them); Custom-v0 has none (any file).
SCENARIO_IDS: dict[str, tuple[str, int | None]] = {
    "DriveSim/Highway-v0": ("highway", 400),
    "DriveSim/LaneKeep-v0": ("lanekeep", 600),
    "DriveSim/Merge-v0": ("merge", 600),
    "DriveSim/Intersection-v0": ("intersection", 900),
    "DriveSim/Roundabout-v0": ("roundabout", 600),
    "DriveSim/Highway-Wet-v0": ("highway-wet", 400),
    "DriveSim/Highway-Ice-v0": ("highway-ice", 400),
    "DriveSim/Highway-Fog-v0": ("highway-fog", 400),
    "DriveSim/Highway-Night-v0": ("highway-night", 400),
    "DriveSim/Highway-Dense-v0": ("highway-dense", 400),
    "DriveSim/LaneKeep-Ice-v0": ("lanekeep-ice", 900),
    "DriveSim/Highway-ChangingWeather-v0": ("highway-changingweather", 400),
    "DriveSim/Highway-SensorFault-v0": ("highway-sensorfault", 400),
    # Any scenario file: gym.make("DriveSim/Custom-v0", scenario="path/to/file.yaml"). Without a
    # file it is the highway scenario, so the id itself is always valid.
    "DriveSim/Custom-v0": ("highway", None),
}
#: Registered id -> scenario library name.
ENV_IDS: dict[str, str] = {k: name for k, (name, _) in SCENARIO_IDS.items()}
#: drive-sim's packages besides this one; a user's package of the same name must not stand in for them.
PROJECT_PACKAGES = ("envs", "agents", "perception")
ENTRY_POINT = "drive_sim.registration:DrivingEnv"


def register_envs() -> None:
    """Register every id (those already registered are left as they are)."""
    for env_id, (scenario, steps) in SCENARIO_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, kwargs={"scenario": scenario}, max_episode_steps=steps)


class ShadowedPackage(ImportError):
    """A package of the user's, named like one of drive-sim's, is imported where drive-sim's must be."""


def project_package(name: str) -> Any:
    """drive-sim's own top-level package ``name`` (``envs``, ``agents``, ``perception``), imported from where drive-sim is installed.

    A working folder that holds a package of that name (common in RL projects) comes first on
    ``sys.path``; drive-sim's is imported from its own place instead when nothing of that name is
    imported yet.

    Raises:
        ShadowedPackage: a different package of that name is already imported (one line naming both).
    """
    root = Path(__file__).resolve().parent.parent
    ours = root / name / "__init__.py"
    loaded = sys.modules.get(name)
    if loaded is not None:
        where = Path(getattr(loaded, "__file__", "") or "")
        if where.exists() and where.resolve() == ours.resolve():
            return loaded
        raise ShadowedPackage(
            f"drive-sim: the package '{name}' imported here is {where or loaded!r}, not drive-sim's ({ours.parent}); "
            f"a package of yours named {name} shadows it: rename yours (drive-sim's {', '.join(PROJECT_PACKAGES)} are fixed names)"
        )
    spec = importlib.machinery.PathFinder.find_spec(name, [str(root)])
    if spec is None or spec.loader is None:
        raise ShadowedPackage(f"drive-sim: its package '{name}' is missing from {root}; reinstall drive-sim")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def __getattr__(attr: str) -> Any:
    """``DrivingEnv``, the entry point, imported when Gymnasium asks for it (not at ``import drive_sim``)."""
    if attr == "DrivingEnv":
        for name in ("perception", "envs"):  # what the environments import of drive-sim's own packages
            project_package(name)
        from envs.driving_env import DrivingEnv

        return DrivingEnv
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
