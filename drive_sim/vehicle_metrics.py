"""Measured driving figures of the ego car: top speed, 0-100 km/h time, braking distance.

Each runs the real physics in a world of its own (straight highway, no traffic) and reads the
results from the simulation, so the figures in docs/vehicle.md and the physics tests come from
the same code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from drive_sim.road import RoadConfig
from drive_sim.traffic import TrafficConfig
from drive_sim.types import Control
from drive_sim.world import EgoStartConfig, World, WorldConfig


def _test_world(base: WorldConfig, speed_mps: float, friction: float) -> World:
    cfg = dataclasses.replace(
        base,
        road=RoadConfig(layout="highway", lanes=4, length_m=20000.0),
        traffic=TrafficConfig(count=0),
        ego=EgoStartConfig(s_m=50.0, s_jitter_m=0.0, lane=1, speed_min_mps=speed_mps, speed_max_mps=speed_mps),
        friction=friction,
    )
    world = World(cfg)
    world.reset(np.random.default_rng(0))
    return world


@dataclass(frozen=True)
class AccelerationResult:
    """Full-throttle run from standstill: 0-100 km/h time [s] (None if never reached), top speed [km/h]."""

    zero_to_100_s: float | None
    top_speed_kmh: float


def measure_acceleration(base: WorldConfig | None = None, friction: float = 0.9, max_time_s: float = 120.0) -> AccelerationResult:
    """Full throttle from rest on a straight road until the speed stops rising."""
    world = _test_world(base or WorldConfig(), 0.0, friction)
    try:
        t100 = None
        best = 0.0
        stale = 0.0
        while world.time_s < max_time_s:
            world.step(Control(0.0, 1.0, 0.0))
            v = world.ego.speed_mps
            if t100 is None and v >= 100.0 / 3.6:
                t100 = world.time_s
            if v > best + 0.01:
                best, stale = v, 0.0
            else:
                stale += world.cfg.control_period_s
                if stale >= 5.0:
                    break
        return AccelerationResult(t100, best * 3.6)
    finally:
        world.close()


@dataclass(frozen=True)
class BrakingResult:
    """Full brake from ``from_kmh``: distance [m] and time [s] to standstill."""

    from_kmh: float
    friction: float
    distance_m: float
    time_s: float


def measure_braking(base: WorldConfig | None = None, friction: float = 0.9, from_kmh: float = 100.0) -> BrakingResult:
    """Full brake pedal from ``from_kmh`` on a straight road; distance measured along the road."""
    world = _test_world(base or WorldConfig(), from_kmh / 3.6, friction)
    try:
        s0 = world.frenet.s_m
        while world.ego.speed_mps > 0.05 and world.time_s < 120.0:
            world.step(Control(0.0, 0.0, 1.0))
        return BrakingResult(from_kmh, friction, world.frenet.s_m - s0, world.time_s)
    finally:
        world.close()


@dataclass(frozen=True)
class CorneringResult:
    """Yaw rate and lateral acceleration after holding a steering input at constant throttle.

    The yaw rate is compared with the kinematic (no-slip) bicycle value
    ``speed * tan(angle) / wheelbase``; the lateral acceleration is that of the centre of mass,
    perpendicular to its velocity, averaged over the last 0.5 s.
    """

    speed_mps: float
    steer_rad: float
    yaw_rate_rps: float
    kinematic_yaw_rate_rps: float
    lateral_accel_mps2: float


def measure_cornering(
    base: WorldConfig | None = None, friction: float = 0.9, speed_mps: float = 25.0, steer: float = 0.06
) -> CorneringResult:
    """Hold ``steer`` (fraction of full lock) for 1.2 s at about ``speed_mps`` and read the response."""
    world = _test_world(base or WorldConfig(), speed_mps, friction)
    try:
        dt = world.cfg.control_period_s
        velocities = []
        for _ in range(12):
            world.step(Control(steer, 0.3, 0.0))
            e = world.ego
            c, s = np.cos(e.yaw_rad), np.sin(e.yaw_rad)
            velocities.append((c * e.vx_mps - s * e.vy_mps, s * e.vx_mps + c * e.vy_mps))
        v = np.asarray(velocities)
        acc = np.diff(v, axis=0) / dt
        mid = 0.5 * (v[1:] + v[:-1])
        normal = np.stack([-mid[:, 1], mid[:, 0]], axis=1) / np.linalg.norm(mid, axis=1, keepdims=True)
        lateral = float(np.mean(np.abs(np.sum(acc * normal, axis=1))[-5:]))
        e = world.ego
        kin = e.speed_mps * float(np.tan(e.steer_rad)) / world.cfg.vehicle.wheelbase_m
        return CorneringResult(e.speed_mps, e.steer_rad, e.yaw_rate_rps, kin, lateral)
    finally:
        world.close()
