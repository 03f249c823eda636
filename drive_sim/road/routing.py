"""Route planning: shortest routes over a lane graph, lane changes included.

The routing graph cuts every lane into pieces of at most ``piece_m``. Its edges follow a lane
(piece to next piece, last piece to the first piece of each successor lane) or change lane: from a
piece to the piece one step further along an adjacent, same-direction lane, so a lane change
covers one piece length, diagonally. Edge weights are lengths in metres; a lane change costs its
diagonal plus ``change_penalty_m``, so a route changes lane only when that shortens it (or when
the goal lies in another lane).

The search is networkx's A* with the straight-line distance to the goal as the heuristic
(admissible: no route is shorter than the straight line). networkx already comes with torch, and
its A* and path utilities replace a hand-written priority-queue search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from drive_sim.config import ConfigError
from drive_sim.road.geometry import Centreline, Road, dedupe_points
from drive_sim.road.network import LaneGraph


@dataclass(frozen=True)
class Piece:
    """A stretch of one lane: a routing-graph node.

    Attributes:
        lane: index of the lane (in the ``LaneGraph``, or the ``Road``'s lane index).
        index: position of the piece along its lane (0 first).
        s0_m, s1_m: arc lengths along the lane where the piece starts and ends [m].
        xy: (K, 2) the lane centre over the piece [m].
    """

    lane: int
    index: int
    s0_m: float
    s1_m: float
    xy: np.ndarray


@dataclass(frozen=True)
class Route:
    """A planned route.

    Attributes:
        nodes: the routing-graph nodes ``(lane, piece index)`` in driving order.
        lanes: the lanes visited, in order, each once per visit.
        lane_changes: number of lane-change edges taken.
        length_m: summed edge weights, lane-change penalties included [m].
        path: the reference path through the route (lane centres, lane changes drawn diagonally).
    """

    nodes: tuple[tuple[int, int], ...]
    lanes: tuple[int, ...]
    lane_changes: int
    length_m: float
    path: Centreline


class RoutingGraph:
    """Directed graph of lane pieces with follow and lane-change edges.

    Args:
        lines: the centreline of every lane, by lane index.
        successors: successor lanes of each lane (the lane graph's links).
        adjacent: for each lane, the lanes one lane-width to either side running the same way.
        piece_m: longest piece [m].
        change_penalty_m: extra cost of a lane change [m].
    """

    def __init__(
        self,
        lines: list[Centreline],
        successors: list[tuple[int, ...]],
        adjacent: list[tuple[int, ...]],
        piece_m: float = 40.0,
        change_penalty_m: float = 20.0,
    ) -> None:
        if piece_m <= 0 or change_penalty_m < 0:
            raise ConfigError(f"routing: piece_m must be positive and change_penalty_m non-negative, got {piece_m}, {change_penalty_m}")
        self.lines = lines
        self.piece_m = piece_m
        self.change_penalty_m = change_penalty_m
        self.graph = nx.DiGraph()
        self.pieces: dict[tuple[int, int], Piece] = {}
        self._count: list[int] = []
        for lane, line in enumerate(lines):
            n = max(1, math.ceil(line.length_m / piece_m - 1e-9))
            self._count.append(n)
            edges = np.linspace(0.0, line.length_m, n + 1)
            for k in range(n):
                keep = (line.s > edges[k]) & (line.s < edges[k + 1])
                a, _, _ = line.interpolate(np.array([edges[k]]))
                b, _, _ = line.interpolate(np.array([edges[k + 1]]))
                xy = np.concatenate([a, line.xy[keep], b])
                node = (lane, k)
                self.pieces[node] = Piece(lane, k, float(edges[k]), float(edges[k + 1]), xy)
                self.graph.add_node(node, end=xy[-1])
                if k > 0:
                    self.graph.add_edge((lane, k - 1), node, weight=float(edges[k + 1] - edges[k]), change=False)
        for lane, succ in enumerate(successors):
            last = (lane, self._count[lane] - 1)
            for nxt in succ:
                first = self.pieces[(nxt, 0)]
                self.graph.add_edge(last, (nxt, 0), weight=first.s1_m - first.s0_m, change=False)
        for lane, sides in enumerate(adjacent):
            for other in sides:
                self._add_changes(lane, other)

    def _add_changes(self, lane: int, other: int) -> None:
        """Lane-change edges from each piece of ``lane`` to the piece one step ahead on ``other``."""
        target = self.lines[other]
        for k in range(self._count[lane]):
            end = self.pieces[(lane, k)].xy[-1]
            s, d, _ = target.project(end[None, :])
            if not 0.0 <= float(s[0]) < target.length_m - 1e-6:
                continue
            # The piece of ``other`` that starts where this piece ends (within a few metres).
            j = int(np.searchsorted(np.linspace(0.0, target.length_m, self._count[other] + 1), float(s[0]) + 1e-3)) - 1
            j = max(j, 0)
            if abs(self.pieces[(other, j)].s0_m - float(s[0])) > 0.25 * self.piece_m:
                j += 1  # the change then ends one piece further on
            if j >= self._count[other]:
                continue
            dest = self.pieces[(other, j)]
            length = float(np.hypot(*(dest.xy[-1] - end)))
            self.graph.add_edge((lane, k), (other, j), weight=length + self.change_penalty_m, change=True)

    # ------------------------------------------------------------------ queries
    def node_at(self, lane: int, s_m: float) -> tuple[int, int]:
        """The node of ``lane`` containing arc length ``s_m``."""
        if not 0 <= lane < len(self.lines):
            raise ConfigError(f"routing: lane {lane} does not exist; lanes are 0..{len(self.lines) - 1}")
        n = self._count[lane]
        k = min(max(int(s_m / (self.lines[lane].length_m / n)), 0), n - 1)
        return (lane, k)

    def shortest_route(self, start: tuple[int, int], goal: tuple[int, int]) -> Route:
        """The shortest route from node ``start`` to node ``goal`` (A* over edge lengths).

        Raises:
            ConfigError: a node does not exist or the goal cannot be reached.
        """
        for name, node in (("start", start), ("goal", goal)):
            if node not in self.graph:
                raise ConfigError(f"routing: {name} {node} is not a node of the routing graph")
        goal_xy = self.graph.nodes[goal]["end"]

        def heuristic(u: tuple[int, int], v: tuple[int, int]) -> float:
            end = self.graph.nodes[u]["end"]
            return float(math.hypot(end[0] - goal_xy[0], end[1] - goal_xy[1]))

        try:
            nodes = nx.astar_path(self.graph, start, goal, heuristic=heuristic, weight="weight")
        except nx.NetworkXNoPath:
            raise ConfigError(f"routing: no route from lane {start[0]} to lane {goal[0]}") from None
        return self._route(nodes)

    def _route(self, nodes: list[tuple[int, int]]) -> Route:
        lanes: list[int] = []
        length, changes = 0.0, 0
        parts = [self.pieces[nodes[0]].xy]
        for u, v in zip(nodes[:-1], nodes[1:], strict=False):
            edge = self.graph.edges[u, v]
            length += edge["weight"]
            if edge["change"]:
                changes += 1
                parts.append(self.pieces[v].xy[-1:])  # diagonally across the piece
            else:
                parts.append(self.pieces[v].xy[1:] if np.allclose(self.pieces[v].xy[0], parts[-1][-1]) else self.pieces[v].xy)
        for lane, _ in nodes:
            if not lanes or lanes[-1] != lane:
                lanes.append(lane)
        xy = dedupe_points(np.concatenate(parts))
        return Route(tuple(nodes), tuple(lanes), changes, length + self._first_length(nodes[0]), Centreline(xy))

    def _first_length(self, node: tuple[int, int]) -> float:
        p = self.pieces[node]
        return p.s1_m - p.s0_m


def _adjacent_lanes(lines: list[Centreline], width_m: float) -> list[tuple[int, ...]]:
    """Lanes whose centre runs about one lane width to the side, in the same direction.

    Tested at five points along each lane: at least three must sit 0.8-1.2 lane widths from the other lane's
    centre with headings within 20 degrees.
    """
    out: list[list[int]] = [[] for _ in lines]
    for a, la in enumerate(lines):
        probe = np.linspace(0.1, 0.9, 5) * la.length_m
        xy, heading, _ = la.interpolate(probe)
        for b, lb in enumerate(lines):
            if a == b:
                continue
            s, d, h = lb.project(xy)
            inside = (s > 0.5) & (s < lb.length_m - 0.5)
            near = np.abs(np.abs(d) - width_m) < 0.2 * width_m
            aligned = np.abs((heading - h + np.pi) % (2 * np.pi) - np.pi) < math.radians(20)
            if np.count_nonzero(inside & near & aligned) >= 3:
                out[a].append(b)
    return [tuple(x) for x in out]


def routing_graph(network: LaneGraph, piece_m: float = 40.0, change_penalty_m: float = 20.0) -> RoutingGraph:
    """The routing graph of a junction layout's lane graph (lane changes between parallel lanes)."""
    lines = [lane.line for lane in network.lanes]
    return RoutingGraph(
        lines, [lane.successors for lane in network.lanes], _adjacent_lanes(lines, network.lane_width_m), piece_m, change_penalty_m
    )


def road_routing_graph(road: Road, piece_m: float = 40.0, change_penalty_m: float = 20.0) -> RoutingGraph:
    """The routing graph of an open road: its forward lanes, lane changes between neighbours.

    Lane ``i`` of the graph is the road's ``forward_lanes()[i]`` (rightmost first).
    """
    fwd = road.forward_lanes()
    lines = [road.centreline.offset(road.lane_offsets_m[i]) for i in fwd]
    adjacent = [tuple(j for j in (i - 1, i + 1) if 0 <= j < len(fwd)) for i in range(len(fwd))]
    return RoutingGraph(lines, [() for _ in fwd], adjacent, piece_m, change_penalty_m)
