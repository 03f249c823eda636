"""Road geometry (pure numpy): centrelines, Frenet projection, layouts and lane graphs."""

from __future__ import annotations

from drive_sim.road.geometry import Centreline, Road
from drive_sim.road.layouts import LAYOUTS, NETWORK_LAYOUTS, RoadConfig, ego_road_length_m, ego_route, make_network, make_road
from drive_sim.road.network import LaneGraph, SignalConfig

__all__ = [
    "LAYOUTS",
    "NETWORK_LAYOUTS",
    "Centreline",
    "LaneGraph",
    "Road",
    "RoadConfig",
    "SignalConfig",
    "ego_road_length_m",
    "ego_route",
    "make_network",
    "make_road",
]
