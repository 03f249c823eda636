"""Action types, chosen by name from ``ACTIONS``.

The action adapter is the only code that makes a ``Control``.

- ``continuous``: Box([-1, 1]^2) float32 ``[steer, acceleration]``; steer +1 is full left;
  acceleration > 0 is throttle, < 0 is brake. Out-of-range values are clipped and counted;
  NaN or infinite values raise ``ValueError``.
- ``discrete``: Discrete(steer_bins * accel_bins); index ``i`` means steer
  ``steer_values[i // accel_bins]`` and acceleration ``accel_values[i % accel_bins]``. With
  ``speed: cruise`` the grid is steering only (Discrete(len(steer_values))) and a speed controller
  (``drive_sim.planning.controllers.SpeedController``) holds a fraction of the speed limit.
- ``meta``: Discrete(5) ``META_ACTIONS`` = keep, left, right, faster, slower (highway-env's
  DiscreteMetaAction, reordered): the action sets a target lane and a target speed (steps of
  ``meta_speed_step_mps`` between 0 and the speed limit), and the lattice planner and the
  controllers drive towards them every control period, from the ``kinematics`` view of the world.
  An impossible action (left from the leftmost lane, faster at the limit) changes nothing and is
  counted in ``info["meta_noop"]`` and ``info["meta_noops_total"]``.

Every adapter has ``reset()`` (start of an episode), ``info()`` (entries for the step's info) and
``describe(action)`` (the action as a short text, for the video HUD).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from drive_sim.config import ConfigError
from drive_sim.planning.driver import DriverConfig
from drive_sim.scenarios import Scenario
from drive_sim.types import Control
from drive_sim.world import World
from envs.config import ActionConfig, ObservationConfig
from envs.kinematics import KinematicsDriver, KinematicsLayout, KinematicsObservation

META_ACTIONS = ("keep", "left", "right", "faster", "slower")


def _control(steer: float, accel: float) -> Control:
    return Control(steer=float(steer), throttle=max(float(accel), 0.0), brake=max(-float(accel), 0.0))


class ContinuousAction:
    """Steer and acceleration in [-1, 1]."""

    def __init__(self, cfg: ActionConfig) -> None:
        self.space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self) -> None:
        """Nothing to reset."""

    def info(self) -> dict[str, Any]:
        """No extra info."""
        return {}

    def describe(self, action: Any) -> str:
        """``steer +0.12 accel -0.40``."""
        steer, accel = np.asarray(action, np.float64).reshape(2).tolist()
        return f"steer {steer:+.2f} accel {accel:+.2f}"

    def to_control(self, action: Any) -> tuple[Control, int]:
        """Control for ``action`` and the number of components that had to be clipped."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,):
            raise ValueError(f"action: expected shape (2,) [steer, acceleration], got shape {a.shape}")
        # Two Python floats from here: per-element numpy calls cost more than the checks themselves.
        steer, accel = a.tolist()
        if not (math.isfinite(steer) and math.isfinite(accel)):
            raise ValueError(f"action: {[steer, accel]} is not finite; continuous actions are [steer, acceleration] in [-1, 1]")
        clipped = (abs(steer) > 1.0) + (abs(accel) > 1.0)
        if clipped:
            steer, accel = min(max(steer, -1.0), 1.0), min(max(accel, -1.0), 1.0)
        return _control(steer, accel), clipped


