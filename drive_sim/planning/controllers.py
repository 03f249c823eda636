"""Path and speed controllers that turn a planned trajectory into the ego car's pedals and steering.

Lateral: pure pursuit (geometric, at the rear axle) or Stanley (heading plus cross-track error at
the front axle), selected by name in ``LATERAL``. Longitudinal: a PID on speed around the plan's
acceleration (feed-forward), mapped to throttle or brake through the car's own drive, brake and
resistance model, with the commanded deceleration and drive force capped by the tyre friction the
driver is told or estimates (the car has no ABS: braking harder than the grip locks the wheels,
and locked front wheels do not steer).

Gains (``docs/planning.md`` has the tuning runs): pure pursuit look-ahead
``clip(0.5 s * v + 3 m, 4 m, 30 m)``; Stanley ``k = 5``, softening 2 m/s, yaw-rate damping 0.1 s;
speed PID ``kp = 0.8 1/s``, ``ki = 0.1 1/s^2`` (anti-windup clamp 2 m/s^2), no derivative term
(the plan's acceleration is the feed-forward). Low friction changes only the caps, not the
gains: acceleration and braking are limited to 0.6 and 0.7 of mu * g.

These are small enough to write here (each ~20 lines, after PythonRobotics' PathTracking); they
need the car's own geometry and actuator model, which a generic library would not know.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from drive_sim.config import require
from drive_sim.road.geometry import Centreline
from drive_sim.vehicle import VehicleConfig

GRAVITY_MPS2 = 9.81
EGO_MASS_KG = 1490.0  # the URDF's total mass


@dataclass(frozen=True)
class ControllerConfig:
    """Gains of the lateral and speed controllers.

    Attributes:
        lateral: "pure_pursuit" or "stanley".
        lookahead_time_s: pure pursuit look-ahead per unit speed [s].
        lookahead_min_m, lookahead_max_m: bounds of the look-ahead distance [m].
        lookahead_offset_m: constant part of the look-ahead [m].
        stanley_gain: Stanley cross-track gain.
        stanley_soft_mps: Stanley softening speed [m/s].
        stanley_yaw_damping_s: Stanley yaw-rate damping [s].
        speed_kp: speed-error gain [1/s].
        speed_ki: integral gain [1/s^2].
        integral_limit_mps2: clamp of the integral term [m/s^2].
        accel_grip_fraction: the drive force is capped at this fraction of mu * m * g.
        brake_grip_fraction: the brake deceleration is capped at this fraction of mu * g.
    """

    lateral: str = "pure_pursuit"
    lookahead_time_s: float = 0.5
    lookahead_min_m: float = 4.0
    lookahead_max_m: float = 30.0
    lookahead_offset_m: float = 3.0
    stanley_gain: float = 5.0
    stanley_soft_mps: float = 2.0
    stanley_yaw_damping_s: float = 0.1
    speed_kp: float = 0.8
    speed_ki: float = 0.1
    integral_limit_mps2: float = 2.0
    accel_grip_fraction: float = 0.6
    brake_grip_fraction: float = 0.7

    def __post_init__(self) -> None:
        require(self.lateral in LATERAL, "controller.lateral", f"{self.lateral!r} is not allowed; allowed: {', '.join(LATERAL)}")
        require(
            0 < self.lookahead_min_m <= self.lookahead_max_m, "controller.lookahead_min_m", "must be positive and at most lookahead_max_m"
        )
        require(
            0 < self.accel_grip_fraction <= 1 and 0 < self.brake_grip_fraction <= 1.2,
            "controller.brake_grip_fraction",
            "grip fractions must be in (0, 1]",
        )


@dataclass(frozen=True)
class EgoPose:
    """The ego car as a controller sees it (any planar frame).

    Attributes:
        x_m, y_m: centre of the chassis [m].
        yaw_rad: heading [rad].
        speed_mps: forward speed [m/s].
        yaw_rate_rps: [rad/s].
    """

    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float
    yaw_rate_rps: float = 0.0


class LateralController(Protocol):
    """Steering angle [rad] that follows ``path`` from ``pose``."""

    def steer_rad(self, pose: EgoPose, path: Centreline) -> float:
        """Bicycle-equivalent front-wheel angle [rad], left positive."""
        ...


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


class PurePursuit:
    """Pure pursuit: steer the rear axle onto the arc through a look-ahead point on the path."""

    def __init__(self, cfg: ControllerConfig, vehicle: VehicleConfig) -> None:
        self.cfg = cfg
        self.wheelbase_m = vehicle.wheelbase_m

    def lookahead_m(self, speed_mps: float) -> float:
        """Look-ahead distance at ``speed_mps`` [m]."""
        c = self.cfg
        return min(max(c.lookahead_time_s * speed_mps + c.lookahead_offset_m, c.lookahead_min_m), c.lookahead_max_m)

    def steer_rad(self, pose: EgoPose, path: Centreline) -> float:
        """Front-wheel angle that puts the rear axle on the arc through the look-ahead point."""
        half = self.wheelbase_m / 2
        cy, sy = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
        rx, ry = pose.x_m - half * cy, pose.y_m - half * sy
        s, _, _ = path.project(np.array([[rx, ry]]))
        ld = self.lookahead_m(pose.speed_mps)
        target, _, _ = path.interpolate(np.array([float(s[0]) + ld]))
        dx, dy = float(target[0, 0]) - rx, float(target[0, 1]) - ry
        alpha = math.atan2(-sy * dx + cy * dy, cy * dx + sy * dy)
        dist = max(math.hypot(dx, dy), 1e-3)
        return math.atan2(2.0 * self.wheelbase_m * math.sin(alpha), dist)


class Stanley:
    """Stanley: heading error plus ``atan(k e / (v_soft + v))`` of the front axle's cross-track error."""

    def __init__(self, cfg: ControllerConfig, vehicle: VehicleConfig) -> None:
        self.cfg = cfg
        self.wheelbase_m = vehicle.wheelbase_m

    def steer_rad(self, pose: EgoPose, path: Centreline) -> float:
        """Front-wheel angle from the front axle's heading and cross-track errors."""
        c = self.cfg
        half = self.wheelbase_m / 2
        fx, fy = pose.x_m + half * math.cos(pose.yaw_rad), pose.y_m + half * math.sin(pose.yaw_rad)
        s, d, _ = path.project(np.array([[fx, fy]]))
        _, heading, kappa = path.interpolate(s)
        heading_err = _wrap(float(heading[0]) - pose.yaw_rad)
        # d > 0: the axle is left of the path, so steer right (negative).
        cross = math.atan2(-c.stanley_gain * float(d[0]), c.stanley_soft_mps + max(pose.speed_mps, 0.0))
        # Yaw-rate damping against the path's own yaw rate keeps the response from oscillating.
        damping = -c.stanley_yaw_damping_s * (pose.yaw_rate_rps - pose.speed_mps * float(kappa[0]))
        # Curvature feed-forward: the kinematic angle for the path's curvature at the front axle.
        return heading_err + cross + damping + math.atan(self.wheelbase_m * float(kappa[0]))


