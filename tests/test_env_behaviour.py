"""Episode logic, info metrics, reward terms, rendering and bad input of DrivingEnv."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import envs
from drive_sim.config import ConfigError
from envs.config import RewardConfig
from envs.observations import state_feature_names
from envs.rewards import TERMS

METRICS = {
    "route_completion",
    "collided",
    "off_road",
    "speed_mps",
    "lane_offset_m",
    "jerk_mps3",
    "reward_terms",
    "is_success",
    "action_clipped",
}


def test_info_carries_metrics_and_reward_is_weighted_sum_of_terms():
    env = gym.make("DriveSim/Highway-v0")
    obs, info = env.reset(seed=0)
    assert METRICS <= set(info)
    weights = RewardConfig().weights()
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(np.array([0.0, 0.5], np.float32))
        assert set(info["reward_terms"]) == set(TERMS)
        assert reward == pytest.approx(sum(weights[k] * v for k, v in info["reward_terms"].items()))
    assert info["speed_mps"] > 15 and 0.0 < info["route_completion"] < 1.0
    assert info["reward_terms"]["progress"] > 0.5
    env.close()


def test_lidar_observation_layout():
    env = gym.make("DriveSim/LaneKeep-v0", obs_type="lidar")
    obs, _ = env.reset(seed=1)
    cfg = env.unwrapped.config.observation
    names = state_feature_names(cfg, ("lidar",))
    assert obs.shape == (64 + len(names),) and obs.dtype == np.float32
    state = dict(zip(names, obs[64:], strict=True))
    assert state["lidar_valid"] == 1.0
    assert state["speed_limit"] == pytest.approx(20.0 / 40.0)
    assert abs(state["lane_offset"]) < 0.01 and abs(state["heading_error"]) < 0.01
    assert state["route_remaining"] == pytest.approx(1.0)
    env.close()


def test_off_road_terminates_with_failure():
    env = gym.make("DriveSim/LaneKeep-v0")
    env.reset(seed=0)
    for _ in range(200):
        _, reward, terminated, truncated, info = env.step(np.array([-0.6, 0.5], np.float32))
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert (info["off_road"] or info["collided"]) and not info["is_success"]
    env.close()


def test_collision_terminates_with_penalty():
    env = gym.make("DriveSim/Highway-v0")
    env.reset(seed=0)
    world = env.unwrapped.world
    f = world.frenet
    world.traffic.set_state(
        s=[f.s_m + 25.0] + [f.s_m + 500.0 + 20 * i for i in range(19)], lane=[f.lane] * 20, v=[0.0] + [25.0] * 19, v0=[0.0] + [25.0] * 19
    )
    world.place_traffic()
    for _ in range(100):
        _, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        if terminated:
            break
    assert terminated and info["collided"] and info["collision_kind"] == "vehicle"
    assert info["reward_terms"]["collision"] == -1.0 and reward < -5.0
    env.close()


def test_time_limit_truncates_and_survival_is_success():
    env = gym.make("DriveSim/Highway-v0", cfg={"scenario": {"time_limit_s": 2.0, "world": {"traffic": {"count": 0}}}})
    env.reset(seed=0)
    steps = 0
    while steps < 100:
        _, _, terminated, truncated, info = env.step(np.array([0.0, 0.0], np.float32))
        steps += 1
        if terminated or truncated:
            break
    assert truncated and not terminated and steps == 20
    assert info["is_success"]
    env.close()


def test_route_completion_terminates_with_success():
    env = gym.make("DriveSim/LaneKeep-v0", cfg={"scenario": {"route_length_m": 30.0}})
    env.reset(seed=0)
    for _ in range(100):
        _, _, terminated, truncated, info = env.step(np.array([0.0, 0.2], np.float32))
        if terminated or truncated:
            break
    assert terminated and info["route_completion"] == 1.0 and info["is_success"]
    env.close()


def test_out_of_range_action_is_clipped_and_counted_nan_raises():
    env = gym.make("DriveSim/Highway-v0", disable_env_checker=True)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([3.0, -2.0], np.float32))
    assert info["action_clipped"] == 2 and info["actions_clipped_total"] == 2
    _, _, _, _, info = env.step(np.array([0.5, 0.5], np.float32))
    assert info["action_clipped"] == 0 and info["actions_clipped_total"] == 2
    with pytest.raises(ValueError, match="not finite"):
        env.step(np.array([np.nan, 0.0], np.float32))
    env.close()
    denv = gym.make("DriveSim/Highway-v0", action_type="discrete", disable_env_checker=True)
    denv.reset(seed=0)
    with pytest.raises(ValueError, match=r"integers in \[0, 14\]"):
        denv.step(15)
    denv.close()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"obs_type": "radar"}, "obs_type: 'radar' is not allowed; allowed: camera, kinematics, lidar, multi"),
        ({"action_type": "joystick"}, "action_type: 'joystick' is not allowed; allowed: continuous, discrete, meta"),
        ({"cfg": {"scenario": {"world": {"traffic": {"count": -3}}}}}, "traffic.count: must be 0 or more"),
        ({"cfg": {"scenario": {"world": {"trafic": {}}}}}, "unknown config key 'scenario.world.trafic'"),
        ({"cfg": {"reward": {"speed": "fast"}}}, "reward.speed: expected a number"),
    ],
)
def test_bad_config_gives_clear_error(kwargs, match):
    with pytest.raises(ConfigError, match=match.replace("(", r"\(").replace(")", r"\)")):
        gym.make("DriveSim/Highway-v0", **kwargs)


def test_unknown_scenario_lists_known_ones():
    from envs.driving_env import DrivingEnv

    with pytest.raises(ConfigError, match="'moon' is not a known scenario; known: highway, highway-changingweather, "):
        DrivingEnv(scenario="moon")


def test_render_rgb_array_is_the_composed_video_frame():
    env = gym.make("DriveSim/Highway-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (360, 640, 3) and frame.dtype == np.uint8
    # The chase view (top left two thirds): the red ego car in its lower middle.
    middle = frame[140:230, 170:250].reshape(-1, 3).astype(int)
    assert np.any((middle[:, 0] > 150) & (middle[:, 1] < 80) & (middle[:, 2] < 80))
    env.close()
    chase_cfg = {"render": {"panels": ["chase"], "width": 480, "height": 270}}
    chase_only = gym.make("DriveSim/Highway-v0", render_mode="rgb_array", cfg=chase_cfg)
    chase_only.reset(seed=0)
    frame = chase_only.render()
    assert frame.shape == (270, 480, 3)
    middle = frame[150:250, 190:290].reshape(-1, 3).astype(int)
    assert np.any((middle[:, 0] > 150) & (middle[:, 1] < 80) & (middle[:, 2] < 80))
    chase_only.close()
    plain = gym.make("DriveSim/Highway-v0")
    plain.reset(seed=0)
    assert plain.render() is None
    plain.close()


def test_nothing_printed_at_import():
    code = "import drive_sim, drive_sim.world, envs, agents, perception, agents.cli, agents.training.trainer, agents.reports.perf"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""


def test_world_creation_prints_nothing():
    code = "import gymnasium as gym, envs\nenv = gym.make('DriveSim/Highway-v0')\nenv.reset(seed=0)\nenv.close()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""


def test_registered_kwargs():
    assert gym.spec("DriveSim/LaneKeep-v0").kwargs == {"scenario": "lanekeep"}
    assert envs.ENV_IDS["DriveSim/Highway-v0"] == "highway"
