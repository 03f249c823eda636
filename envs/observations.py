"""Observation types, chosen by name from ``OBSERVATIONS``.

Each type receives the world handle and the task settings it reads at construction and fills
preallocated arrays in ``observe()``; none holds the environment.

- ``lidar``: float32 vector ``[ranges / range_m (beams), state (STATE_SIZE)]`` in [-1, 1].
- ``camera``: uint8 (H, W, C) image, channel-last; C = 3 for RGB (+1 depth, +1 segmentation).
- ``multi``: Dict ``{"camera": ..., "lidar": ranges / range_m, "state": state}``.
- ``kinematics``: float32 vector: the nearest vehicles and route features in the ego frame
  (``envs.kinematics``).
- ``perceived``: the ``kinematics`` layout filled from the perception net, the localisation filter
  and the tracker instead of the world's truth (``envs.perceived``).

The state vector (``STATE_FEATURES`` names each entry): ego speed, speed limit, heading error,
offset from the lane centre, offset across the road, lateral speed, yaw rate, steering angle,
remaining route fraction, then ``route_points`` look-ahead points of the lane centre in the ego
frame (x, y pairs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from drive_sim.config import ConfigError
from drive_sim.scenarios import Scenario
from drive_sim.world import World
from envs.config import ObservationConfig
from envs.kinematics import KinematicsObservation
from envs.perceived import PerceivedObservation

BASE_STATE_FEATURES = (
    "speed",
    "speed_limit",
    "heading_error",
    "lane_offset",
    "road_offset",
    "lateral_speed",
    "yaw_rate",
    "steer",
    "route_remaining",
)


def state_feature_names(cfg: ObservationConfig, sensors: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Names of the state-vector entries, in order.

    Args:
        cfg: observation settings (route points, friction estimate, sensor flags).
        sensors: the sensors the observation carries (their valid flags are appended).
    """
    pts = tuple(f"route_{k}_{axis}" for k in range(1, cfg.route_points + 1) for axis in ("x", "y"))
    friction = ("friction_estimate",) if cfg.friction == "estimate" else ()
    flags = tuple(f"{s}_valid" for s in sensors) if cfg.sensor_flags else ()
    return BASE_STATE_FEATURES + pts + friction + flags


class StateFeatures:
    """Ego and route features shared by the ``lidar`` and ``multi`` observations."""

    def __init__(self, world: World, scenario: Scenario, cfg: ObservationConfig, sensors: tuple[str, ...] = ()) -> None:
        self.world = world
        self.scenario = scenario
        self.cfg = cfg
        self.sensors = sensors if cfg.sensor_flags else ()
        self.size = len(state_feature_names(cfg, sensors))
        self._extra = 9 + 2 * cfg.route_points  # index of the first entry after the route points
        road = world.road
        fwd = road.forward_lanes()
        self._fwd_list = [road.lane_offsets_m[i] for i in fwd]
        self._road_mid = 0.5 * (road.edge_left_m + road.edge_right_m)
        self._road_half = 0.5 * (road.edge_left_m - road.edge_right_m)
        self._ahead = cfg.route_spacing_m * np.arange(1, cfg.route_points + 1)
        self._scale_route = 1.0 / max(cfg.route_spacing_m * cfg.route_points, 1e-6)

    def lane_centre(self, d_m: float) -> float:
        """Lateral offset of the forward lane nearest to ``d_m``."""
        return min(self._fwd_list, key=lambda c: abs(c - d_m))

    def fill(self, out: np.ndarray) -> None:
        """Write the state vector into ``out`` (length ``size``), clipped to [-1, 1]."""
        w, cfg = self.world, self.cfg
        e, f = w.ego, w.frenet
        road = w.road
        vs = 1.0 / cfg.speed_scale_mps
        centre = self.lane_centre(f.d_m)
        out[0] = e.speed_mps * vs
        out[1] = self.scenario.speed_limit_at(f.s_m) * vs
        out[2] = f.heading_error_rad / math.pi
        out[3] = (f.d_m - centre) / road.lane_width_m
        out[4] = (f.d_m - self._road_mid) / self._road_half
        out[5] = e.vy_mps / 5.0
        out[6] = e.yaw_rate_rps
        out[7] = e.steer_rad / w.cfg.vehicle.max_steer_rad
        done = (f.s_m - w.start_s_m) / self.scenario.route_length_m
        out[8] = 1.0 - done
        if cfg.route_points:
            xy, _ = road.centreline.to_world(f.s_m + self._ahead, np.full(cfg.route_points, centre))
            dx, dy = xy[:, 0] - e.x_m, xy[:, 1] - e.y_m
            c, s = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
            out[9 : self._extra : 2] = (c * dx + s * dy) * self._scale_route
            out[10 : self._extra : 2] = (-s * dx + c * dy) * self._scale_route
        k = self._extra
        if self.cfg.friction == "estimate":
            out[k] = w.estimate_friction()
            k += 1
        if self.sensors:
            valid = w.sensor_valid()
            for name in self.sensors:
                out[k] = 1.0 if valid[name] else 0.0
                k += 1
        np.minimum(np.maximum(out, -1.0, out=out), 1.0, out=out)


