"""Gymnasium adapters over the drive_sim world. Importing registers every named scenario.

    import gymnasium as gym
    import envs  # noqa: F401  (registers DriveSim/*)
    env = gym.make("DriveSim/Highway-v0", obs_type="lidar", action_type="continuous")

Registration is idempotent, uses string entry points (lazy import, safe under spawn and
forkserver subprocess envs) and has no other side effect.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from drive_sim.config import ConfigError

#: Registered id -> scenario library name. Bump the version when dynamics, reward or
#: observations change.
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
    # Any scenario file: gym.make("DriveSim/Custom-v0", scenario="path/to/file.yaml"). Without a
    # file it is the highway scenario, so the id itself is always valid.
    "DriveSim/Custom-v0": "highway",
}

OBS_TYPES = ("lidar", "camera", "multi", "kinematics")
ACTION_TYPES = ("continuous", "discrete", "meta")


def _register() -> None:
    for id_, scenario in ENV_IDS.items():
        if id_ not in registry:
            register(id=id_, entry_point="envs.driving_env:DrivingEnv", kwargs={"scenario": scenario})


def env_id(scenario: str) -> str:
    """The registered id of a scenario library name (``highway-ice``) or of a registered id itself.

    Raises:
        ConfigError: naming the known scenarios.
    """
    if scenario in ENV_IDS:
        return scenario
    by_name = {name: i for i, name in ENV_IDS.items() if i != "DriveSim/Custom-v0"}
    if scenario in by_name:
        return by_name[scenario]
    raise ConfigError(f"scenario: {scenario!r} is not known; known: {', '.join(sorted(by_name))} (or a DriveSim/* id)")


_register()

__all__ = ["ACTION_TYPES", "ENV_IDS", "OBS_TYPES", "env_id"]
