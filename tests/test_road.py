from __future__ import annotations

import numpy as np
import pytest

from drive_sim.config import ConfigError
from drive_sim.road import Centreline, RoadConfig, make_road


def test_highway_lanes_and_edges():
    road = make_road(RoadConfig(layout="highway", lanes=4, lane_width_m=3.75))
    assert road.n_lanes == 4
    assert road.lane_offsets_m == pytest.approx((-5.625, -1.875, 1.875, 5.625))
    assert road.edge_right_m == pytest.approx(-7.5)
    assert road.edge_left_m == pytest.approx(7.5)
    assert road.forward_lanes() == (0, 1, 2, 3)


def test_circle_curvature_and_heading():
    r = 50.0
    t = np.linspace(0, np.pi, 2000)
    line = Centreline(np.stack([r * np.sin(t), r - r * np.cos(t)], axis=1))  # counter-clockwise
    assert line.length_m == pytest.approx(np.pi * r, rel=1e-4)
    assert np.median(line.curvature) == pytest.approx(1 / r, rel=1e-3)
    _, heading, _ = line.interpolate(np.array([0.0, np.pi * r / 2]))
    assert heading == pytest.approx([0.0, np.pi / 2], abs=2e-3)


def test_frenet_round_trip_on_curvy_road():
    road = make_road(RoadConfig(layout="curvy", lanes=2, layout_seed=3))
    rng = np.random.default_rng(0)
    s = rng.uniform(50, road.length_m - 50, 500)
    d = rng.uniform(-6, 6, 500)
    xy, _ = road.centreline.to_world(s, d)
    s2, d2, _ = road.centreline.project(xy)
    assert np.max(np.abs(s2 - s)) < 0.05
    assert np.max(np.abs(d2 - d)) < 0.02


def test_locate_agrees_with_project():
    road = make_road(RoadConfig(layout="curvy", lanes=2, layout_seed=1))
    s = np.linspace(10, 2900, 400)
    xy, _ = road.centreline.to_world(s, np.full_like(s, 1.3))
    hint = None
    for (x, y), s_true in zip(xy, s, strict=True):
        s_loc, d_loc, _, hint = road.centreline.locate(float(x), float(y), hint)
        assert s_loc == pytest.approx(s_true, abs=0.05)
        assert d_loc == pytest.approx(1.3, abs=0.02)
    # A far jump from the hint falls back to the global search.
    s_loc, _, _, _ = road.centreline.locate(float(xy[0, 0]), float(xy[0, 1]), hint)
    assert s_loc == pytest.approx(s[0], abs=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_curvy_road_turns_both_ways_within_radius_and_never_folds(seed):
    cfg = RoadConfig(layout="curvy", lanes=2, min_radius_m=60, max_radius_m=400, layout_seed=seed)
    road = make_road(cfg)
    k = road.centreline.curvature
    assert k.max() > 1 / 400 and k.min() < -1 / 400, "curves in both directions"
    assert np.abs(k).max() <= 1 / 60 * 1.05
    assert np.abs(road.centreline.heading).max() <= np.deg2rad(101)
    # No two points more than 100 m apart along the road come within 30 m of each other.
    xy = road.centreline.xy[::10]
    s = road.centreline.s[::10]
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    far_along = np.abs(s[:, None] - s[None, :]) > 100
    assert dist[far_along].min() > 30


def test_bad_road_config_names_field():
    with pytest.raises(ConfigError, match="road.lanes"):
        RoadConfig(lanes=9)
    with pytest.raises(ConfigError, match="road.lanes: the curvy layout has 2 lanes"):
        RoadConfig(layout="curvy", lanes=3)
    with pytest.raises(ConfigError, match="road.layout"):
        RoadConfig(layout="maze")  # type: ignore[arg-type]