class DiscreteAction:
    """A grid of steer x acceleration values, or steering values with cruise control."""

    def __init__(self, cfg: ActionConfig, world: World, scenario: Scenario) -> None:
        self.steer_values = np.asarray(cfg.steer_values, np.float64) if cfg.steer_values else np.linspace(-1.0, 1.0, cfg.steer_bins)
        self.cruise = cfg.speed == "cruise"
        self.accel_values = np.zeros(0) if self.cruise else np.linspace(-1.0, 1.0, cfg.accel_bins)
        self.n = len(self.steer_values) if self.cruise else len(self.steer_values) * cfg.accel_bins
        self.space = spaces.Discrete(self.n)
        grid = [] if self.cruise else range(self.n)
        self._controls = [_control(self.steer_values[i // cfg.accel_bins], self.accel_values[i % cfg.accel_bins]) for i in grid]
        if self.cruise:
            from drive_sim.planning.controllers import ControllerConfig, SpeedController

            self._world = world
            self._scenario = scenario
            self._fraction = cfg.cruise_speed_fraction
            self._speed = SpeedController(ControllerConfig(), world.cfg.vehicle)
        self.target_speed_mps = 0.0

    def reset(self) -> None:
        """Clear the cruise controller's integral."""
        if self.cruise:
            self._speed.reset()

    def info(self) -> dict[str, Any]:
        """The cruise target (steering-only grids)."""
        return {"cruise_target_mps": self.target_speed_mps} if self.cruise else {}

    def describe(self, action: Any) -> str:
        """``#7 steer +0.06`` (cruise) or ``#7 steer +0.50 accel -1.00``."""
        i = int(np.asarray(action).reshape(-1)[0])
        if self.cruise:
            return f"#{i} steer {self.steer_values[i]:+.2f} cruise {self.target_speed_mps * 3.6:.0f} km/h"
        c = self._controls[i]
        return f"#{i} steer {c.steer:+.2f} accel {c.throttle - c.brake:+.2f}"

    def to_control(self, action: Any) -> tuple[Control, int]:
        """Control for index ``action`` (never clipped)."""
        a = np.asarray(action).reshape(-1)  # a (1,)-shaped action (SB3's, a vector env's slice) is one action
        if a.size != 1 or not np.issubdtype(a.dtype, np.integer) or not 0 <= int(a[0]) < self.n:
            raise ValueError(f"action: {action!r} is not allowed; discrete actions are integers in [0, {self.n - 1}]")
        a = a[0]
        if not self.cruise:
            return self._controls[int(a)], 0
        w = self._world
        self.target_speed_mps = self._fraction * self._scenario.speed_limit_at(w.frenet.s_m)
        throttle, brake, _ = self._speed.command(self.target_speed_mps, 0.0, w.ego.speed_mps, w.friction, w.cfg.control_period_s)
        return Control(steer=float(self.steer_values[int(a)]), throttle=throttle, brake=brake), 0


class MetaAction:
    """Keep / left / right / faster / slower, driven by the planner and controllers."""

    def __init__(self, cfg: ActionConfig, world: World, scenario: Scenario, obs_cfg: ObservationConfig) -> None:
        self.space = spaces.Discrete(len(META_ACTIONS))
        self.cfg = cfg
        self.world = world
        self.scenario = scenario
        # On the perceived observation the planner reads what the policy read (``see``), not the truth.
        self._view = None if obs_cfg.type == "perceived" else KinematicsObservation(world, scenario, obs_cfg)
        self._layout = KinematicsLayout(obs_cfg.vehicles, obs_cfg.waypoints, obs_cfg.waypoint_spacing_m)
        self._seen: np.ndarray | None = None
        self.driver = KinematicsDriver(DriverConfig(), world.cfg.vehicle, world.cfg.control_period_s)
        self.target_lane = 0  # counted from the rightmost lane of the car's direction
        self.target_speed_mps = 0.0
        self.noop = False
        self.noops_total = 0
        self.last_plan: Any = None

    def see(self, obs: np.ndarray) -> None:
        """The observation the policy got this period (the planner's view on ``perceived``)."""
        self._seen = obs

    def _decode(self) -> dict[str, Any]:
        if self._view is not None:
            return self._view.layout.decode(self._view.observe())
        assert self._seen is not None, "MetaAction on perceived: see(obs) before planning"
        return self._layout.decode(self._seen)

    def reset(self) -> None:
        """Target the current lane and the current speed rounded to a speed step."""
        k = self._decode()
        self.target_lane = int(k["lanes_right"])
        step = self.cfg.meta_speed_step_mps
        self.target_speed_mps = min(max(round(float(k["speed"]) / step) * step, 0.0), float(k["speed_limit"]))
        self.noop = False
        self.noops_total = 0
        self.last_plan = None
        self.driver.reset()

    def to_control(self, action: Any) -> tuple[Control, int]:
        """Update the targets from ``action``, then plan and control for one period."""
        a = np.asarray(action).reshape(-1)  # a (1,)-shaped action is one action
        if a.size != 1 or not np.issubdtype(a.dtype, np.integer) or not 0 <= int(a[0]) < len(META_ACTIONS):
            raise ValueError(f"action: {action!r} is not allowed; meta actions are integers in [0, 4] ({', '.join(META_ACTIONS)})")
        a = a[0]
        name = META_ACTIONS[int(a)]
        k = self._decode()
        right, left = int(k["lanes_right"]), int(k["lanes_left"])
        lanes = right + left + 1
        self.target_lane = min(self.target_lane, lanes - 1)  # the road may narrow (a junction route)
        step, limit = self.cfg.meta_speed_step_mps, float(k["speed_limit"])
        possible = {
            "keep": True,
            "left": self.target_lane < lanes - 1,
            "right": self.target_lane > 0,
            "faster": self.target_speed_mps + step <= limit + 1e-6,
            "slower": self.target_speed_mps - step >= -1e-6,
        }[name]
        self.noop = not possible
        self.noops_total += int(self.noop)
        if possible:
            self.target_lane += {"left": 1, "right": -1}.get(name, 0)
            self.target_speed_mps += {"faster": step, "slower": -step}.get(name, 0.0)
        rel = self.target_lane - right
        cmd = self.driver.drive(k, desired_speed_mps=self.target_speed_mps, lanes=(rel,), preferred_lane=rel)
        self.last_plan = cmd.plan
        return Control(cmd.steer, cmd.throttle, cmd.brake), 0

    def describe(self, action: Any) -> str:
        """``left -> lane 2, 25 m/s`` (``(no-op)`` when the action was impossible)."""
        name = META_ACTIONS[int(np.asarray(action).reshape(-1)[0])]
        return f"{name}{' (no-op)' if self.noop else ''} -> lane {self.target_lane}, {self.target_speed_mps * 3.6:.0f} km/h"

    def planned_path(self) -> np.ndarray | None:
        """The last plan's (K, 2) points in the ego frame it was planned in (None before the first)."""
        p = self.last_plan
        return None if p is None else np.stack([p.x_m, p.y_m], axis=-1)

    def info(self) -> dict[str, Any]:
        """The targets and the no-op counts."""
        return {
            "meta_noop": self.noop,
            "meta_noops_total": self.noops_total,
            "meta_target_lane": self.target_lane,
            "meta_target_speed_mps": self.target_speed_mps,
        }


ACTIONS: dict[str, Callable[..., Any]] = {"continuous": ContinuousAction, "discrete": DiscreteAction, "meta": MetaAction}


def make_action(cfg: ActionConfig, world: World, scenario: Scenario, obs_cfg: ObservationConfig) -> Any:
    """Build the action type named by ``cfg.type`` (``meta`` also reads the world).

    Raises:
        ConfigError: unknown name (the message lists the registered ones).
    """
    if cfg.type not in ACTIONS:
        raise ConfigError(f"action_type: {cfg.type!r} is not allowed; allowed: {', '.join(sorted(ACTIONS))}")
    if cfg.type == "meta":
        return MetaAction(cfg, world, scenario, obs_cfg)
    if cfg.type == "discrete":
        return DiscreteAction(cfg, world, scenario)
    return ACTIONS[cfg.type](cfg)
