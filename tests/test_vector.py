from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv

import envs  # noqa: F401


def test_gymnasium_async_vector_env_two_workers():
    # Spawned workers do not inherit the registry: the "drive_sim:" prefix makes gym.make import it
    # (the SubprocVecEnv pitfall of HighwayEnv #648).
    vec = gym.vector.AsyncVectorEnv([lambda: gym.make("drive_sim:DriveSim/Highway-v0") for _ in range(2)], context="spawn")
    try:
        obs, info = vec.reset(seed=[3, 4])
        assert obs.shape == (2, *gym.make("DriveSim/Highway-v0").observation_space.shape)
        assert not np.array_equal(obs[0], obs[1])
        for _ in range(30):
            obs, reward, terminated, truncated, info = vec.step(np.tile([0.0, 0.2], (2, 1)).astype(np.float32))
        assert np.all(np.isfinite(reward)) and "route_completion" in info
    finally:
        vec.close()


def test_sb3_subproc_vec_env_two_workers():
    vec = make_vec_env(
        "drive_sim:DriveSim/LaneKeep-v0", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": "spawn"}
    )
    try:
        obs = vec.reset()
        assert obs.shape[0] == 2
        for _ in range(30):
            obs, reward, done, infos = vec.step(np.tile([0.0, 0.2], (2, 1)).astype(np.float32))
        assert len(infos) == 2 and all("speed_mps" in i for i in infos)
    finally:
        vec.close()
