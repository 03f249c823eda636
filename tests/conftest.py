from __future__ import annotations

import numpy as np
import pytest

from drive_sim.road import RoadConfig
from drive_sim.traffic import TrafficConfig
from drive_sim.world import EgoStartConfig, World, WorldConfig


@pytest.fixture
def empty_highway():
    """A highway world without traffic, ego in lane 1 at 20 m/s, reset with seed 0."""
    cfg = WorldConfig(
        road=RoadConfig(length_m=1500.0),
        traffic=TrafficConfig(count=0),
        ego=EgoStartConfig(s_m=100.0, s_jitter_m=0.0, lane=1, speed_min_mps=20.0, speed_max_mps=20.0),
    )
    world = World(cfg)
    world.reset(np.random.default_rng(0))
    yield world
    world.close()
