"""Road geometry (pure numpy): centrelines, Frenet projection and layouts."""

from __future__ import annotations

from drive_sim.road.geometry import Centreline, Road
from drive_sim.road.layouts import LAYOUTS, RoadConfig, make_road

__all__ = ["LAYOUTS", "Centreline", "Road", "RoadConfig", "make_road"]
