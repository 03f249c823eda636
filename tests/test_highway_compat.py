"""highway-env's config keys on drive-sim ids (issue 17): each translated key changes what it says; the rest are named."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import drive_sim  # noqa: F401
from drive_sim.config import ConfigError
from envs.highway_compat import ALWAYS, CLOSEST, KEYS, highway_env_density


def _make(config, **kwargs):
    return gym.make("DriveSim/Highway-v0", config=config, **kwargs)


def _steps_time(env):
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample() * 0)
    return info["time_s"]


# key -> (value, what it must change: a function of the made env)
EFFECTS = {
    "lanes_count": (3, lambda e: e.unwrapped.world.road.n_lanes == 3),
    "vehicles_count": (7, lambda e: (e.reset(seed=0), e.unwrapped.world.traffic.count == 7)[1]),
    "duration": (12, lambda e: e.spec.max_episode_steps == 120 and e.unwrapped.scenario.time_limit_s == 12.0),
    "policy_frequency": (5, lambda e: abs(_steps_time(e) - 0.2) < 1e-9),
    "simulation_frequency": (40, lambda e: e.unwrapped.world.cfg.substeps == 4),
    "collision_reward": (-2.5, lambda e: e.unwrapped.config.reward.collision == 2.5),
    "high_speed_reward": (0.3, lambda e: e.unwrapped.config.reward.speed == 0.3),
    "screen_width": (320, lambda e: (e.reset(seed=0), e.render().shape[1] == 320)[1]),
    "screen_height": (200, lambda e: (e.reset(seed=0), e.render().shape[0] == 200)[1]),
}


def test_every_translated_key_has_a_test():
    assert set(EFFECTS) == set(KEYS)


@pytest.mark.parametrize("key", sorted(KEYS))
def test_each_translated_key_changes_what_it_says(key):
    value, holds = EFFECTS[key]
    plain = _make({}, render_mode="rgb_array")
    env = _make({key: value}, render_mode="rgb_array")
    try:
        assert holds(env), f"{key}={value!r} did not take effect"
        assert not holds(plain), f"{key}: the default already looks like {value!r}; the test shows nothing"
    finally:
        env.close()
        plain.close()


def _cars(env):
    env.reset(seed=0)
    return env.unwrapped.world.traffic.count


def test_vehicles_density_sets_highway_env_s_density_around_the_ego_car():
    # highway-env packs its traffic (12 + speed) * exp(-lanes / 8) / density metres apart on random lanes.
    assert highway_env_density(1.0, 4) == pytest.approx(1000.0 / (34.5 * np.exp(-0.5) * 4))
    one, two = _make({"vehicles_density": 1}), _make({"vehicles_density": 2})
    window_km = (250.0 + 120.0) / 1000.0  # Highway-v0's traffic window around the ego car
    assert _cars(one) == round(highway_env_density(1.0, 4) * 4 * window_km) and _cars(two) == round(
        highway_env_density(2.0, 4) * 4 * window_km
    )
    assert _cars(two) > 1.8 * _cars(one)
    three = _make({"vehicles_density": 1, "lanes_count": 3})  # the lanes of the same config, not the default 4
    assert three.unwrapped.config.scenario.world.traffic.density_per_km_per_lane == pytest.approx(highway_env_density(1.0, 3))
    later = gym.make("DriveSim/Highway-v0")
    later.unwrapped.configure({"lanes_count": 3})
    later.unwrapped.configure({"vehicles_density": 1})  # a second configure sees the pending lanes
    later.reset(seed=0)
    assert later.unwrapped.config.scenario.world.traffic.density_per_km_per_lane == pytest.approx(highway_env_density(1.0, 3))
    with pytest.raises(ConfigError, match="traffic.density_per_km_per_lane: .* do not fit"):
        _make({"vehicles_density": 5})
    with pytest.raises(ConfigError, match="config.vehicles_density: expected a positive number"):
        _make({"vehicles_density": 0})
    for e in (one, two, three, later):
        e.close()


def _lanes_left(env):
    obs, _ = env.reset(seed=0)
    return int(round(float(env.unwrapped._obs.layout.decode(obs)["lanes_left"])))


def test_initial_lane_id_counts_from_the_left_as_in_highway_env():
    left = _make({"initial_lane_id": 0, "observation": {"type": "Kinematics"}})
    right = _make({"initial_lane_id": 3, "observation": {"type": "Kinematics"}})
    assert _lanes_left(left) == 0 and _lanes_left(right) == 3  # 4 lanes
    narrow = _make({"initial_lane_id": 0, "lanes_count": 2})
    assert narrow.unwrapped.config.scenario.world.ego.lane == 1
    assert _make({"initial_lane_id": None}).unwrapped.config.scenario.world.ego.lane == -1  # random, as highway-env
    with pytest.raises(ConfigError, match=r"config.initial_lane_id: expected None \(random\) or a lane 0..3"):
        _make({"initial_lane_id": 4})
    for e in (left, right, narrow):
        e.close()


def test_observation_and_action_types_by_highway_env_names():
    env = _make({"observation": {"type": "Kinematics", "vehicles_count": 5}, "action": {"type": "DiscreteMetaAction"}})
    assert env.unwrapped.config.observation.type == "kinematics" and env.unwrapped.config.observation.vehicles == 5
    assert env.action_space == gym.spaces.Discrete(5)
    six = _make({"observation": {"type": "Kinematics", "vehicles_count": 6}})
    assert six.observation_space.shape[0] - env.observation_space.shape[0] == 7  # one more vehicle row of 7 features
    lidar = _make({"observation": {"type": "LidarObservation"}, "action": {"type": "ContinuousAction"}})
    assert lidar.unwrapped.config.observation.type == "lidar" and isinstance(lidar.action_space, gym.spaces.Box)
    grid = _make({"action": {"type": "DiscreteAction"}})
    assert grid.unwrapped.config.action.type == "discrete"
    for e in (env, six, lidar, grid):
        e.close()


@pytest.mark.parametrize(
    "config, names",
    [
        *[({key: "x"}, [f"config.{key}", CLOSEST[key].split(" ")[0]]) for key in sorted(CLOSEST)],
        *[({key: not wanted if isinstance(wanted, bool) else 2}, [f"config.{key}"]) for key, (wanted, _) in sorted(ALWAYS.items())],
        ({"observation": {"type": "GrayscaleObservation"}}, ["config.observation.type", "camera"]),
        ({"observation": {"type": "Kinematics", "features": ["x"]}}, ["config.observation.features"]),
        ({"action": {"type": "ContinuousAction", "longitudinal": False}}, ["config.action.longitudinal"]),
        ({"action": {"type": "MultiAgentAction"}}, ["config.action.type"]),
        ({"lanes_count": -1}, ["config.lanes_count: expected a positive number"]),
        ({"vehicle_count": 3}, ["config.vehicle_count: not a highway-env key", "vehicles_count"]),
    ],
)
def test_keys_drive_sim_has_nothing_for_are_named_with_the_closest_setting(config, names):
    with pytest.raises(ConfigError) as err:
        _make(config)
    for name in names:
        assert name in str(err.value), str(err.value)


def test_keys_that_ask_for_what_drive_sim_always_does_are_accepted():
    env = _make({key: wanted for key, (wanted, _) in ALWAYS.items()})
    env.close()


def test_configure_takes_effect_at_the_next_reset():
    env = gym.make("DriveSim/Highway-v0")
    env.reset(seed=0)
    before = env.observation_space
    env.unwrapped.configure({"observation": {"type": "Kinematics"}, "lanes_count": 2})
    assert env.unwrapped.observation_space == before  # not yet
    obs, _ = env.reset(seed=0)
    assert env.unwrapped.config.observation.type == "kinematics" and env.unwrapped.world.road.n_lanes == 2
    assert env.unwrapped.observation_space.contains(obs) and env.unwrapped.observation_space != before
    with pytest.raises(ConfigError, match="config.normalize_reward"):
        env.unwrapped.configure({"normalize_reward": True})  # refused at once, not at the reset
    _, r, *_ = env.step(np.int64(0) if isinstance(env.unwrapped.action_space, gym.spaces.Discrete) else env.unwrapped.action_space.sample())
    env.close()


def test_every_key_is_in_the_migration_table():
    from pathlib import Path

    from envs.highway_compat import DERIVED

    page = (Path(__file__).resolve().parents[1] / "docs" / "from-highway-env.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    for key in [*KEYS, *ALWAYS, *CLOSEST, *DERIVED]:
        assert any(f"`{key}`" in row.split("|")[1] for row in rows), f"{key} is not in docs/from-highway-env.md's table"
