"""Small immutable value types shared by the world, sensors and environments. Units are SI."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Control:
    """Driver inputs for one control period.

    Attributes:
        steer: steering command in [-1, 1]; +1 is full left (counter-clockwise, ISO 8855).
        throttle: accelerator pedal in [0, 1].
        brake: brake pedal in [0, 1].
    """

    steer: float = 0.0
    throttle: float = 0.0
    brake: float = 0.0


@dataclass(frozen=True)
class VehicleState:
    """Ego state read from the physics once per control step.

    Attributes:
        x_m, y_m, z_m: chassis position in the world frame [m].
        yaw_rad: heading, counter-clockwise from +x [rad].
        vx_mps, vy_mps: velocity in the vehicle frame (forward, left) [m/s].
        yaw_rate_rps: [rad/s].
        speed_mps: planar speed [m/s].
        steer_rad: current front-wheel (bicycle-equivalent) steering angle [rad].
        roll_rad, pitch_rad: body attitude [rad].
    """

    x_m: float
    y_m: float
    z_m: float
    yaw_rad: float
    vx_mps: float
    vy_mps: float
    yaw_rate_rps: float
    speed_mps: float
    steer_rad: float
    roll_rad: float
    pitch_rad: float


#: ``VehicleState``'s fields in order: the columns of an ego state kept as an array (episode logs).
VEHICLE_STATE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(VehicleState))


@dataclass(frozen=True)
class LidarReading:
    """One lidar sweep.

    Attributes:
        ranges_m: (N,) float32 distance from the ego centre to the first hit, or the max range.
        hit_ids: (N,) int32 PyBullet body id hit per beam, -1 where nothing was hit.
        angles_rad: (N,) float32 beam angle in the ego frame (0 = forward, counter-clockwise).
        valid: False during a dropout fault (the ranges then read the maximum range).
    """

    ranges_m: np.ndarray
    hit_ids: np.ndarray
    angles_rad: np.ndarray
    valid: bool = True


@dataclass(frozen=True)
class CameraFrame:
    """One camera image.

    ``rgb`` (H, W, 3) uint8; ``depth_m`` (H, W) float32 and ``segmentation`` (H, W) uint8 class
    ids when the camera is configured for them.
    """

    rgb: np.ndarray
    depth_m: np.ndarray | None = None
    segmentation: np.ndarray | None = None
    valid: bool = True