LATERAL: dict[str, Callable[[ControllerConfig, VehicleConfig], LateralController]] = {"pure_pursuit": PurePursuit, "stanley": Stanley}


def resistance_n(speed_mps: float, vehicle: VehicleConfig) -> float:
    """Drag plus rolling resistance at ``speed_mps`` [N] (the model ``drive_sim.vehicle`` applies)."""
    if speed_mps <= 0.05:
        return 0.0
    return vehicle.resistance_n(speed_mps, EGO_MASS_KG)


class SpeedController:
    """PID on speed around a feed-forward acceleration, mapped to throttle and brake pedals."""

    def __init__(self, cfg: ControllerConfig, vehicle: VehicleConfig) -> None:
        self.cfg = cfg
        self.vehicle = vehicle
        self._integral = 0.0
        v = vehicle
        self._brake_force_n = 2 * (v.brake_torque_front_nm + v.brake_torque_rear_nm) / v.wheel_radius_m
        self._engine_brake_n = 2 * v.engine_brake_torque_nm / v.wheel_radius_m

    def reset(self) -> None:
        """Forget the integral term (a new episode)."""
        self._integral = 0.0

    def accel_limits(self, speed_mps: float, friction: float) -> tuple[float, float]:
        """(largest deceleration, largest acceleration) the car can use on ``friction`` [m/s^2], both >= 0."""
        v, c = self.vehicle, self.cfg
        drive = v.drive_torque_nm(speed_mps) / v.wheel_radius_m
        # Rear-wheel drive: about half the weight is on the driven wheels.
        grip_drive = c.accel_grip_fraction * friction * EGO_MASS_KG * GRAVITY_MPS2 * 0.5
        accel = max((min(drive, grip_drive) - resistance_n(speed_mps, v)) / EGO_MASS_KG, 0.0)
        decel = min(c.brake_grip_fraction * friction * GRAVITY_MPS2, self._brake_force_n / EGO_MASS_KG)
        return decel, accel

    def command(
        self, target_speed_mps: float, target_accel_mps2: float, speed_mps: float, friction: float, dt_s: float
    ) -> tuple[float, float, float]:
        """Pedals for one control period.

        Returns:
            (throttle in [0, 1], brake in [0, 1], the commanded acceleration [m/s^2]).
        """
        c, v = self.cfg, self.vehicle
        err = target_speed_mps - speed_mps
        self._integral = min(max(self._integral + c.speed_ki * err * dt_s, -c.integral_limit_mps2), c.integral_limit_mps2)
        decel_max, accel_max = self.accel_limits(speed_mps, friction)
        a = min(max(target_accel_mps2 + c.speed_kp * err + self._integral, -decel_max), accel_max)
        if target_speed_mps <= 0.05 and speed_mps < 0.5:
            # Hold the car at a standstill (a stop line, a queue) instead of creeping.
            self._integral = 0.0
            return 0.0, 0.3, -decel_max
        if target_speed_mps > speed_mps + 0.05 and speed_mps < 1.0:
            a = max(a, min(0.8, accel_max))  # pull away firmly enough to leave a standstill
        res = resistance_n(speed_mps, v)
        force = EGO_MASS_KG * a + res
        if force >= 0.0:
            drive = v.drive_torque_nm(speed_mps) / v.wheel_radius_m
            return min(force / drive, 1.0), 0.0, a
        if -force <= self._engine_brake_n:
            return 0.0, 0.0, a  # coasting slows the car enough
        return 0.0, min(-force / self._brake_force_n, 1.0), a
