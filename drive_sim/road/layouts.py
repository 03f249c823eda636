"""Road layouts: the multi-lane straight highway and the curvy two-lane rural road.

Layouts are generated from their own parameters (and, for the curvy road, a layout seed), so the
same config always draws the same road; episodes vary through the start position and traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from drive_sim.config import require
from drive_sim.road.geometry import Centreline, Road

LAYOUTS = ("highway", "curvy")


@dataclass(frozen=True)
class RoadConfig:
    """Road layout parameters.

    Attributes:
        layout: "highway" (straight, all lanes one way) or "curvy" (two-lane rural road, one lane each way).
        lanes: number of lanes (highway: 2-6; curvy: always 2).
        lane_width_m: lane width [m].
        length_m: length of the road [m].
        min_radius_m: smallest curve radius on the curvy road [m].
        max_radius_m: largest curve radius on the curvy road [m].
        layout_seed: seed of the curvy road's curve sequence (the road is fixed per seed).
        shoulder_m: paved width beyond each edge line, before the barrier [m].
    """

    layout: Literal["highway", "curvy"] = "highway"
    lanes: int = 4
    lane_width_m: float = 3.75
    length_m: float = 3000.0
    min_radius_m: float = 60.0
    max_radius_m: float = 400.0
    layout_seed: int = 0
    shoulder_m: float = 1.5

    def __post_init__(self) -> None:
        require(self.layout in LAYOUTS, "road.layout", f"{self.layout!r} is not allowed; allowed: {', '.join(LAYOUTS)}")
        require(2 <= self.lanes <= 6, "road.lanes", f"must be between 2 and 6, got {self.lanes}")
        require(self.layout != "curvy" or self.lanes == 2, "road.lanes", f"the curvy road has 2 lanes (one each way), got {self.lanes}")
        require(2.5 <= self.lane_width_m <= 5.0, "road.lane_width_m", f"must be in [2.5, 5.0], got {self.lane_width_m}")
        require(200.0 <= self.length_m <= 20000.0, "road.length_m", f"must be in [200, 20000], got {self.length_m}")
        require(
            20.0 <= self.min_radius_m <= self.max_radius_m,
            "road.min_radius_m",
            f"must be at least 20 and at most max_radius_m, got {self.min_radius_m}",
        )
        require(0.0 <= self.shoulder_m <= 5.0, "road.shoulder_m", f"must be in [0, 5], got {self.shoulder_m}")


def make_road(cfg: RoadConfig) -> Road:
    """Build the ``Road`` described by ``cfg``."""
    if cfg.layout == "highway":
        return _highway(cfg)
    return _curvy(cfg)


def _highway(cfg: RoadConfig) -> Road:
    n = cfg.lanes
    xs = np.arange(0.0, cfg.length_m + 1e-9, 10.0)
    line = Centreline(np.stack([xs, np.zeros_like(xs)], axis=1))
    offsets = tuple((i - (n - 1) / 2) * cfg.lane_width_m for i in range(n))
    return Road("highway", line, cfg.lane_width_m, offsets, (1,) * n, cfg.shoulder_m)


def curvy_curvature_profile(cfg: RoadConfig, ds_m: float = 1.0) -> np.ndarray:
    """Curvature [1/m] every ``ds_m`` metres.

    Straights, clothoid transitions and arcs of varied radius turning both ways, with the
    overall heading kept within ±100° so the road never folds back on itself.
    """
    rng = np.random.default_rng(cfg.layout_seed)
    n = int(cfg.length_m / ds_m) + 1
    kappa = np.zeros(n)
    i = int(100.0 / ds_m)  # a straight start
    heading = 0.0
    sign = 1.0 if rng.random() < 0.5 else -1.0
    while i < n:
        radius = rng.uniform(cfg.min_radius_m, cfg.max_radius_m)
        angle = np.deg2rad(rng.uniform(25.0, 90.0))
        if abs(heading + sign * angle) > np.deg2rad(100.0):
            sign = -sign
        k = sign / radius
        trans = int(rng.uniform(20.0, 40.0) / ds_m)  # clothoid length
        arc = max(int((angle * radius - trans * ds_m) / ds_m), 1)
        ramp = np.linspace(0.0, k, trans, endpoint=False)
        piece = np.concatenate([ramp, np.full(arc, k), ramp[::-1]])
        end = min(n, i + len(piece))
        kappa[i:end] = piece[: end - i]
        heading += float(np.sum(piece[: end - i]) * ds_m)
        i = end + int(rng.uniform(30.0, 150.0) / ds_m)
        sign = -sign if rng.random() < 0.7 else sign
    return kappa


def _curvy(cfg: RoadConfig) -> Road:
    ds = 1.0
    kappa = curvy_curvature_profile(cfg, ds)
    heading = np.concatenate([[0.0], np.cumsum(kappa[:-1]) * ds])
    xy = np.zeros((len(kappa), 2))
    xy[1:, 0] = np.cumsum(np.cos(heading[:-1]) * ds)
    xy[1:, 1] = np.cumsum(np.sin(heading[:-1]) * ds)
    w = cfg.lane_width_m
    return Road("curvy", Centreline(xy), w, (-w / 2, w / 2), (1, -1), cfg.shoulder_m)
