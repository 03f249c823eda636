"""Action types, chosen by name from ``ACTIONS``.

The action adapter is the only code that makes a ``Control``.

- ``continuous``: Box([-1, 1]^2) float32 ``[steer, acceleration]``; steer +1 is full left;
  acceleration > 0 is throttle, < 0 is brake. Out-of-range values are clipped and counted;
  NaN or infinite values raise ``ValueError``.
- ``discrete``: Discrete(steer_bins * accel_bins); index ``i`` means steer
  ``steer_values[i // accel_bins]`` and acceleration ``accel_values[i % accel_bins]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from drive_sim.config import ConfigError
from drive_sim.types import Control
from envs.config import ActionConfig


def _control(steer: float, accel: float) -> Control:
    return Control(steer=float(steer), throttle=max(float(accel), 0.0), brake=max(-float(accel), 0.0))


class ContinuousAction:
    """Steer and acceleration in [-1, 1]."""

    def __init__(self, cfg: ActionConfig) -> None:
        self.space = spaces.Box(-1.0, 1.0, (2,), np.float32)

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
    """A grid of steer x acceleration values."""

    def __init__(self, cfg: ActionConfig) -> None:
        self.steer_values = np.linspace(-1.0, 1.0, cfg.steer_bins)
        self.accel_values = np.linspace(-1.0, 1.0, cfg.accel_bins)
        self.n = cfg.steer_bins * cfg.accel_bins
        self.space = spaces.Discrete(self.n)
        self._controls = [_control(self.steer_values[i // cfg.accel_bins], self.accel_values[i % cfg.accel_bins]) for i in range(self.n)]

    def to_control(self, action: Any) -> tuple[Control, int]:
        """Control for index ``action`` (never clipped)."""
        a = np.asarray(action)
        if a.size != 1 or not np.issubdtype(a.dtype, np.integer) or not 0 <= int(a) < self.n:
            raise ValueError(f"action: {action!r} is not allowed; discrete actions are integers in [0, {self.n - 1}]")
        return self._controls[int(a)], 0


ACTIONS: dict[str, Callable[[ActionConfig], Any]] = {"continuous": ContinuousAction, "discrete": DiscreteAction}


def make_action(cfg: ActionConfig) -> Any:
    """Build the action type named by ``cfg.type``.

    Raises:
        ConfigError: unknown name (the message lists the registered ones).
    """
    if cfg.type not in ACTIONS:
        raise ConfigError(f"action_type: {cfg.type!r} is not allowed; allowed: {', '.join(sorted(ACTIONS))}")
    return ACTIONS[cfg.type](cfg)
