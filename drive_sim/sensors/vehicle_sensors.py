"""Radar, GNSS, IMU and wheel odometry: seeded noise models over the simulated state.

Each sensor is configured by a frozen dataclass; ``enabled: false`` removes it. Readings carry a
``valid`` flag that a dropout fault clears. All noise comes from the episode's generator.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from drive_sim._bullet import pb
from drive_sim.config import require


@dataclass(frozen=True)
class RadarConfig:
    """Forward radar: a fan of beams returning range and range rate of the nearest object.

    Attributes:
        enabled: whether the world has this sensor.
        beams: number of beams across ``fov_deg``.
        fov_deg: horizontal field of view [deg].
        range_m: maximum range [m].
        range_noise_std_m: range noise [m].
        rate_noise_std_mps: range-rate noise [m/s].
    """

    enabled: bool = True
    beams: int = 5
    fov_deg: float = 30.0
    range_m: float = 150.0
    range_noise_std_m: float = 0.3
    rate_noise_std_mps: float = 0.2

    def __post_init__(self) -> None:
        require(1 <= self.beams <= 64, "sensors.radar.beams", f"must be between 1 and 64, got {self.beams}")
        require(0 < self.fov_deg <= 120, "sensors.radar.fov_deg", f"must be in (0, 120], got {self.fov_deg}")
        require(self.range_m > 0, "sensors.radar.range_m", f"must be positive, got {self.range_m}")
        require(min(self.range_noise_std_m, self.rate_noise_std_mps) >= 0, "sensors.radar", "noise must be non-negative")


@dataclass(frozen=True)
class GnssConfig:
    """Satellite positioning: white noise plus a slowly drifting (Gauss-Markov) bias, at a low rate.

    Attributes:
        enabled: whether the world has this sensor.
        rate_hz: fixes per second; must divide the control rate (a fix is held in between).
        noise_std_m: white noise per axis [m].
        bias_std_m: stationary standard deviation of the bias per axis [m].
        bias_tau_s: correlation time of the bias [s].
    """

    enabled: bool = True
    rate_hz: float = 5.0
    noise_std_m: float = 1.5
    bias_std_m: float = 2.0
    bias_tau_s: float = 60.0

    def __post_init__(self) -> None:
        require(0 < self.rate_hz <= 100, "sensors.gnss.rate_hz", f"must be in (0, 100], got {self.rate_hz}")
        require(min(self.noise_std_m, self.bias_std_m) >= 0, "sensors.gnss", "noise and bias must be non-negative")
        require(self.bias_tau_s > 0, "sensors.gnss.bias_tau_s", f"must be positive, got {self.bias_tau_s}")


@dataclass(frozen=True)
class ImuConfig:
    """Inertial unit: longitudinal and lateral acceleration and yaw rate.

    White noise on every reading and a bias drawn per episode.

    Attributes:
        enabled: whether the world has this sensor.
        accel_noise_std_mps2, gyro_noise_std_rps: white noise.
        accel_bias_std_mps2, gyro_bias_std_rps: spread of the per-episode biases.
    """

    enabled: bool = True
    accel_noise_std_mps2: float = 0.05
    gyro_noise_std_rps: float = 0.002
    accel_bias_std_mps2: float = 0.05
    gyro_bias_std_rps: float = 0.001

    def __post_init__(self) -> None:
        require(
            min(self.accel_noise_std_mps2, self.gyro_noise_std_rps, self.accel_bias_std_mps2, self.gyro_bias_std_rps) >= 0,
            "sensors.imu",
            "noise and bias must be non-negative",
        )


@dataclass(frozen=True)
class OdometryConfig:
    """Wheel odometry: speed from the wheels' rotation, so it reads wrong when wheels slip or lock.

    Attributes:
        enabled: whether the world has this sensor.
        noise_std_mps: white noise [m/s].
    """

    enabled: bool = True
    noise_std_mps: float = 0.05

    def __post_init__(self) -> None:
        require(self.noise_std_mps >= 0, "sensors.odometry.noise_std_mps", f"must be non-negative, got {self.noise_std_mps}")


class Radar:
    """Forward radar on the front bumper (one ``rayTestBatch`` per reading)."""

    def __init__(self, client: Any, cfg: RadarConfig, mount_forward_m: float, height_m: float, ray_mask: int) -> None:
        self.cfg = cfg
        n = cfg.beams
        half = math.radians(cfg.fov_deg) / 2
        self.angles_rad = np.linspace(-half, half, n) if n > 1 else np.zeros(1)
        self._forward, self._height, self._mask = mount_forward_m, height_m, ray_mask
        self._ray_batch = functools.partial(pb.rayTestBatch, physicsClientId=client._client)

    def cast(self, x_m: float, y_m: float, yaw_rad: float) -> tuple[np.ndarray, np.ndarray]:
        """(range [m] per beam, hit body id per beam or -1), noise-free."""
        cfg = self.cfg
        c, s = math.cos(yaw_rad), math.sin(yaw_rad)
        ox, oy = x_m + self._forward * c, y_m + self._forward * s
        ang = yaw_rad + self.angles_rad
        frm = [[ox, oy, self._height]] * cfg.beams
        to = np.stack([ox + cfg.range_m * np.cos(ang), oy + cfg.range_m * np.sin(ang), np.full(cfg.beams, self._height)], axis=1).tolist()
        hits = self._ray_batch(frm, to, numThreads=1, collisionFilterMask=self._mask)
        ids = np.fromiter((h[0] for h in hits), dtype=np.int64, count=cfg.beams)
        frac = np.fromiter((h[2] for h in hits), dtype=np.float64, count=cfg.beams)
        return np.where(ids >= 0, frac * cfg.range_m, cfg.range_m), ids


class GnssBias:
    """First-order Gauss-Markov bias per axis: b <- b exp(-dt/tau) + sigma sqrt(1 - exp(-2 dt/tau)) w."""

    def __init__(self, cfg: GnssConfig) -> None:
        self.cfg = cfg
        self.value = np.zeros(2)

    def reset(self, rng: np.random.Generator) -> None:
        """Draw the initial bias from its stationary distribution."""
        self.value = rng.normal(0.0, self.cfg.bias_std_m, 2)

    def advance(self, dt_s: float, rng: np.random.Generator) -> np.ndarray:
        """Propagate the bias by ``dt_s``."""
        cfg = self.cfg
        a = math.exp(-dt_s / cfg.bias_tau_s)
        self.value = self.value * a + cfg.bias_std_m * math.sqrt(1 - a * a) * rng.normal(0.0, 1.0, 2)
        return self.value


@dataclass(frozen=True)
class FrictionEstimatorConfig:
    """An on-board friction estimator's output, never the exact value.

    The true coefficient with a per-episode bias and per-reading noise, as a slip-based estimator
    would deliver.

    Attributes:
        bias_std: spread of the per-episode bias.
        noise_std: per-reading noise.
    """

    bias_std: float = 0.05
    noise_std: float = 0.02

    def __post_init__(self) -> None:
        require(min(self.bias_std, self.noise_std) >= 0, "sensors.friction_estimator", "noise and bias must be non-negative")


@dataclass(frozen=True)
class SensorReadings:
    """Radar, GNSS, IMU and odometry readings of one control step (None where disabled).

    Attributes:
        radar_ranges_m, radar_range_rates_mps: per beam; max range and 0 where nothing is seen.
        gnss_xy_m: position fix (held between fixes at the GNSS rate).
        imu: (longitudinal accel [m/s^2], lateral accel [m/s^2], yaw rate [rad/s]).
        odometry_speed_mps: speed from the wheels' rotation.
        valid: sensor name -> False while a dropout fault is active.
    """

    radar_ranges_m: np.ndarray | None
    radar_range_rates_mps: np.ndarray | None
    gnss_xy_m: np.ndarray | None
    imu: np.ndarray | None
    odometry_speed_mps: float | None
    valid: dict[str, bool]
