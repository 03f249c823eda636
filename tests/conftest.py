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


# Hard swerves, so that 30 steps cover lane offsets of a metre or so (a tiny net needs something to learn).
PERCEPTION_SMALL = dict(
    scenarios=("lanekeep", "highway"),
    episodes=20,
    sizes=(32,),
    max_steps=30,
    every=1,
    holdout="",
    lateral_drift_mps2=1.0,
    swerves_per_min=30.0,
    swerve_mps2=3.0,
)


@pytest.fixture(scope="session")
def perception_data(tmp_path_factory):
    """A small labelled dataset at 32 px (20 episodes of 30 steps), shared by the perception and compression tests; do not modify it."""
    from agents.datasets.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("pdata")
    collect(CollectConfig(**PERCEPTION_SMALL), out, workers=2, progress=False)
    return out
