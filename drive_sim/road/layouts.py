"""Road layouts: open roads (highway, curvy road) and junctions built as lane graphs.

The junctions are the on-ramp merge, the signalised four-way intersection and the roundabout.

Layouts are generated from their own parameters (and, for the curvy road, a layout seed), so the
same config always draws the same road; episodes vary through the start position and traffic.
On a junction layout the ego car's ``Road`` is its route through the lane graph (one lane wide),
so the environment's Frenet features, progress and route completion work the same everywhere.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from drive_sim.config import require
from drive_sim.road.geometry import Centreline, Road
from drive_sim.road.network import LaneGraph, SignalConfig, build_intersection, build_merge, build_roundabout

LAYOUTS = ("highway", "curvy", "merge", "intersection", "roundabout")
NETWORK_LAYOUTS = ("merge", "intersection", "roundabout")


@dataclass(frozen=True)
class RoadConfig:
    """Road layout parameters.

    Attributes:
        layout: "highway" (straight, all lanes one way), "curvy" (two-lane rural road, one lane
            each way), "merge" (one-way main road with an on-ramp), "intersection" (two two-lane
            roads crossing under signals) or "roundabout" (single-lane ring, four two-lane arms).
        lanes: number of lanes (highway: 2-6; curvy, intersection, roundabout: 2, one each way;
            merge: 2-4 main-road lanes).
        lane_width_m: lane width [m].
        length_m: length of the road [m].
        min_radius_m: smallest curve radius on the curvy road [m].
        max_radius_m: largest curve radius on the curvy road [m].
        layout_seed: seed of the curvy road's curve sequence (the road is fixed per seed).
        shoulder_m: paved width beyond each edge line, before the barrier [m]; on junction
            layouts, how far beyond a lane's edge the car counts as still on the road.
        arm_length_m: length of each intersection/roundabout arm before the junction [m].
        radius_m: radius of the roundabout ring's lane centre [m].
        merge_at_m: where the on-ramp joins the main road, along it [m].
        ramp_length_m: length of the ramp's curved part [m].
        signals: signal timing at the intersection.
    """

    layout: Literal["highway", "curvy", "merge", "intersection", "roundabout"] = "highway"
    lanes: int = 4
    lane_width_m: float = 3.75
    length_m: float = 3000.0
    min_radius_m: float = 60.0
    max_radius_m: float = 400.0
    layout_seed: int = 0
    shoulder_m: float = 1.5
    arm_length_m: float = 150.0
    radius_m: float = 20.0
    merge_at_m: float = 500.0
    ramp_length_m: float = 250.0
    signals: SignalConfig = field(default_factory=SignalConfig)

    def __post_init__(self) -> None:
        require(self.layout in LAYOUTS, "road.layout", f"{self.layout!r} is not allowed; allowed: {', '.join(LAYOUTS)}")
        require(2 <= self.lanes <= 6, "road.lanes", f"must be between 2 and 6, got {self.lanes}")
        two_way = ("curvy", "intersection", "roundabout")
        require(
            self.layout not in two_way or self.lanes == 2,
            "road.lanes",
            f"the {self.layout} layout has 2 lanes (one each way), got {self.lanes}",
        )
        require(self.layout != "merge" or self.lanes <= 4, "road.lanes", f"the merge layout has 2-4 main-road lanes, got {self.lanes}")
        require(50.0 <= self.arm_length_m <= 1000.0, "road.arm_length_m", f"must be in [50, 1000], got {self.arm_length_m}")
        require(12.0 <= self.radius_m <= 60.0, "road.radius_m", f"must be in [12, 60], got {self.radius_m}")
        require(100.0 <= self.ramp_length_m <= 600.0, "road.ramp_length_m", f"must be in [100, 600], got {self.ramp_length_m}")
        require(
            self.layout != "merge" or self.ramp_length_m + 100.0 <= self.merge_at_m <= self.length_m - 100.0,
            "road.merge_at_m",
            f"must leave room for the ramp (ramp_length_m + 100) and 100 m after it, got {self.merge_at_m}",
        )
        require(2.5 <= self.lane_width_m <= 5.0, "road.lane_width_m", f"must be in [2.5, 5.0], got {self.lane_width_m}")
        require(200.0 <= self.length_m <= 20000.0, "road.length_m", f"must be in [200, 20000], got {self.length_m}")
        require(
            20.0 <= self.min_radius_m <= self.max_radius_m,
            "road.min_radius_m",
            f"must be at least 20 and at most max_radius_m, got {self.min_radius_m}",
        )
        require(0.0 <= self.shoulder_m <= 5.0, "road.shoulder_m", f"must be in [0, 5], got {self.shoulder_m}")


@functools.lru_cache(maxsize=16)
def make_network(cfg: RoadConfig) -> LaneGraph | None:
    """The lane graph of a junction layout (None for the open roads).

    Cached per config: validating a world config, a scenario and building the world each need the
    graph (about 15 ms to build); a graph is never modified after construction, so worlds share it.
    """
    w = cfg.lane_width_m
    if cfg.layout == "merge":
        return build_merge(w, cfg.lanes, cfg.length_m, cfg.merge_at_m, cfg.ramp_length_m, 60.0)
    if cfg.layout == "intersection":
        return build_intersection(w, cfg.arm_length_m, 60.0)
    if cfg.layout == "roundabout":
        return build_roundabout(w, cfg.arm_length_m, cfg.radius_m, 60.0)
    return None


def make_road(cfg: RoadConfig, network: LaneGraph | None = None, route: str = "") -> Road:
    """The ego car's road: the layout itself, or on a junction layout its route through ``network``.

    Raises:
        ConfigError: ``route`` is not one of the network's routes.
    """
    if cfg.layout == "highway":
        return _highway(cfg)
    if cfg.layout == "curvy":
        return _curvy(cfg)
    net = network if network is not None else make_network(cfg)
    assert net is not None
    lanes = ego_route(net, route)
    return Road(cfg.layout, net.route_centreline(lanes), cfg.lane_width_m, (0.0,), (1,), cfg.shoulder_m)


def ego_route(network: LaneGraph, route: str) -> tuple[int, ...]:
    """Lane indices of the named ego route ("entry-exit"; empty: the layout's default)."""
    name = route or network.default_route
    require(
        name in network.ego_routes,
        "ego.route",
        f"{name!r} is not a route of the {network.name} layout; allowed: {', '.join(network.ego_routes)}",
    )
    return network.ego_routes[name]


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


def ego_road_length_m(cfg: RoadConfig, route: str = "") -> float:
    """Length of the ego car's road: the layout's, or its route's on a junction layout [m]."""
    net = make_network(cfg)
    if net is None:
        return cfg.length_m
    return float(net.route_len[net.route_index(ego_route(net, route))])