class LidarObservation:
    """Normalised lidar ranges followed by the state vector (float32).

    During a lidar dropout the ranges read 0 and the state's ``lidar_valid`` flag is 0.
    """

    def __init__(self, world: World, scenario: Scenario, cfg: ObservationConfig, sensors: tuple[str, ...] = ("lidar",)) -> None:
        self.world = world
        self.state = StateFeatures(world, scenario, cfg, sensors)
        self.beams = world.lidar.cfg.beams
        self._inv_range = 1.0 / world.lidar.cfg.range_m
        size = self.beams + self.state.size
        self.space = spaces.Box(-1.0, 1.0, (size,), np.float32)
        #: Name of every entry: ``range_<beam>`` then the state features.
        self.names = tuple(f"range_{i}" for i in range(self.beams)) + state_feature_names(cfg, sensors)
        self._buf = np.zeros(size, np.float64)

    def observe(self) -> np.ndarray:
        """Current observation (a new array)."""
        reading = self.world.read_lidar()
        self._buf[: self.beams] = reading.ranges_m * self._inv_range if reading.valid else 0.0
        self.state.fill(self._buf[self.beams :])
        return self._buf.astype(np.float32)


class CameraObservation:
    """The ego camera image, uint8 (H, W, C), channel-last."""

    def __init__(self, world: World, scenario: Scenario, cfg: ObservationConfig) -> None:
        cam = world.camera.cfg
        if "depth" in cfg.camera_channels and not cam.depth:
            raise ConfigError("observation.camera_channels: 'depth' needs scenario.world.camera.depth: true")
        if "segmentation" in cfg.camera_channels and not cam.segmentation:
            raise ConfigError("observation.camera_channels: 'segmentation' needs scenario.world.camera.segmentation: true")
        self.world = world
        self.channels = cfg.camera_channels
        n = 3 * ("rgb" in self.channels) + ("depth" in self.channels) + ("segmentation" in self.channels)
        self.space = spaces.Box(0, 255, (cam.height, cam.width, n), np.uint8)
        self._far = cam.far_m

    def observe(self) -> np.ndarray:
        """Current image (a new array)."""
        frame = self.world.capture_camera()
        if self.channels == ("rgb",):
            return frame.rgb
        parts = []
        if "rgb" in self.channels:
            parts.append(frame.rgb)
        if "depth" in self.channels and frame.depth_m is not None:
            parts.append(np.clip(frame.depth_m / self._far * 255.0, 0, 255).astype(np.uint8)[..., None])
        if "segmentation" in self.channels and frame.segmentation is not None:
            parts.append(frame.segmentation[..., None])
        return np.concatenate(parts, axis=-1)


class MultiObservation:
    """Dict of camera image, normalised lidar ranges and the state vector."""

    def __init__(self, world: World, scenario: Scenario, cfg: ObservationConfig) -> None:
        self.camera = CameraObservation(world, scenario, cfg)
        self.lidar = LidarObservation(world, scenario, cfg, sensors=("lidar", "camera"))
        b = self.lidar.beams
        self.space = spaces.Dict(
            {
                "camera": self.camera.space,
                "lidar": spaces.Box(0.0, 1.0, (b,), np.float32),
                "state": spaces.Box(-1.0, 1.0, (self.lidar.state.size,), np.float32),
            }
        )

    def observe(self) -> dict[str, np.ndarray]:
        """Current observation (new arrays)."""
        flat = self.lidar.observe()
        b = self.lidar.beams
        return {"camera": self.camera.observe(), "lidar": flat[:b].copy(), "state": flat[b:].copy()}


OBSERVATIONS: dict[str, Callable[[World, Scenario, ObservationConfig], Any]] = {
    "lidar": LidarObservation,
    "camera": CameraObservation,
    "multi": MultiObservation,
    "kinematics": KinematicsObservation,
    "perceived": PerceivedObservation,
}


def make_observation(world: World, scenario: Scenario, cfg: ObservationConfig) -> Any:
    """Build the observation type named by ``cfg.type``.

    Raises:
        ConfigError: unknown name (the message lists the registered ones).
    """
    if cfg.type not in OBSERVATIONS:
        raise ConfigError(f"obs_type: {cfg.type!r} is not allowed; allowed: {', '.join(sorted(OBSERVATIONS))}")
    return OBSERVATIONS[cfg.type](world, scenario, cfg)
