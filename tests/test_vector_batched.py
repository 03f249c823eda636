"""The batched vector env (envs.vector, issue 20): gym.make_vec gives N worlds in one process whose rows equal the single env's."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from envs.vector import DrivingVectorEnv


def _digest(x):
    if isinstance(x, dict):
        return tuple((k, _digest(v)) for k, v in sorted(x.items()))
    return (x.dtype.str, x.shape, x.tobytes())


def _row(obs, i):
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def _single_rows(env_id, kwargs, seed, actions):
    """One world alone (gym.make), driven with next-step autoreset by hand: what world ``i`` of the vector env must give."""
    env = gym.make(env_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    rows, done = [(_digest(obs), 0.0, False, False)], False
    for a in actions:
        if done:
            obs, _ = env.reset()
            rows.append((_digest(obs), 0.0, False, False))
            done = False
            continue
        obs, r, te, tr, _ = env.step(a)
        rows.append((_digest(obs), float(r), bool(te), bool(tr)))
        done = te or tr
    env.close()
    return rows


CASES = [
    ("DriveSim/Highway-v0", {"obs_type": "lidar", "action_type": "continuous"}, 120),
    ("DriveSim/Highway-Dense-v0", {"obs_type": "kinematics", "action_type": "meta"}, 150),
    ("DriveSim/Intersection-v0", {"obs_type": "lidar", "action_type": "continuous"}, 80),
    ("DriveSim/LaneKeep-v0", {"obs_type": "multi", "action_type": "continuous"}, 60),
]


@pytest.mark.parametrize(("env_id", "kwargs", "steps"), CASES, ids=[c[0].split("/")[1] + "-" + c[1]["obs_type"] for c in CASES])
def test_batched_rows_equal_single_env_rows(env_id, kwargs, steps):
    n = 3
    rng = np.random.default_rng(0)
    if kwargs["action_type"] == "meta":
        actions = [rng.integers(0, 5, size=n) for _ in range(steps)]
    else:
        actions = [np.clip(rng.normal([0.0, 0.3], [0.1, 0.4], size=(n, 2)), -1, 1).astype(np.float32) for _ in range(steps)]
    venv = gym.make_vec(env_id, num_envs=n, **kwargs)
    assert isinstance(venv, DrivingVectorEnv) and venv.num_envs == n
    obs, infos = venv.reset(seed=5)
    assert venv.observation_space.contains(obs) and infos["_route_completion"].all()
    rows = [[(_digest(_row(obs, i)), 0.0, False, False)] for i in range(n)]
    ends = 0
    for a in actions:
        obs, r, te, tr, infos = venv.step(a)
        assert r.dtype == np.float64 and te.shape == (n,) and "speed_mps" in infos
        for i in range(n):
            rows[i].append((_digest(_row(obs, i)), float(r[i]), bool(te[i]), bool(tr[i])))
        ends += int(np.count_nonzero(te | tr))
    venv.close()
    for i in range(n):
        single_actions = [a[i] if kwargs["action_type"] != "meta" else int(a[i]) for a in actions]
        assert rows[i] == _single_rows(env_id, kwargs, 5 + i, single_actions), f"world {i}"
    if kwargs["action_type"] == "continuous" and env_id != "DriveSim/LaneKeep-v0":
        assert ends > 0, "some episode ended, so the autoreset was exercised"


def test_same_step_autoreset_gives_final_obs_and_the_next_episode():
    venv = DrivingVectorEnv(2, "highway", "lidar", "continuous", autoreset_mode="same_step")
    obs, _ = venv.reset(seed=[11, 12])
    hard_left = np.tile(np.array([1.0, 1.0], np.float32), (2, 1))  # off the road within seconds
    for _ in range(200):
        obs, r, te, tr, infos = venv.step(hard_left)
        if (te | tr).any():
            break
    done = te | tr
    assert done.any()
    i = int(np.flatnonzero(done)[0])
    assert infos["_final_obs"][i] and infos["final_info"]["_route_completion"][i]
    assert not np.array_equal(infos["final_obs"][i], obs[i]), "the returned observation starts the next episode"
    assert venv.envs[i].world.steps == 0  # reset already
    venv.close()


def test_bad_arguments_are_one_clear_line():
    with pytest.raises(ValueError, match="num_envs: must be an integer of 1 or more"):
        DrivingVectorEnv(0)
    with pytest.raises(ValueError, match="autoreset_mode: .Disabled. is not allowed"):
        DrivingVectorEnv(1, autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    with pytest.raises(ValueError, match="seed: a list of seeds needs one per world"):
        DrivingVectorEnv(2).reset(seed=[1])
