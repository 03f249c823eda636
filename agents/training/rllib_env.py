"""drive-sim envs for RLlib: an env creator that works in Ray's workers and gives images RLlib's default encoders take.

    from agents.training.rllib_env import register_rllib_envs
    register_rllib_envs()  # every id, as an RLlib env name
    config = PPOConfig().environment("DriveSim/Highway-v0", env_config={"obs_type": "camera"})

The creator imports ``drive_sim`` inside the worker (which registers the ids there) and, for the
``camera`` and ``multi`` observations, hands RLlib float32 frames in [0, 1] instead of uint8:
RLlib's default encoders take float images (its CNN filters are defined for 84x84, drive-sim's
default camera size), and an uint8 frame failed in the worker, leaving ``train()`` with empty
metrics. ``env_config`` holds the env's own arguments: ``obs_type``, ``action_type``, ``cfg``
(drive-sim's overrides), ``config`` (highway-env's keys) and ``scenario`` (for ``DriveSim/Custom-v0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

ENV_CONFIG_KEYS = ("obs_type", "action_type", "cfg", "config", "scenario")


def make_rllib_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> Any:
    """A drive-sim env as RLlib's workers make it (see the module docstring)."""
    import gymnasium as gym
    from gymnasium import spaces

    import drive_sim  # noqa: F401  (registers the ids in this worker)

    config = dict(env_config or {})
    unknown = sorted(set(config) - set(ENV_CONFIG_KEYS) - {"worker_index", "num_workers", "vector_index", "remote"})
    if unknown:
        raise ValueError(f"env_config.{unknown[0]}: not a drive-sim env argument; allowed: {', '.join(ENV_CONFIG_KEYS)}")
    kwargs = {k: config[k] for k in ENV_CONFIG_KEYS if config.get(k) is not None}
    env = gym.make(env_id, **kwargs)

    def float_image(space: spaces.Space) -> bool:
        return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3

    space = env.observation_space
    if float_image(space):
        new = spaces.Box(0.0, 1.0, space.shape, np.float32)
        return gym.wrappers.TransformObservation(env, lambda o: o.astype(np.float32) / 255.0, new)
    if isinstance(space, spaces.Dict) and any(float_image(s) for s in space.spaces.values()):
        keys = [k for k, s in space.spaces.items() if float_image(s)]
        new = spaces.Dict({k: spaces.Box(0.0, 1.0, s.shape, np.float32) if k in keys else s for k, s in space.spaces.items()})

        def scale(o: dict[str, Any]) -> dict[str, Any]:
            return {k: v.astype(np.float32) / 255.0 if k in keys else v for k, v in o.items()}

        return gym.wrappers.TransformObservation(env, scale, new)
    return env


def register_rllib_envs() -> list[str]:
    """Every drive-sim id as an RLlib env name (``ray.tune.register_env``); returns the names."""
    from ray.tune.registry import register_env

    from drive_sim.registration import ENV_IDS

    for env_id in ENV_IDS:
        register_env(env_id, lambda env_config, env_id=env_id: make_rllib_env(env_id, env_config))
    return list(ENV_IDS)
