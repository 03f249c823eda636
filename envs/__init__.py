"""Gymnasium adapters over the drive_sim world. Importing registers every named scenario.

    import gymnasium as gym
    import envs  # noqa: F401  (registers DriveSim/*)
    env = gym.make("DriveSim/Highway-v0", obs_type="lidar", action_type="continuous")

Registration is idempotent, uses string entry points (lazy import, safe under spawn and
forkserver subprocess envs) and has no other side effect.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

#: Registered id -> scenario library name. Bump the version when dynamics, reward or
#: observations change.
ENV_IDS: dict[str, str] = {
    "DriveSim/Highway-v0": "highway",
    "DriveSim/LaneKeep-v0": "lanekeep",
}

OBS_TYPES = ("lidar", "camera", "multi")
ACTION_TYPES = ("continuous", "discrete")


def _register() -> None:
    for env_id, scenario in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point="envs.driving_env:DrivingEnv", kwargs={"scenario": scenario})


_register()

__all__ = ["ACTION_TYPES", "ENV_IDS", "OBS_TYPES"]
