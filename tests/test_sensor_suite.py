"""Radar, GNSS, IMU, odometry, the friction estimate and scheduled faults."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from drive_sim.config import ConfigError
from drive_sim.road import RoadConfig
from drive_sim.scenarios import Scenario
from drive_sim.sensors import GnssConfig, SensorFault, SensorsConfig
from drive_sim.traffic import VEHICLE_LENGTH_M, TrafficConfig
from drive_sim.types import Control
from drive_sim.world import EgoStartConfig, World, WorldConfig
from envs.observations import state_feature_names


def _world(**kw) -> World:
    base = WorldConfig(
        road=RoadConfig(length_m=2000.0),
        traffic=TrafficConfig(count=0),
        ego=EgoStartConfig(s_m=100.0, s_jitter_m=0.0, lane=1, speed_min_mps=20.0, speed_max_mps=20.0),
    )
    world = World(dataclasses.replace(base, **kw))
    world.reset(np.random.default_rng(0))
    return world


def test_scheduled_lidar_dropout_is_flagged_exactly_in_its_window():
    env = gym.make("DriveSim/Highway-SensorFault-v0", cfg={"scenario": {"world": {"traffic": {"count": 0}}}})
    obs, _ = env.reset(seed=0)
    names = state_feature_names(env.unwrapped.config.observation, ("lidar",))
    flag = 64 + names.index("lidar_valid")
    for _ in range(300):
        obs, _, terminated, truncated, info = env.step(np.array([0.0, 0.1], np.float32))
        t = info["time_s"]
        inside = 15.0 <= t < 22.0
        assert obs[flag] == (0.0 if inside else 1.0), t
        assert info["sensor_valid"]["lidar"] == (not inside)
        assert (np.all(obs[:64] == 0.0)) == inside, t
        if terminated or truncated:
            break
    assert t > 25.0
    env.close()


def test_gnss_error_statistics_match_configuration():
    # White noise only: mean ~ 0, std ~ configured.
    world = _world(sensors=SensorsConfig(gnss=GnssConfig(noise_std_m=1.5, bias_std_m=0.0, rate_hz=10.0)))
    errors = []
    for _ in range(3000):
        world.step(Control(0.0, 0.1, 0.0))
        fix = world.read_sensors().gnss_xy_m
        errors.append(fix - [world.ego.x_m, world.ego.y_m])
    e = np.asarray(errors)
    assert np.all(np.abs(e.mean(axis=0)) < 0.1)
    assert np.all(np.abs(e.std(axis=0) - 1.5) < 0.08)
    world.close()
    # Bias only: across episodes its spread is the configured stationary std.
    world = _world(sensors=SensorsConfig(gnss=GnssConfig(noise_std_m=0.0, bias_std_m=2.0)))
    biases = []
    for seed in range(600):
        world.reset(np.random.default_rng(seed))
        biases.append(world.read_sensors().gnss_xy_m - [world.ego.x_m, world.ego.y_m])
    b = np.asarray(biases)
    assert np.all(np.abs(b.std(axis=0) - 2.0) < 0.2)
    world.close()


def test_gnss_bias_drifts_slowly():
    world = _world(sensors=SensorsConfig(gnss=GnssConfig(noise_std_m=0.0, bias_std_m=2.0, bias_tau_s=60.0, rate_hz=10.0)))
    errs = []
    for _ in range(100):
        world.step(Control(0.0, 0.1, 0.0))
        errs.append(world.read_sensors().gnss_xy_m - [world.ego.x_m, world.ego.y_m])
    steps = np.linalg.norm(np.diff(np.asarray(errs), axis=0), axis=1)
    assert steps.max() < 0.6, "a bias, not white noise: it moves little between fixes"
    assert steps.max() > 0.0
    world.close()


def test_radar_range_and_closing_rate_of_stopped_car():
    world = _world(traffic=TrafficConfig(count=1, lane_changes=False))
    f = world.frenet
    world.traffic.set_state(s=[f.s_m + 40.0], lane=[f.lane], v=[0.0], v0=[0.0])
    world.place_traffic()
    r = world.read_sensors()
    mid = len(r.radar_ranges_m) // 2
    assert r.radar_ranges_m[mid] == pytest.approx(40.0 - VEHICLE_LENGTH_M, abs=1.0)
    assert r.radar_range_rates_mps[mid] == pytest.approx(-20.0, abs=1.0)
    world.close()


def test_imu_measures_lateral_acceleration_in_a_turn():
    world = _world()
    for _ in range(10):
        world.step(Control(0.05, 0.2, 0.0))
    r = world.read_sensors()
    e = world.ego
    assert r.imu[1] == pytest.approx(e.speed_mps * e.yaw_rate_rps, abs=0.5)
    assert r.imu[2] == pytest.approx(e.yaw_rate_rps, abs=0.01)
    world.close()


def test_odometry_reads_wheel_slip_on_ice():
    world = _world(friction=0.15, ego=EgoStartConfig(s_m=100.0, s_jitter_m=0.0, lane=1, speed_min_mps=5.0, speed_max_mps=5.0))
    for _ in range(10):
        world.step(Control(0.0, 1.0, 0.0))  # full throttle: the rear wheels spin
    assert world.read_sensors().odometry_speed_mps > 1.3 * world.ego.speed_mps
    for _ in range(3):
        world.step(Control(0.0, 0.0, 1.0))  # full brake: the wheels lock
    assert world.ego.speed_mps > 3.0 and world.read_sensors().odometry_speed_mps < 1.0
    world.close()


def test_frozen_and_noise_faults():
    faults = (
        SensorFault(sensor="lidar", kind="frozen", start_s=0.5, end_s=2.0),
        SensorFault(sensor="odometry", kind="noise", start_s=0.0, end_s=100.0, noise_scale=3.0),
    )
    world = _world(traffic=TrafficConfig(count=10), sensors=SensorsConfig(faults=faults))
    readings = []
    odo_err = []
    for _ in range(15):
        world.step(Control(0.0, 0.2, 0.0))
        readings.append(world.read_lidar())
        odo_err.append(world.read_sensors().odometry_speed_mps - world.ego.speed_mps)
    frozen = [r for k, r in enumerate(readings) if 0.5 <= 0.1 * (k + 1) < 2.0 - 1e-9]
    assert all(r is frozen[0] for r in frozen) and frozen[0].valid, "frozen: repeated and not flagged"
    assert np.std(odo_err) > 1.5
    world.close()


def test_friction_estimate_in_observation_is_noisy_but_close():
    env = gym.make("DriveSim/Highway-Ice-v0", cfg={"observation": {"friction": "estimate"}})
    obs, _ = env.reset(seed=0)
    names = state_feature_names(env.unwrapped.config.observation, ("lidar",))
    est = [obs[64 + names.index("friction_estimate")]]
    for _ in range(20):
        obs, *_ = env.step(np.array([0.0, 0.0], np.float32))
        est.append(obs[64 + names.index("friction_estimate")])
    assert abs(np.mean(est) - 0.15) < 0.2 and np.std(est) > 0.0
    env.close()


@pytest.mark.parametrize(
    "fault,match",
    [
        ("{sensor: sonar, kind: dropout, start_s: 1, end_s: 2}", "sensor: 'sonar' is not allowed; allowed: lidar, camera"),
        ("{sensor: lidar, kind: melt, start_s: 1, end_s: 2}", "kind: 'melt' is not allowed; allowed: dropout, frozen, noise"),
        ("{sensor: lidar, kind: dropout, start_s: 5, end_s: 2}", "start_s: must be >= 0 and before end_s"),
    ],
)
def test_bad_fault_yaml(tmp_path, fault, match):
    path = tmp_path / "faulty.yaml"
    path.write_text(f"world:\n  sensors:\n    faults: [{fault}]\n")
    with pytest.raises(ConfigError, match=f"faulty.yaml: .*{match}"):
        Scenario.from_yaml(path)
