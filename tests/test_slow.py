"""Slow checks, out of the default run: `pytest -m slow`."""

from __future__ import annotations

import dataclasses

import pytest

from drive_sim.vehicle_metrics import measure_braking, measure_cornering
from drive_sim.world import WorldConfig

pytestmark = pytest.mark.slow


def test_default_physics_step_matches_fine_reference():
    """The default step (0.05 s, 50 iterations) agrees with 0.005 s in cornering and braking."""
    default = WorldConfig()
    fine = dataclasses.replace(default, physics_dt_s=0.005)
    c_def, c_fine = measure_cornering(default), measure_cornering(fine)
    assert c_def.yaw_rate_rps == pytest.approx(c_fine.yaw_rate_rps, rel=0.06)
    for mu in (0.9, 0.15):
        assert measure_braking(default, friction=mu).distance_m == pytest.approx(measure_braking(fine, friction=mu).distance_m, rel=0.03)
