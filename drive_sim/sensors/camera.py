"""Ego-mounted camera rendered with PyBullet's TinyRenderer (CPU, headless).

Rendered once per control step by whoever asks for a frame (the observation), never per physics
substep (the racecarZEDGymEnv mistake).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from drive_sim._bullet import pb
from drive_sim.config import require
from drive_sim.types import CameraFrame

#: Segmentation class ids written into ``CameraFrame.segmentation``.
SEG_CLASSES = {"none": 0, "ground": 1, "road": 2, "marking": 3, "barrier": 4, "ego": 5, "vehicle": 6, "signal": 7}


@dataclass(frozen=True)
class CameraConfig:
    """Camera image and mount.

    Attributes:
        width, height: image size [px].
        fov_deg: vertical field of view [deg].
        near_m, far_m: clipping planes [m].
        forward_m: mount position ahead of the car's centre [m]; the default, near the front
            bumper, keeps the bonnet out of the image.
        height_m: mount height above the ground [m].
        pitch_deg: downward tilt [deg].
        depth: also produce a metric depth image.
        segmentation: also produce a class-id image (see ``SEG_CLASSES``).
    """

    width: int = 84
    height: int = 84
    fov_deg: float = 60.0
    near_m: float = 0.3
    far_m: float = 150.0
    forward_m: float = 2.0
    height_m: float = 1.5
    pitch_deg: float = 8.0
    depth: bool = False
    segmentation: bool = False

    def __post_init__(self) -> None:
        require(8 <= self.width <= 1920, "camera.width", f"must be between 8 and 1920 px, got {self.width}")
        require(8 <= self.height <= 1080, "camera.height", f"must be between 8 and 1080 px, got {self.height}")
        require(5.0 <= self.fov_deg <= 150.0, "camera.fov_deg", f"must be in [5, 150], got {self.fov_deg}")
        require(0.0 < self.near_m < self.far_m, "camera.near_m", "must be positive and below far_m")


def perspective(client: Any, width: int, height: int, fov_deg: float, near_m: float, far_m: float) -> Any:
    """PyBullet projection matrix for a pinhole camera."""
    return client.computeProjectionMatrixFOV(fov_deg, width / height, near_m, far_m)


def look_at(client: Any, eye: tuple[float, float, float], target: tuple[float, float, float]) -> Any:
    """PyBullet view matrix from ``eye`` towards ``target`` with +z up."""
    return client.computeViewMatrix(list(eye), list(target), [0.0, 0.0, 1.0])


def render_rgb(client: Any, width: int, height: int, view: Any, proj: Any, flags: int = pb.ER_NO_SEGMENTATION_MASK) -> tuple:
    """One TinyRenderer image: returns PyBullet's (w, h, rgba, depth, seg) tuple."""
    return client.getCameraImage(
        width, height, view, proj, renderer=pb.ER_TINY_RENDERER, flags=flags, shadow=0, lightDirection=[0.4, -0.3, 1.0]
    )


def rgb_image(rgba: Any, height: int, width: int) -> np.ndarray:
    """The (H, W, 3) uint8 RGB copy of a ``getCameraImage`` RGBA buffer."""
    return np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()


class Camera:
    """Camera fixed to the ego car.

    Args:
        client: the world's ``BulletClient``.
        cfg: image and mount.
        seg_lookup: array mapping PyBullet body id to a ``SEG_CLASSES`` id (used when
            ``cfg.segmentation``).
    """

    def __init__(self, client: Any, cfg: CameraConfig, seg_lookup: np.ndarray | None = None) -> None:
        self._c = client
        self.cfg = cfg
        self._proj = perspective(client, cfg.width, cfg.height, cfg.fov_deg, cfg.near_m, cfg.far_m)
        self._seg_lookup = seg_lookup
        self._tan_pitch = math.tan(math.radians(cfg.pitch_deg))

    def view_matrix(self, x_m: float, y_m: float, yaw_rad: float) -> Any:
        """View matrix of the camera on a car at (x, y, yaw)."""
        cfg = self.cfg
        cy, sy = math.cos(yaw_rad), math.sin(yaw_rad)
        ex, ey = x_m + cfg.forward_m * cy, y_m + cfg.forward_m * sy
        ahead = 10.0
        target = (ex + ahead * cy, ey + ahead * sy, cfg.height_m - ahead * self._tan_pitch)
        return look_at(self._c, (ex, ey, cfg.height_m), target)

    def render(
        self, x_m: float, y_m: float, yaw_rad: float, *, depth: bool, bodies: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The raw image for a car at (x, y, yaw).

        Returns:
            RGB (H, W, 3) uint8; metric depth (H, W) float32 if ``depth``; the body id of every
            pixel (-1: none) if ``bodies``.
        """
        cfg = self.cfg
        flags = 0 if bodies else pb.ER_NO_SEGMENTATION_MASK
        _, _, rgba, z_buf, seg = render_rgb(self._c, cfg.width, cfg.height, self.view_matrix(x_m, y_m, yaw_rad), self._proj, flags)
        rgb = rgb_image(rgba, cfg.height, cfg.width)
        depth_m = None
        if depth:
            z = np.asarray(z_buf, dtype=np.float32).reshape(cfg.height, cfg.width)
            depth_m = (cfg.far_m * cfg.near_m / (cfg.far_m - (cfg.far_m - cfg.near_m) * z)).astype(np.float32)
        body = None
        if bodies:
            ids = np.asarray(seg, dtype=np.int64).reshape(cfg.height, cfg.width)
            body = np.where(ids >= 0, ids & ((1 << 24) - 1), -1)
        return rgb, depth_m, body

    def classes(self, body: np.ndarray) -> np.ndarray:
        """``SEG_CLASSES`` ids of a body-id image (0 where no body, or without a lookup)."""
        if self._seg_lookup is None:
            return np.zeros(body.shape, np.uint8)
        lookup = self._seg_lookup
        return np.where(body >= 0, lookup[np.clip(body, 0, len(lookup) - 1)], 0).astype(np.uint8)

    def capture(self, x_m: float, y_m: float, yaw_rad: float, *, need_depth: bool = False) -> CameraFrame:
        """Render the camera image for a car at (x, y, yaw); depth also when ``need_depth`` (no weather: see ``World.render_camera``)."""
        cfg = self.cfg
        seg = cfg.segmentation and self._seg_lookup is not None
        rgb, depth_m, body = self.render(x_m, y_m, yaw_rad, depth=cfg.depth or need_depth, bodies=seg)
        return CameraFrame(rgb=rgb, depth_m=depth_m, segmentation=self.classes(body) if body is not None else None)
