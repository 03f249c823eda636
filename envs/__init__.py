"""Gymnasium adapters over the drive_sim world. Importing registers every named scenario.

    import gymnasium as gym
    import envs  # noqa: F401  (registers DriveSim/*)
    env = gym.make("DriveSim/Highway-v0", obs_type="lidar", action_type="continuous")

Registration is idempotent, uses string entry points (lazy import, safe under spawn and
forkserver subprocess envs) and has no other side effect.
"""

from __future__ import annotations

from drive_sim.config import ConfigError
from drive_sim.registration import ENV_IDS, register_envs  # the ids, registered by drive_sim (it is imported above)

OBS_TYPES = ("lidar", "camera", "multi", "kinematics", "perceived")
ACTION_TYPES = ("continuous", "discrete", "meta")


def env_id(scenario: str) -> str:
    """The registered id of a scenario library name (``highway-ice``), a registered id, or a name the reports print (``Highway-Ice-v0``).

    Raises:
        ConfigError: naming the known scenarios.
    """
    if scenario in ENV_IDS:
        return scenario
    by_name = {name: i for i, name in ENV_IDS.items() if i != "DriveSim/Custom-v0"}
    if scenario in by_name:
        return by_name[scenario]
    # The names the reports print: "Highway-v0", "Highway-Ice", "DriveSim/highway-ice-v0" (any case).
    key = scenario.strip().lower().removeprefix("drivesim/").removesuffix("-v0")
    if key in by_name:
        return by_name[key]
    raise ConfigError(f"scenario: {scenario!r} is not known; known: {', '.join(sorted(by_name))} (or a DriveSim/* id)")


register_envs()  # idempotent: importing drive_sim registered them already

__all__ = ["ACTION_TYPES", "ENV_IDS", "OBS_TYPES", "env_id"]
