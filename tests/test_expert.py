"""The kinematics observation, the meta action and the expert driver in real environments."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from agents.policies.base import Agent
from agents.policies.expert import ExpertAgent
from drive_sim.config import ConfigError
from envs.actions import META_ACTIONS


def test_kinematics_rows_are_the_nearest_vehicles_in_the_ego_frame():
    env = gym.make("DriveSim/Highway-v0", obs_type="kinematics")
    try:
        obs, _ = env.reset(seed=3)
        for _ in range(20):
            obs, *_ = env.step(np.array([0.0, 0.2], np.float32))
        u = env.unwrapped
        k = u._obs.layout.decode(obs)
        e = u.world.ego
        xy, _, v = u.world.traffic_state()
        dist = np.hypot(xy[:, 0] - e.x_m, xy[:, 1] - e.y_m)
        near = np.argsort(dist)[: len(k["vehicles"])]
        c, s = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
        dx, dy = xy[near, 0] - e.x_m, xy[near, 1] - e.y_m
        expected = np.stack([c * dx + s * dy, -s * dx + c * dy], axis=1)
        np.testing.assert_allclose(k["vehicles"][:, :2], expected, atol=0.01)
        np.testing.assert_allclose(np.hypot(k["vehicles"][:, 2], k["vehicles"][:, 3]), v[near], atol=0.01)
        assert k["speed"] == pytest.approx(e.vx_mps, abs=0.01)
        assert k["lanes_left"] + k["lanes_right"] == 3  # four forward lanes
    finally:
        env.close()


def _drive_meta(env, actions, steps):
    info = {}
    for i in range(steps):
        _, _, term, trunc, info = env.step(actions[i] if i < len(actions) else META_ACTIONS.index("keep"))
        assert not term, info
    return info


def test_meta_left_changes_lane_and_left_from_the_leftmost_lane_is_a_counted_noop():
    env = gym.make(
        "DriveSim/LaneKeep-v0",
        obs_type="kinematics",
        action_type="meta",
        cfg={
            "scenario": {
                "world": {
                    "road": {"layout": "highway", "lanes": 3, "length_m": 3000.0},
                    "ego": {"lane": 0, "s_jitter_m": 0.0, "s_m": 200.0},
                }
            }
        },
    )
    try:
        _, info = env.reset(seed=0)
        assert info["lane"] == 0 and info["meta_noops_total"] == 0
        left = META_ACTIONS.index("left")
        info = _drive_meta(env, [left], 60)
        assert info["lane"] == 1 and abs(info["lane_offset_m"]) < 0.5
        info = _drive_meta(env, [left], 60)
        assert info["lane"] == 2
        _, _, _, _, info = env.step(left)
        assert info["meta_noop"] and info["meta_noops_total"] == 1 and info["meta_target_lane"] == 2
        faster = META_ACTIONS.index("faster")
        before = info["meta_target_speed_mps"]
        _, _, _, _, info = env.step(faster)
        assert info["meta_target_speed_mps"] == min(before + 5.0, info["speed_limit_mps"])
    finally:
        env.close()


def test_meta_action_rejects_bad_input():
    env = gym.make("DriveSim/Highway-v0", obs_type="lidar", action_type="meta")
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match="meta actions are integers in \\[0, 4\\]"):
            env.step(7)
    finally:
        env.close()


@pytest.mark.parametrize("env_id,seed", [("DriveSim/LaneKeep-v0", 0), ("DriveSim/Merge-v0", 1), ("DriveSim/Intersection-v0", 2)])
def test_expert_completes_a_route(env_id, seed):
    env = gym.make(env_id, obs_type="kinematics", action_type="continuous")
    try:
        agent = ExpertAgent.for_env(env)
        assert isinstance(agent, Agent)
        obs, _ = env.reset(seed=seed)
        agent.reset()
        done, info = False, {}
        while not done:
            obs, _, term, trunc, info = env.step(agent.act(obs))
            done = term or trunc
        assert info["is_success"], info
        assert info["route_completion"] == 1.0
    finally:
        env.close()


def test_expert_drives_the_highway_near_the_limit_without_crashing():
    env = gym.make("DriveSim/Highway-v0", obs_type="kinematics", action_type="continuous")
    try:
        agent = ExpertAgent.for_env(env)
        obs, _ = env.reset(seed=5)
        agent.reset()
        speeds = []
        for _ in range(200):
            obs, _, term, _, info = env.step(agent.act(obs))
            assert not term, info
            speeds.append(info["speed_mps"] / info["speed_limit_mps"])
        assert np.mean(speeds[50:]) > 0.75
    finally:
        env.close()


def test_expert_needs_kinematics_and_continuous(tmp_path):
    env = gym.make("DriveSim/Highway-v0", obs_type="lidar")
    try:
        with pytest.raises(ConfigError, match="needs obs_type='kinematics'"):
            ExpertAgent.for_env(env)
    finally:
        env.close()
    env = gym.make("DriveSim/Highway-v0", obs_type="kinematics")
    try:
        agent = ExpertAgent.for_env(env)
        agent.save(tmp_path / "expert.json")
        again = ExpertAgent.load(tmp_path / "expert.json")
        obs, _ = env.reset(seed=0)
        agent.reset()
        again.reset()
        np.testing.assert_array_equal(agent.act(obs), again.act(obs))
    finally:
        env.close()


def test_dqn_with_meta_actions_trains_through_sb3():
    from stable_baselines3 import DQN

    env = gym.make("DriveSim/Highway-v0", obs_type="kinematics", action_type="meta")
    try:
        model = DQN("MlpPolicy", env, learning_starts=50, buffer_size=1000, train_freq=4, seed=0, verbose=0)
        model.learn(total_timesteps=200)
        action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
        assert env.action_space.contains(int(action))
    finally:
        env.close()


def test_an_unsure_perception_stack_makes_the_expert_slower_and_keep_longer_gaps():
    """Caution 1 (``Estimate.caution``) costs the expert a quarter of the limit; it rises at once and decays over seconds."""
    from types import SimpleNamespace

    def drive(caution, traffic=0, steps=150):
        env = gym.make(
            "DriveSim/Highway-v0",
            obs_type="kinematics",
            action_type="continuous",
            cfg={"scenario": {"world": {"traffic": {"count": traffic}}}},
        )
        agent = ExpertAgent.for_env(env)
        if caution is not None:
            agent.estimate_source = lambda: SimpleNamespace(caution=caution)
        obs, _ = env.reset(seed=1)
        agent.reset()
        speeds = []
        for _ in range(steps):
            obs, *_ = env.step(agent.act(obs))
            speeds.append(env.unwrapped.world.ego.speed_mps)
        env.close()
        return float(np.mean(speeds[-50:])), agent, obs

    plain, _, _ = drive(None)
    calm, _, _ = drive(0.0)
    unsure, agent, _ = drive(1.0)
    assert calm == pytest.approx(plain)  # no caution: the same driving as on the truth
    assert unsure < 0.85 * plain, (unsure, plain)
    assert agent.caution == pytest.approx(1.0)
    agent.estimate_source = lambda: SimpleNamespace(caution=0.0)
    for _ in range(10):  # one second of a calm stack
        agent.act(np.zeros(agent.layout.size, np.float32))
    assert 0.6 < agent.caution < 0.8
