"""The rule-based expert driver: the baseline every learned policy is compared with.

It reads only the ``kinematics`` observation (nearby vehicles, lane-centre waypoints, speed
limits, the stop or give-way line ahead, the friction it is told or estimates), plans with the
Frenet lattice planner and drives with pure pursuit and a speed PID (``drive_sim.planning``).
It keeps right when it can, overtakes slower vehicles when a lane is free, stops at red
signals and gives way at give-way lines when the gap is too small. Its action is the
``continuous`` one: ``[steer, acceleration]``.

On the ``perceived`` observation it also reads how unsure the perception stack is
(``Estimate.caution``: the position's spread, lane readings the filter refused, a sensor out, GNSS
lost) and drives more carefully with it: up to ``CAUTION_SLOWDOWN`` below the limit and up to
``1 + CAUTION_GAP`` times the planner's following gap, smoothed over ``CAUTION_TAU_S``. It stops
``STOP_SIGHT_M`` farther back from a red light, where its camera still sees the signal head. (The
lattice's car-following candidates rarely win against velocity keeping, so in practice the lower
speed is what the caution changes; docs/fusion.md.)
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from agents.policies.base import read_agent_json
from drive_sim.config import ConfigError, build, require
from drive_sim.files import write_text
from drive_sim.planning.driver import DriveCommand, DriverConfig
from drive_sim.vehicle import VehicleConfig
from envs.kinematics import KinematicsDriver, KinematicsLayout

#: The share of the limit the expert gives up at full caution.
CAUTION_SLOWDOWN = 0.25
#: The following gap grows by this share of itself at full caution.
CAUTION_GAP = 1.0
#: Time constant of the caution the expert drives with; rises at once, decays over this [s].
CAUTION_TAU_S = 3.0
#: On ``perceived`` the expert stops this much farther back from a red or amber light than on the
#: truth [m], where its camera reads the light best: at the truth's stopping place, 2.7 m from the
#: line, the net reads the light right a third of the time, at 6-10 m 0.80-0.97 of the time (and
#: a car that waited 7.4 m out saw its green as red for the whole phase), at 11-14 m 0.97-1.00
#: (Intersection-v0, tuning seeds 1000-1011, docs/fusion.md).
STOP_SIGHT_M = 9.0


class ExpertAgent:
    """Planner + controllers on the ``kinematics`` observation (see the module docstring).

    Args:
        layout: the observation's layout (``ExpertAgent.for_env`` reads it from an env).
        cfg: planner and controller settings.
        control_period_s: the environment's control period [s].
        vehicle: the ego car's parameters (for the pedal model).
    """

    def __init__(
        self,
        layout: KinematicsLayout,
        cfg: DriverConfig | None = None,
        control_period_s: float = 0.1,
        vehicle: VehicleConfig | None = None,
    ) -> None:
        self.layout = layout
        self.cfg = cfg or DriverConfig()
        self.control_period_s = control_period_s
        self.driver = KinematicsDriver(self.cfg, vehicle, control_period_s)
        self.last: DriveCommand | None = None
        #: () -> the perception stack's estimate (``DrivingEnv.perceived_estimate``), or None: no caution.
        self.estimate_source: Any = None
        self.caution = 0.0

    @classmethod
    def for_env(cls, env: Any, cfg: DriverConfig | None = None) -> ExpertAgent:
        """An expert for ``env``, which must use the ``kinematics`` (or ``perceived``) observation and ``continuous`` actions.

        Raises:
            ConfigError: other observation or action types.
        """
        config = env.unwrapped.config
        if config.observation.type not in ("kinematics", "perceived") or config.action.type != "continuous":
            raise ConfigError(
                "expert: needs obs_type='kinematics' (or 'perceived', the same layout) and action_type='continuous', "
                f"got {config.observation.type!r} and {config.action.type!r}"
            )
        o = config.observation
        world = config.scenario.world
        agent = cls(KinematicsLayout(o.vehicles, o.waypoints, o.waypoint_spacing_m), cfg, world.control_period_s, world.vehicle)
        agent.attach(env)
        return agent

    def attach(self, env: Any) -> None:
        """Drive ``env`` from now on: on a ``perceived`` env read its stack's estimate (the caution), elsewhere none.

        ``run_episode`` calls it with the env it drives, so an expert built on one env (the bench's
        probe of the scenario, a ``kinematics`` one) and run on another (``expert@perceived``) reads
        the estimate of the env it drives.
        """
        base = env.unwrapped
        config = getattr(base, "config", None)
        if config is not None and config.observation.type == "perceived":
            self.estimate_source = lambda: base.perceived_estimate
        else:
            self.estimate_source = None

    def reset(self) -> None:
        """Start of an episode."""
        self.driver.reset()
        self.last = None
        self.caution = 0.0

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """``[steer, acceleration]`` for one ``kinematics`` observation (the expert is deterministic)."""
        k = self.layout.decode(obs)
        desired, gap, lead_brake = None, 1.0, None
        if self.estimate_source is not None:
            est = self.estimate_source()
            now = 0.0 if est is None else float(est.caution)
            # At once up (a sensor lost is a reason to slow now), slowly down (no speeding up on one good period).
            self.caution = max(now, self.caution + (now - self.caution) * self.control_period_s / CAUTION_TAU_S)
            limit = min(float(k["speed_limit"]), float(k["speed_limit_ahead"]))
            desired = limit * (1.0 - CAUTION_SLOWDOWN * self.caution)
            gap = 1.0 + CAUTION_GAP * self.caution
            # The sensors do not see past the car ahead (the truth does): it may be closing on a
            # queue, so the expert keeps the distance to stop behind it if it brakes as hard as a
            # car can (PlanRequest.lead_brake_mps2).
            lead_brake = self.driver.driver.accel_limits(float(k["speed"]), float(k["friction"]))[0]
            line = float(k["stop_distance"])
            if k["stop_required"] > 0.5 and math.isfinite(line):
                # Stop where the light stays in view; already closer: stop as soon as it can.
                k["stop_distance"] = max(line - STOP_SIGHT_M, min(line, 0.3))
        cmd = self.driver.drive(
            k, desired_speed_mps=desired, preferred_lane=-int(k["lanes_right"]), time_gap_scale=gap, lead_brake_mps2=lead_brake
        )
        self.last = cmd
        accel = cmd.throttle if cmd.throttle > 0.0 else -cmd.brake
        return np.array([cmd.steer, accel], dtype=np.float32)

    def planned_path(self) -> np.ndarray | None:
        """The last plan's (K, 2) points in the ego frame it was planned in (None before the first act)."""
        p = None if self.last is None else self.last.plan
        return None if p is None else np.stack([p.x_m, p.y_m], axis=-1)

    def save(self, path: str | Path) -> None:
        """Write the settings as JSON (the expert has no learned parameters)."""
        data = {
            "agent": "expert",
            "layout": dataclasses.asdict(self.layout),
            "driver": dataclasses.asdict(self.cfg),
            "control_period_s": self.control_period_s,
        }
        write_text(Path(path), json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> ExpertAgent:
        """Read settings written by ``save``."""
        data = read_agent_json(path, "expert")
        try:
            for key in ("layout", "driver"):
                if not isinstance(data.get(key), dict):
                    raise ConfigError(f"{key}: expected a mapping")
            layout = build(KinematicsLayout, data["layout"], path="layout")
            require(
                layout.vehicles >= 0 and layout.waypoints >= 2 and layout.spacing_m > 0,
                "layout",
                "needs vehicles >= 0, waypoints >= 2, spacing_m > 0",
            )
            period = data.get("control_period_s")
            ok = isinstance(period, (int, float)) and not isinstance(period, bool) and math.isfinite(period) and 0 < period <= 1.0
            require(ok, "control_period_s", f"expected a number of seconds in (0, 1], got {period!r}")
            return cls(layout, build(DriverConfig, data["driver"], path="driver"), float(period))
        except ConfigError as err:
            raise ConfigError(f"agent: {path}: {err}") from None
