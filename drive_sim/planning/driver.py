"""``Driver``: the lattice planner and the controllers, run once per control period.

It keeps what a driver remembers between periods (the last commanded acceleration, the speed
controller's integral) and turns one ``PlanRequest`` into pedals and a steering command.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drive_sim.planning.controllers import LATERAL, ControllerConfig, EgoPose, SpeedController
from drive_sim.planning.lattice import LatticeConfig, LatticePlanner, PlanRequest, Trajectory
from drive_sim.vehicle import VehicleConfig


@dataclass(frozen=True)
class DriverConfig:
    """Planner and controller settings.

    Attributes:
        planner: lattice sampling, limits and weights.
        controller: lateral controller choice and gains.
        preview_s: the speed controller tracks the plan's speed this far ahead [s].
    """

    planner: LatticeConfig = field(default_factory=LatticeConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    preview_s: float = 0.3


@dataclass(frozen=True)
class DriveCommand:
    """One period's output.

    Attributes:
        steer: steering command in [-1, 1] (fraction of full lock, left positive).
        throttle, brake: pedals in [0, 1].
        accel_mps2: the commanded acceleration [m/s^2].
        plan: the trajectory it follows.
    """

    steer: float
    throttle: float
    brake: float
    accel_mps2: float
    plan: Trajectory


class Driver:
    """Plan, then follow the plan with the selected path controller and the speed PID."""

    def __init__(self, cfg: DriverConfig | None = None, vehicle: VehicleConfig | None = None) -> None:
        self.cfg = cfg or DriverConfig()
        self.vehicle = vehicle or VehicleConfig()
        self.planner = LatticePlanner(self.cfg.planner)
        self.lateral = LATERAL[self.cfg.controller.lateral](self.cfg.controller, self.vehicle)
        self.speed = SpeedController(self.cfg.controller, self.vehicle)

    def reset(self) -> None:
        """Forget the previous episode."""
        self.speed.reset()

    def accel_limits(self, speed_mps: float, friction: float) -> tuple[float, float]:
        """(largest deceleration, largest acceleration) on ``friction`` [m/s^2]."""
        return self.speed.accel_limits(speed_mps, friction)

    def drive(self, req: PlanRequest, pose: EgoPose, dt_s: float) -> DriveCommand:
        """Plan from ``req`` and return the pedals and steering that follow the plan from ``pose``."""
        plan = self.planner.plan(req)
        steer_rad = self.lateral.steer_rad(pose, plan.geometry)
        v_ref = float(np.interp(self.cfg.preview_s, plan.t_s, plan.v_mps))
        a_ref = float(np.interp(self.cfg.preview_s, plan.t_s, plan.a_mps2))
        throttle, brake, accel = self.speed.command(v_ref, a_ref, pose.speed_mps, req.friction, dt_s)
        steer = max(-1.0, min(1.0, steer_rad / self.vehicle.max_steer_rad))
        return DriveCommand(steer, throttle, brake, accel, plan)
