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

#: Registered id -> scenario library name. Bump the version when dynamics, reward or observations change.
#: No id registers ``max_episode_steps``: Gymnasium would cut every episode there with its TimeLimit
#: wrapper, also one whose time limit a config made longer (highway-env's ``duration``); the env
#: ends its episodes at its own time limit and ``env.spec.max_episode_steps`` says how many steps that is.
ENV_IDS: dict[str, str] = {
    "DriveSim/Highway-v0": "highway",
    "DriveSim/LaneKeep-v0": "lanekeep",
    "DriveSim/Merge-v0": "merge",
    "DriveSim/Intersection-v0": "intersection",
    "DriveSim/Roundabout-v0": "roundabout",
    "DriveSim/Highway-Wet-v0": "highway-wet",
    "DriveSim/Highway-Ice-v0": "highway-ice",
    "DriveSim/Highway-Fog-v0": "highway-fog",
    "DriveSim/Highway-Night-v0": "highway-night",
    "DriveSim/Highway-Dense-v0": "highway-dense",
    "DriveSim/LaneKeep-Ice-v0": "lanekeep-ice",
    "DriveSim/Highway-ChangingWeather-v0": "highway-changingweather",
    "DriveSim/Highway-SensorFault-v0": "highway-sensorfault",
    "DriveSim/Highway-Tunnel-v0": "highway-tunnel",
    "DriveSim/Highway-RadarFault-v0": "highway-radarfault",
    # Any scenario file: gym.make("DriveSim/Custom-v0", scenario="path/to/file.yaml"). Without a
    # file it is the highway scenario, so the id itself is always valid.
    "DriveSim/Custom-v0": "highway",
}
#: drive-sim's packages besides this one; a user's package of the same name must not stand in for them.
PROJECT_PACKAGES = ("envs", "agents", "perception")
ENTRY_POINT = "drive_sim.registration:DrivingEnv"
#: ``gym.make_vec(id, num_envs=N)``: N worlds in this process, their traffic batched (``envs.vector``).
VECTOR_ENTRY_POINT = "drive_sim.registration:DrivingVectorEnv"


def register_envs() -> None:
    """Register every id (those already registered are left as they are)."""
    for env_id, scenario in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT, kwargs={"scenario": scenario})


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
    """``DrivingEnv`` and ``DrivingVectorEnv``, the entry points, imported when Gymnasium asks for them (not at ``import drive_sim``)."""
    if attr in ("DrivingEnv", "DrivingVectorEnv"):
        for name in ("perception", "envs"):  # what the environments import of drive-sim's own packages
            project_package(name)
        if attr == "DrivingEnv":
            from envs.driving_env import DrivingEnv

            return DrivingEnv
        from envs.vector import DrivingVectorEnv

        return DrivingVectorEnv
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
