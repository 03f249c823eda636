"""Views for people: the chase camera used by ``render()`` (and, later, videos).

Kept apart from the ego camera sensor: what a policy sees is configured by the observation,
what a person sees is configured here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drive_sim.config import require
from drive_sim.sensors.camera import look_at, perspective, render_rgb, rgb_image
from drive_sim.weather import camera_effects
from drive_sim.world import World


@dataclass(frozen=True)
class ChaseViewConfig:
    """Chase camera behind and above the ego car.

    Attributes:
        width, height: frame size [px].
        distance_m: how far behind the car [m].
        height_m: camera height [m].
        look_ahead_m: the point looked at, ahead of the car [m].
        fov_deg: vertical field of view [deg].
    """

    width: int = 480
    height: int = 270
    distance_m: float = 11.0
    height_m: float = 4.5
    look_ahead_m: float = 12.0
    fov_deg: float = 55.0

    def __post_init__(self) -> None:
        require(16 <= self.width <= 3840, "render.width", f"must be between 16 and 3840 px, got {self.width}")
        require(16 <= self.height <= 2160, "render.height", f"must be between 16 and 2160 px, got {self.height}")


def chase_view(world: World, cfg: ChaseViewConfig) -> np.ndarray:
    """An RGB frame (H, W, 3) uint8 from behind the ego car."""
    e = world.ego
    cy, sy = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
    eye = (e.x_m - cfg.distance_m * cy, e.y_m - cfg.distance_m * sy, cfg.height_m)
    target = (e.x_m + cfg.look_ahead_m * cy, e.y_m + cfg.look_ahead_m * sy, 0.5)
    c = world.client
    near, far = 0.3, 300.0
    proj = perspective(c, cfg.width, cfg.height, cfg.fov_deg, near, far)
    _, _, rgba, depth, _ = render_rgb(c, cfg.width, cfg.height, look_at(c, eye, target), proj)
    rgb = rgb_image(rgba, cfg.height, cfg.width)
    cond = world.conditions
    if cond.foggy or cond.night > 0 or cond.rain > 0:
        # The same weather as the sensors see; a fixed seed keeps rain streaks off the episode's generator.
        z = np.asarray(depth, dtype=np.float32).reshape(cfg.height, cfg.width)
        depth_m = far * near / (far - (far - near) * z)
        no_beam = np.zeros((cfg.height, cfg.width), np.float32)
        rgb = camera_effects(rgb, depth_m, cond, no_beam, np.random.default_rng(world.steps))
    return rgb


@dataclass(frozen=True)
class BirdsEyeConfig:
    """Top-down camera.

    Attributes:
        width, height: frame size [px].
        altitude_m: camera height above the ground [m].
        fov_deg: vertical field of view [deg].
        centre: "ego" (follow the car) or "origin" (the junction's centre).
    """

    width: int = 480
    height: int = 360
    altitude_m: float = 110.0
    fov_deg: float = 50.0
    centre: str = "ego"

    def __post_init__(self) -> None:
        require(16 <= self.width <= 3840, "render.width", f"must be between 16 and 3840 px, got {self.width}")
        require(16 <= self.height <= 2160, "render.height", f"must be between 16 and 2160 px, got {self.height}")
        require(self.centre in ("ego", "origin"), "render.centre", f"must be 'ego' or 'origin', got {self.centre!r}")


def birds_eye_view(world: World, cfg: BirdsEyeConfig) -> np.ndarray:
    """An RGB frame (H, W, 3) uint8 looking straight down, north (+y) up."""
    e = world.ego
    x, y = (e.x_m, e.y_m) if cfg.centre == "ego" else (0.0, 0.0)
    c = world.client
    view = c.computeViewMatrix([x, y, cfg.altitude_m], [x, y, 0.0], [0.0, 1.0, 0.0])
    proj = perspective(c, cfg.width, cfg.height, cfg.fov_deg, 1.0, cfg.altitude_m + 10.0)
    _, _, rgba, _, _ = render_rgb(c, cfg.width, cfg.height, view, proj)
    return rgb_image(rgba, cfg.height, cfg.width)
