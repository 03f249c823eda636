from __future__ import annotations

import pytest

from drive_sim.vehicle_metrics import measure_acceleration, measure_braking


def test_full_brake_from_100_kmh_plausible_and_longer_on_low_friction():
    dry = measure_braking(friction=0.9)
    slippery = measure_braking(friction=0.2)
    # Ideal locked-wheel distance v^2 / (2 mu g) is 43.7 m at mu 0.9 and 197 m at mu 0.2.
    assert 35.0 < dry.distance_m < 55.0
    assert slippery.distance_m > 3.0 * dry.distance_m
    assert slippery.distance_m == pytest.approx(27.78**2 / (2 * 0.2 * 9.81), rel=0.2)


def test_acceleration_and_top_speed_plausible():
    acc = measure_acceleration(max_time_s=60.0)
    assert acc.zero_to_100_s is not None and 6.0 < acc.zero_to_100_s < 12.0
    assert 160.0 < acc.top_speed_kmh < 240.0
