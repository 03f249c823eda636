"""BatchedVecEnv (issue 20): SB3 trains on batched drive-sim worlds, with the same episodes as on gym.make envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import envs  # noqa: F401
from agents.training.batched_vec import BatchedVecEnv, split

KW = {"obs_type": "lidar", "action_type": "continuous"}


def _rollout(vec, actions):
    vec.seed(1000)
    out = [vec.reset().copy()]
    for a in actions:
        obs, rewards, dones, infos = vec.step(a)
        out.append((obs.copy(), rewards.copy(), dones.copy()))
        for i in np.flatnonzero(dones):
            out.append((infos[i]["terminal_observation"].copy(), infos[i]["TimeLimit.truncated"], infos[i]["episode"]["l"]))
    return out


def _equal(a, b):
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b


@pytest.mark.parametrize("workers", [1, 2])
def test_batched_vec_env_gives_the_episodes_of_gym_make_envs(workers):
    n = 4
    rng = np.random.default_rng(0)
    actions = [np.clip(rng.normal([0.0, 0.3], [0.15, 0.4], size=(n, 2)), -1, 1).astype(np.float32) for _ in range(80)]

    def make(i):
        def thunk():
            from stable_baselines3.common.monitor import Monitor

            return Monitor(gym.make("DriveSim/Highway-v0", **KW))

        return thunk

    ref = DummyVecEnv([make(i) for i in range(n)])
    batched = BatchedVecEnv("DriveSim/Highway-v0", KW, n_envs=n, seed=1000, workers=workers)
    try:
        a, b = _rollout(ref, actions), _rollout(batched, actions)
        assert batched.num_envs == n and batched.observation_space == ref.observation_space
        assert len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
        assert len(a) > len(actions) + 1, "some episode ended (terminal_observation and the Monitor entry compared)"
        assert batched.get_attr("horizon_steps", [n - 1]) == [ref.get_attr("horizon_steps", [n - 1])[0]]
    finally:
        batched.close()
        ref.close()


def test_ppo_learns_on_the_batched_vec_env_in_process():
    """A short PPO run on 4 batched worlds (one process): the loss is finite and episodes are logged."""
    from stable_baselines3 import PPO

    vec = BatchedVecEnv("DriveSim/LaneKeep-v0", {**KW, "cfg": {"scenario": {"time_limit_s": 5.0}}}, n_envs=4, seed=1000)
    try:
        model = PPO("MlpPolicy", vec, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
        model.learn(256)
        assert len(model.ep_info_buffer) > 0 and all(np.isfinite(e["r"]) for e in model.ep_info_buffer)
    finally:
        vec.close()


def test_split_and_bad_workers():
    assert split(16, 2) == [8, 8] and split(5, 2) == [3, 2] and sum(split(7, 3)) == 7
    with pytest.raises(ValueError, match=r"workers: must be between 1 and n_envs \(4\), got 5"):
        split(4, 5)
