from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from drive_sim.config import ConfigError
from drive_sim.road import RoadConfig
from drive_sim.traffic import TrafficConfig
from drive_sim.types import Control
from drive_sim.world import EgoStartConfig, World, WorldConfig


def _run(world: World, steps: int, control: Control) -> list[tuple[float, ...]]:
    out = []
    for _ in range(steps):
        world.step(control)
        e = world.ego
        out.append((e.x_m, e.y_m, e.yaw_rad, e.speed_mps, *world.traffic.s))
    return out


def test_two_worlds_in_one_process_do_not_interfere():
    cfg = WorldConfig(road=RoadConfig(length_m=1500.0), traffic=TrafficConfig(count=8))
    # Reference: world A alone.
    a = World(cfg)
    a.reset(np.random.default_rng(1))
    ref = _run(a, 60, Control(0.05, 0.5, 0.0))
    a.close()
    # Same world A again, interleaved step by step with a different world B.
    a, b = World(cfg), World(dataclasses.replace(cfg, friction=0.2))
    a.reset(np.random.default_rng(1))
    b.reset(np.random.default_rng(2))
    got = []
    for _ in range(60):
        b.step(Control(-0.3, 1.0, 0.0))
        got += _run(a, 1, Control(0.05, 0.5, 0.0))
        b.step(Control(0.3, 0.0, 1.0))
    assert got == ref
    assert a.client._client != b.client._client
    a.close()
    b.close()


def test_reset_creates_no_bodies_and_depends_only_on_seed():
    world = World(WorldConfig(road=RoadConfig(length_m=1500.0), traffic=TrafficConfig(count=10)))
    n = world.num_bodies()
    world.reset(np.random.default_rng(5))
    first = _run(world, 40, Control(0.0, 0.3, 0.0))
    for seed in range(3):  # other episodes in between
        world.reset(np.random.default_rng(seed))
        _run(world, 25, Control(0.5, 1.0, 0.0))
        assert world.num_bodies() == n
    world.reset(np.random.default_rng(5))
    assert _run(world, 40, Control(0.0, 0.3, 0.0)) == first
    world.close()


def test_world_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="control_period_s"):
        WorldConfig(physics_dt_s=0.03, control_period_s=0.1)
    with pytest.raises(ConfigError, match="traffic.count"):
        TrafficConfig(count=-1)
    with pytest.raises(ConfigError, match="friction"):
        WorldConfig(friction=0.0)
    with pytest.raises(ConfigError, match=r"traffic.count: 200 vehicles do not fit 4 lane\(s\)"):
        WorldConfig(traffic=TrafficConfig(count=200))
    with pytest.raises(ConfigError, match="ego.lane: must be -1"):
        WorldConfig(ego=EgoStartConfig(lane=4))


def test_collision_with_traffic_vehicle_is_detected(empty_highway):
    world = World(dataclasses.replace(empty_highway.cfg, traffic=TrafficConfig(count=1, lane_changes=False)))
    world.reset(np.random.default_rng(0))
    f = world.frenet
    # A stopped car 30 m ahead in the ego lane.
    world.traffic.set_state(s=[f.s_m + 30.0], lane=[f.lane], v=[0.0], v0=[0.0])
    world.place_traffic()
    for _ in range(40):
        world.step(Control(0.0, 1.0, 0.0))
        if world.collided_with:
            break
    assert world.collided_with == "vehicle"
    world.close()


def test_barrier_collision_and_off_road(empty_highway):
    """Drifting gently left: the centre crosses the edge line before the car touches the barrier."""
    world = empty_highway
    off_road_at = collision_at = None
    for k in range(150):
        world.step(Control(0.03 if k < 10 else 0.0, 0.3, 0.0))
        if world.frenet.off_road and off_road_at is None:
            off_road_at = k
        if world.collided_with and collision_at is None:
            collision_at = k
    assert off_road_at is not None and collision_at is not None
    assert off_road_at < collision_at, "leaving the road is detected before hitting the barrier"
    assert world.collided_with == "static"


def test_friction_changes_cornering_grip():
    def lateral_offset(friction: float) -> float:
        cfg = WorldConfig(
            road=RoadConfig(length_m=1500.0),
            traffic=TrafficConfig(count=0),
            ego=EgoStartConfig(s_m=100.0, s_jitter_m=0.0, lane=0, speed_min_mps=25.0, speed_max_mps=25.0),
            friction=friction,
        )
        w = World(cfg)
        w.reset(np.random.default_rng(0))
        for _ in range(4):
            w.step(Control(0.4, 0.0, 0.0))
        yaw_rate = w.ego.yaw_rate_rps
        w.close()
        return yaw_rate

    dry, ice = lateral_offset(0.9), lateral_offset(0.15)
    assert dry > 0.4, "on dry asphalt the car turns"
    assert ice < 0.5 * dry, "on ice the front slides: far less yaw rate"
