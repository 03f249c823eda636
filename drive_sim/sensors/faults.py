"""Scheduled sensor faults: dropout (no reading, flagged), frozen reading, added noise."""

from __future__ import annotations

from dataclasses import dataclass

from drive_sim.config import require

SENSOR_NAMES = ("lidar", "camera", "radar", "gnss", "imu", "odometry")
FAULT_KINDS = ("dropout", "frozen", "noise")


@dataclass(frozen=True)
class SensorFault:
    """One fault window.

    Attributes:
        sensor: which sensor (one of ``SENSOR_NAMES``).
        kind: "dropout" (no reading; the valid flag drops), "frozen" (the last reading repeats,
            unflagged, as a stuck driver would), "noise" (extra Gaussian noise).
        start_s: episode time the fault begins [s].
        end_s: episode time it ends [s] (exclusive).
        noise_scale: for "noise": standard deviation of the added noise, in the sensor's units
            (metres for ranges and positions, m/s, m/s^2, rad/s; intensity steps for the camera).
    """

    sensor: str
    kind: str
    start_s: float
    end_s: float
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        require(
            self.sensor in SENSOR_NAMES, "sensors.faults[].sensor", f"{self.sensor!r} is not allowed; allowed: {', '.join(SENSOR_NAMES)}"
        )
        require(self.kind in FAULT_KINDS, "sensors.faults[].kind", f"{self.kind!r} is not allowed; allowed: {', '.join(FAULT_KINDS)}")
        require(
            0.0 <= self.start_s < self.end_s, "sensors.faults[].start_s", f"must be >= 0 and before end_s, got {self.start_s}..{self.end_s}"
        )
        require(self.noise_scale >= 0.0, "sensors.faults[].noise_scale", f"must be non-negative, got {self.noise_scale}")

    def active(self, time_s: float) -> bool:
        """Whether the fault is on at ``time_s``."""
        return self.start_s <= time_s < self.end_s


def active_fault(faults: tuple[SensorFault, ...], sensor: str, time_s: float) -> SensorFault | None:
    """The first fault of ``sensor`` active at ``time_s``, or None."""
    for f in faults:
        if f.sensor == sensor and f.active(time_s):
            return f
    return None
