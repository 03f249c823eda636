"""Memory stays flat (the same measurement as ``drive-sim perf``'s memory row; slow: run with -m slow)."""

from __future__ import annotations

import pytest

from agents.reports.perf import measure_env_cycles, measure_memory


@pytest.mark.slow
def test_rss_flat_over_10k_steps_with_resets():
    mem = measure_memory(steps=10_000, reset_every=200)
    assert mem["growth_mb"] < 30.0, mem


@pytest.mark.slow
def test_rss_flat_over_100_env_create_close_cycles():
    """Issue 16: making and closing an env leaked 1.5-5.6 MB a cycle (PyBullet keeps the shape arguments it is given)."""
    mem = measure_env_cycles(100)
    assert mem["growth_mb"] < 15.0, mem  # the old leak gave 150 MB or more over 100 cycles
