"""Sensors: lidar (one ``rayTestBatch`` per reading) and the ego camera (TinyRenderer)."""

from __future__ import annotations

from drive_sim.sensors.camera import SEG_CLASSES, Camera, CameraConfig
from drive_sim.sensors.lidar import Lidar, LidarConfig

__all__ = ["SEG_CLASSES", "Camera", "CameraConfig", "Lidar", "LidarConfig"]
