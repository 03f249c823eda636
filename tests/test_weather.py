"""Weather: friction in the physics, fog/night/rain in the sensors, schedules, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from drive_sim.config import ConfigError
from drive_sim.scenarios import Scenario
from drive_sim.vehicle_metrics import measure_braking, measure_cornering
from drive_sim.weather import FRICTION_PRESETS, Conditions, Weather, WeatherConfig, WeatherEvent


def test_braking_from_80_kmh_on_ice_takes_at_least_three_times_dry():
    dry = measure_braking(friction=FRICTION_PRESETS["dry"], from_kmh=80.0)
    ice = measure_braking(friction=FRICTION_PRESETS["ice"], from_kmh=80.0)
    assert ice.distance_m >= 3.0 * dry.distance_m, (dry, ice)


def test_lateral_acceleration_saturates_lower_on_ice():
    def lateral_accel(mu: float) -> float:
        return measure_cornering(friction=mu, speed_mps=20.0, steer=0.3).lateral_accel_mps2

    dry, ice = lateral_accel(0.9), lateral_accel(0.15)
    assert dry > 4.0, "on dry asphalt the car corners hard"
    assert ice < 0.15 * 9.81 * 1.3, "on ice lateral acceleration is capped near mu g"
    assert ice < 0.4 * dry


def _lidar_and_image(env_id: str, seed: int = 3, steps: int = 30):
    env = gym.make(env_id, obs_type="multi")
    obs, _ = env.reset(seed=seed)
    ranges, images = [], []
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(np.array([0.0, 0.0], np.float32))
        ranges.append(obs["lidar"] * 50.0)
        images.append(obs["camera"])
        if terminated or truncated:
            break
    env.close()
    return np.concatenate(ranges), images


def test_fog_shortens_lidar_and_lowers_contrast():
    clear_r, clear_img = _lidar_and_image("DriveSim/Highway-v0")
    fog_r, fog_img = _lidar_and_image("DriveSim/Highway-Fog-v0")
    returned_clear = clear_r[clear_r < 49.99]
    returned_fog = fog_r[fog_r < 49.99]
    assert returned_clear.max() > 40.0
    assert len(returned_fog) > 0 and returned_fog.max() <= 40.0, "no return beyond the 40 m visibility"
    assert len(returned_fog) < len(returned_clear), "fog drops returns"

    def contrast(images):
        return float(np.mean([img.astype(float).mean(axis=2).std() for img in images]))

    assert contrast(fog_img) < 0.6 * contrast(clear_img)


def test_night_darkens_camera_except_headlights():
    env = gym.make("DriveSim/Highway-Night-v0", obs_type="camera")
    night, _ = env.reset(seed=1)
    day_env = gym.make("DriveSim/Highway-v0", obs_type="camera")
    day, _ = day_env.reset(seed=1)
    assert night.mean() < 0.5 * day.mean()
    h, w, _ = night.shape
    beam = night[int(0.6 * h) :, int(0.4 * w) : int(0.6 * w)].mean()
    corner = night[int(0.6 * h) :, : int(0.1 * w)].mean()
    assert beam > 1.5 * corner, "the road ahead is lit by the headlights"
    env.close()
    day_env.close()


def test_changing_weather_schedule_reaches_ice_smoothly():
    env = gym.make("DriveSim/Highway-ChangingWeather-v0")
    env.reset(seed=0)
    seen = {}
    for _ in range(400):
        _, _, terminated, truncated, info = env.step(np.array([0.0, 0.0], np.float32))
        seen[round(info["time_s"], 1)] = info["friction"]
        if terminated or truncated:
            break
    assert seen[10.0] == 0.9 and seen[15.0] == 0.9
    assert 0.15 < seen[17.5] < 0.9, "blending over the 5 s transition"
    assert seen[20.5] == pytest.approx(0.15) and seen[max(seen)] == pytest.approx(0.15)
    env.close()


def test_weather_schedule_by_distance_and_reset():
    cfg = WeatherConfig(schedule=(WeatherEvent(at_m=100.0, visibility_m=30.0),))
    w = Weather(cfg, friction=0.9)
    assert not w.update(5.0, 50.0).foggy
    assert w.update(6.0, 120.0).visibility_m == 30.0
    assert w.reset() == Conditions(friction=0.9)


def test_custom_yaml_scenario_through_gym_make(tmp_path):
    path = tmp_path / "snowy-highway.yaml"
    path.write_text(
        "description: snowy highway from the docs example\n"
        "time_limit_s: 5\n"
        "world:\n"
        "  friction: 0.35\n"
        "  traffic: {count: 10}\n"
        "  weather: {visibility_m: 80, schedule: [{at_s: 2, surface: ice, transition_s: 1}]}\n"
    )
    env = gym.make("DriveSim/Custom-v0", scenario=str(path))
    env.reset(seed=0)
    for _ in range(60):
        _, _, terminated, truncated, info = env.step(np.array([0.0, 0.2], np.float32))
        if terminated or truncated:
            break
    assert truncated and info["friction"] == pytest.approx(0.15)
    env.close()


@pytest.mark.parametrize(
    "weather,match",
    [
        ("{friction: 0}", None),
        ("{schedule: [{at_s: 10, surface: ice}, {at_s: 5, surface: dry}]}", r"weather.schedule.at_s: events must be in increasing order"),
        ("{schedule: [{at_s: 1, surface: mud}]}", r"surface: 'mud' is not allowed; allowed: dry, wet, snow, ice"),
        ("{schedule: [{surface: ice}]}", r"give exactly one of at_s or at_m"),
        ("{visibility_m: -3}", r"weather.visibility_m: must be 0 \(clear\) or at least 5 m"),
        ("{night: 2}", r"weather.night: must be in \[0, 1\]"),
        ("{fog: 0.5}", r"unknown config key 'world.weather.fog'; allowed: visibility_m, night, rain, schedule"),
    ],
)
def test_bad_weather_yaml(tmp_path, weather, match):
    path = tmp_path / "bad.yaml"
    if match is None:  # friction outside (0, 2] is a world field
        path.write_text("world: {friction: 0}\n")
        match = r"bad.yaml: friction: must be in \(0, 2\]"
    else:
        path.write_text(f"world:\n  weather: {weather}\n")
    with pytest.raises(ConfigError, match=match):
        Scenario.from_yaml(path)
    path.write_text("world: {friction: 2.5}\n")
    with pytest.raises(ConfigError, match=r"friction: must be in \(0, 2\]"):
        Scenario.from_yaml(path)
