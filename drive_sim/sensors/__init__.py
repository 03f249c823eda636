"""Sensors and their faults.

Lidar (one ``rayTestBatch`` per reading), the ego camera (TinyRenderer), radar, GNSS, IMU, wheel
odometry, a friction estimator and scheduled faults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drive_sim.sensors.camera import SEG_CLASSES, Camera, CameraConfig
from drive_sim.sensors.faults import FAULT_KINDS, SENSOR_NAMES, SensorFault, active_fault
from drive_sim.sensors.lidar import Lidar, LidarConfig
from drive_sim.sensors.vehicle_sensors import (
    FrictionEstimatorConfig,
    GnssBias,
    GnssConfig,
    ImuConfig,
    OdometryConfig,
    Radar,
    RadarConfig,
    SensorReadings,
)


@dataclass(frozen=True)
class SensorsConfig:
    """Radar, GNSS, IMU, odometry, the friction estimator and the fault schedule.

    (Lidar and camera are configured at ``world.lidar`` and ``world.camera``.)

    Attributes:
        radar, gnss, imu, odometry: the sensors.
        friction_estimator: noise of the friction estimate an observation may include.
        faults: scheduled fault windows.
    """

    radar: RadarConfig = field(default_factory=RadarConfig)
    gnss: GnssConfig = field(default_factory=GnssConfig)
    imu: ImuConfig = field(default_factory=ImuConfig)
    odometry: OdometryConfig = field(default_factory=OdometryConfig)
    friction_estimator: FrictionEstimatorConfig = field(default_factory=FrictionEstimatorConfig)
    faults: tuple[SensorFault, ...] = ()


__all__ = [
    "FAULT_KINDS",
    "SEG_CLASSES",
    "SENSOR_NAMES",
    "Camera",
    "CameraConfig",
    "FrictionEstimatorConfig",
    "GnssBias",
    "GnssConfig",
    "ImuConfig",
    "Lidar",
    "LidarConfig",
    "OdometryConfig",
    "Radar",
    "RadarConfig",
    "SensorFault",
    "SensorReadings",
    "SensorsConfig",
    "active_fault",
]
