from __future__ import annotations

from agents.reports.perf import measure_memory


def test_rss_flat_over_20k_steps_with_resets():
    mem = measure_memory(steps=20_000, reset_every=200)
    assert mem["growth_mb"] < 50.0, mem
