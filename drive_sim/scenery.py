"""Road scenery as PyBullet bodies: surface, grass verges, lane markings, barriers and signal heads.

Everything is a triangle mesh built from the road's Frenet geometry, in chunks of about 200 m so
each mesh stays small. Surface, verges and markings are visual only (the ground collision is one
infinite plane); the barriers are static concave meshes, so the lidar sees them and the car can
hit them. Signal heads (at signalised junctions) are visual boxes whose lamps the world lights
by the signal phase, so the camera sees the light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drive_sim._bullet import pb, shared_args, static_body
from drive_sim.road.geometry import Centreline, Road
from drive_sim.road.network import LaneGraph

ASPHALT = (0.32, 0.32, 0.34, 1.0)
GRASS = (0.28, 0.52, 0.22, 1.0)
WHITE = (0.95, 0.95, 0.95, 1.0)
YELLOW = (0.95, 0.8, 0.15, 1.0)
BARRIER = (0.62, 0.62, 0.6, 1.0)

CHUNK_M = 200.0
VERGE_M = 40.0
BARRIER_HEIGHT_M = 0.8
BARRIER_THICKNESS_M = 0.3
LINE_WIDTH_M = 0.15
DASH_M, GAP_M = 3.0, 9.0


#: Signal lamps, lit and dark, in the order red, amber, green (the phases' order in
#: ``drive_sim.network_traffic``: GREEN 0, AMBER 1, RED 2 index ``LAMP_OF_STATE``).
LAMP_LIT = ((1.0, 0.12, 0.1, 1.0), (1.0, 0.72, 0.05, 1.0), (0.15, 1.0, 0.35, 1.0))
LAMP_DARK = ((0.22, 0.06, 0.06, 1.0), (0.22, 0.17, 0.04, 1.0), (0.05, 0.2, 0.08, 1.0))
LAMP_OF_STATE = (2, 1, 0)  # signal state (GREEN, AMBER, RED) -> lamp index
HOUSING = (0.06, 0.06, 0.07, 1.0)
POLE = (0.45, 0.45, 0.47, 1.0)
STOP_LINE_M = 0.45
#: Head size: lamps larger than a real head's 0.3 m so that a 84x84 camera sees a lit lamp as a
#: pixel or two at 40 m (at 1.8 px/m); the housing is as tall as three lamps and their gaps.
LAMP_M = 0.8
NEAR_HEAD_M, FAR_HEAD_M = 2.4, 5.0  # heights of the bottom of the near-side and far-side (overhead) heads


@dataclass(frozen=True)
class SignalHead:
    """One drawn signal head: the signal group it shows and its three lamp bodies (red, amber, green)."""

    group: int
    lamps: tuple[int, int, int]


@dataclass
class Scenery:
    """Body ids of the drawn road, by segmentation class, and the signal heads."""

    road: list[int] = field(default_factory=list)
    ground: list[int] = field(default_factory=list)
    marking: list[int] = field(default_factory=list)
    barrier: list[int] = field(default_factory=list)
    #: poles and housings of the signal heads
    signal: list[int] = field(default_factory=list)
    heads: list[SignalHead] = field(default_factory=list)


def stations(line: Centreline, s0: float, s1: float, max_step_m: float = 25.0, max_turn_rad: float = 0.04) -> np.ndarray:
    """Arc lengths in [s0, s1] at which to cut the mesh: dense in curves, sparse on straights."""
    fine = np.arange(s0, s1, 1.0)
    _, heading, _ = line.interpolate(fine)
    out = [s0]
    last_h = heading[0] if len(heading) else 0.0
    for s, h in zip(fine[1:], heading[1:], strict=False):
        if s - out[-1] >= max_step_m or abs(h - last_h) >= max_turn_rad:
            out.append(float(s))
            last_h = h
    if s1 - out[-1] > 1e-6:
        out.append(s1)
    return np.asarray(out)


def _strip(line: Centreline, ss: np.ndarray, d0: float, d1: float, z: float) -> tuple[np.ndarray, list[int]]:
    """Quad strip between lateral offsets d0 < d1 at stations ``ss``."""
    a, _ = line.to_world(ss, np.full(len(ss), d0))
    b, _ = line.to_world(ss, np.full(len(ss), d1))
    verts = np.empty((2 * len(ss), 3))
    verts[0::2, :2], verts[1::2, :2] = a, b
    verts[:, 2] = z
    idx: list[int] = []
    for i in range(len(ss) - 1):
        k = 2 * i
        idx += [k, k + 2, k + 1, k + 1, k + 2, k + 3]  # counter-clockwise seen from above
    return verts, idx


def _merge(parts: list[tuple[np.ndarray, list[int]]]) -> tuple[np.ndarray, list[int]]:
    verts, idx, base = [], [], 0
    for v, i in parts:
        verts.append(v)
        idx += [j + base for j in i]
        base += len(v)
    return np.concatenate(verts), idx


def _dashes(line: Centreline, s0: float, s1: float, d: float, z: float) -> list[tuple[np.ndarray, list[int]]]:
    starts = np.arange(np.ceil(s0 / (DASH_M + GAP_M)) * (DASH_M + GAP_M), s1 - DASH_M, DASH_M + GAP_M)
    return [_strip(line, np.array([s, s + DASH_M]), d - LINE_WIDTH_M / 2, d + LINE_WIDTH_M / 2, z) for s in starts]


def _barrier(line: Centreline, ss: np.ndarray, d_inner: float, outward: float, *, visual: bool) -> tuple[np.ndarray, list[int]]:
    """A wall along the road edge.

    The collision mesh is closed (inner face, top, outer face, both windings) so the car cannot
    slip through an open side; the visual mesh keeps only what the cameras see, the inner face
    and the top, one winding each (TinyRenderer draws every triangle it is given: a third of
    the triangles is a third of the barrier's share of the frame time).
    """
    d_outer = d_inner + outward * BARRIER_THICKNESS_M
    profile = [(d_inner, 0.0, d_inner, BARRIER_HEIGHT_M), (d_inner, BARRIER_HEIGHT_M, d_outer, BARRIER_HEIGHT_M)]
    if not visual:
        profile.append((d_outer, BARRIER_HEIGHT_M, d_outer, 0.0))
    faces = []
    for d_a, z_a, d_b, z_b in profile:
        a, _ = line.to_world(ss, np.full(len(ss), d_a))
        b, _ = line.to_world(ss, np.full(len(ss), d_b))
        v = np.empty((2 * len(ss), 3))
        v[0::2, :2], v[1::2, :2] = a, b
        v[0::2, 2], v[1::2, 2] = z_a, z_b
        idx: list[int] = []
        for i in range(len(ss) - 1):
            k = 2 * i
            front = [k, k + 2, k + 1, k + 1, k + 2, k + 3]
            back = [k, k + 1, k + 2, k + 1, k + 3, k + 2]
            if visual:  # TinyRenderer culls back faces: wind the quad to face the road
                idx += front if outward > 0 else back
            else:
                idx += front + back
        faces.append((v, idx))
    return _merge(faces)


def _visual_body(client: Any, verts: np.ndarray, idx: list[int], rgba: tuple[float, ...]) -> int:
    shape = client.createVisualShape(pb.GEOM_MESH, vertices=shared_args(verts), indices=shared_args(idx), rgbaColor=shared_args(rgba))
    return static_body(client, -1, shape)


def build_scenery(client: Any, road: Road) -> Scenery:
    """Draw ``road`` into ``client`` and return the created body ids."""
    out = Scenery()
    line = road.centreline
    edge_r, edge_l = road.edge_right_m, road.edge_left_m
    pave_r, pave_l = edge_r - road.shoulder_m, edge_l + road.shoulder_m
    boundaries = [(road.lane_offsets_m[i] + road.lane_offsets_m[i + 1]) / 2 for i in range(road.n_lanes - 1)]
    for s0 in np.arange(0.0, road.length_m, CHUNK_M):
        s1 = min(s0 + CHUNK_M, road.length_m)
        ss = stations(road.centreline, s0, s1)
        out.road.append(_visual_body(client, *_strip(line, ss, pave_r, pave_l, 0.01), ASPHALT))
        verge = _merge(
            [
                _strip(line, ss, pave_r - BARRIER_THICKNESS_M - VERGE_M, pave_r, 0.0),
                _strip(line, ss, pave_l, pave_l + BARRIER_THICKNESS_M + VERGE_M, 0.0),
            ]
        )
        out.ground.append(_visual_body(client, *verge, GRASS))
        white = [_strip(line, ss, e - LINE_WIDTH_M / 2, e + LINE_WIDTH_M / 2, 0.02) for e in (edge_r, edge_l)]
        yellow = []
        for i, b in enumerate(boundaries):
            same_way = road.lane_directions[i] == road.lane_directions[i + 1]
            (white if same_way else yellow).extend(_dashes(line, s0, s1, b, 0.02))
        out.marking.append(_visual_body(client, *_merge(white), WHITE))
        if yellow:
            out.marking.append(_visual_body(client, *_merge(yellow), YELLOW))
        for d_inner, outward in ((pave_r, -1.0), (pave_l, 1.0)):
            verts, idx = _barrier(line, ss, d_inner, outward, visual=False)
            col = client.createCollisionShape(
                pb.GEOM_MESH, vertices=shared_args(verts), indices=shared_args(idx), flags=pb.GEOM_FORCE_CONCAVE_TRIMESH
            )
            vverts, vidx = _barrier(line, ss, d_inner, outward, visual=True)
            vis = client.createVisualShape(
                pb.GEOM_MESH, vertices=shared_args(vverts), indices=shared_args(vidx), rgbaColor=shared_args(BARRIER)
            )
            out.barrier.append(static_body(client, col, vis))
    return out


def _polygon(outline: np.ndarray, z: float, hole: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
    """A flat convex polygon (a fan from its centroid), or the annulus between it and ``hole``.

    Both outlines run counter-clockwise with the same number of points.
    """
    k = len(outline)
    if hole is None:
        verts = np.zeros((k + 1, 3))
        verts[:k, :2], verts[k, :2], verts[:, 2] = outline, outline.mean(axis=0), z
        idx = [j for i in range(k) for j in (k, i, (i + 1) % k)]
        return verts, idx
    verts = np.zeros((2 * k, 3))
    verts[:k, :2], verts[k:, :2], verts[:, 2] = outline, hole, z
    idx = [j for i in range(k) for j in (k + i, i, (i + 1) % k, k + i, (i + 1) % k, k + (i + 1) % k)]
    return verts, idx


def _signal_heads(client: Any, graph: LaneGraph, lane_index: int, out: Scenery) -> None:
    """A near-side head on a pole right of the stop line, and a far-side head over the lane beyond the junction.

    Both face the lane's traffic; their lamps are separate bodies so the world can light them
    (``LAMP_LIT`` / ``LAMP_DARK``). The lamps face the approach only in effect: the housing
    behind them hides them from the other side.
    """
    lane = graph.lanes[lane_index]
    w = graph.lane_width_m
    (end,), (heading,), _ = lane.line.interpolate(np.array([lane.length_m]))
    u = np.array([np.cos(heading), np.sin(heading)])
    left = np.array([-u[1], u[0]])

    # Across the junction: the length of the straight-on connector (the successor that keeps the heading).
    def turn(j: int) -> float:
        h1 = graph.lanes[j].line.interpolate(np.array([graph.lanes[j].length_m]))[1][0]
        return abs((h1 - heading + np.pi) % (2 * np.pi) - np.pi)

    ahead = min(lane.successors, key=turn, default=None)
    across = graph.lanes[ahead].length_m if ahead is not None else 2 * w
    pole_off = w / 2 + 1.0  # the pole stands this far right of the lane centre
    quat = (0.0, 0.0, float(np.sin(heading / 2)), float(np.cos(heading / 2)))
    for base_xy, bottom, overhead in (
        (end - left * pole_off, NEAR_HEAD_M, False),
        (end + u * (across + 2.0) - left * pole_off, FAR_HEAD_M, True),
    ):
        head_y = pole_off if overhead else 0.0  # lateral place of the head in the pole's frame (left +)
        height = 3 * LAMP_M + 0.4
        top = bottom + height
        shapes = [
            ((0.0, 0.0, top / 2), (0.09, 0.09, top / 2), POLE),
            ((0.0, head_y, bottom + height / 2), (0.2, LAMP_M / 2 + 0.1, height / 2), HOUSING),
        ]
        if overhead:
            shapes.append(((0.0, pole_off / 2, top - 0.3), (0.07, pole_off / 2, 0.07), POLE))
        vis = client.createVisualShapeArray(
            shapeTypes=shared_args([pb.GEOM_BOX] * len(shapes)),
            halfExtents=shared_args([list(h) for _, h, _ in shapes]),
            visualFramePositions=shared_args([list(p) for p, _, _ in shapes]),
            rgbaColors=shared_args([list(c) for _, _, c in shapes]),
        )
        body = client.createMultiBody(
            baseMass=0, baseVisualShapeIndex=vis, basePosition=[*base_xy, 0.0], baseOrientation=quat, useMaximalCoordinates=True
        )
        out.signal.append(body)
        lamps = []
        lamp_vis = client.createVisualShape(
            pb.GEOM_BOX, halfExtents=shared_args([0.03, LAMP_M / 2, LAMP_M / 2]), rgbaColor=shared_args(list(LAMP_DARK[0]))
        )
        for i in range(3):  # red on top
            z = top - 0.2 - (i + 0.5) * LAMP_M
            xy = base_xy - u * 0.24 + left * head_y
            lamps.append(
                client.createMultiBody(
                    baseMass=0, baseVisualShapeIndex=lamp_vis, basePosition=[*xy, z], baseOrientation=quat, useMaximalCoordinates=True
                )
            )
        out.heads.append(SignalHead(lane.signal_group, (lamps[0], lamps[1], lamps[2])))


def build_network_scenery(client: Any, graph: LaneGraph, main_lanes: int = 2) -> Scenery:
    """Draw a junction layout: a grass field, every lane's surface, the junction areas and the lines.

    Lines: a solid white edge on the right of every lane outside the junction; the centre line of a
    two-way arm in yellow (drawn once, by the inbound lane); on the merge's main road, dashed white
    between its lanes and a solid edge on the left. Junction-internal lanes get no lines. There are
    no barriers: leaving the lanes is leaving the road.
    """
    out = Scenery()
    w = graph.lane_width_m
    lo, hi = graph.flat_xy.min(axis=0) - 60.0, graph.flat_xy.max(axis=0) + 60.0
    field = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    out.ground.append(_visual_body(client, *_polygon(field, 0.005), GRASS))
    surface, white, yellow = [], [], []
    for lane in graph.lanes:
        line = lane.line
        for s0 in np.arange(0.0, line.length_m, CHUNK_M):
            s1 = min(s0 + CHUNK_M, line.length_m)
            ss = stations(line, s0, s1)
            surface.append(_strip(line, ss, -w / 2 - 0.15, w / 2 + 0.15, 0.02))
            if lane.internal:
                continue
            white.append(_strip(line, ss, -w / 2 - LINE_WIDTH_M / 2, -w / 2 + LINE_WIDTH_M / 2, 0.03))
            left = (w / 2 - LINE_WIDTH_M / 2, w / 2 + LINE_WIDTH_M / 2)
            if lane.arm and lane.name.endswith("_in"):
                yellow.append(_strip(line, ss, *left, 0.03))
            elif not lane.arm and lane.name.startswith("main_"):
                k = int(lane.name.split("_")[1])
                if k < main_lanes - 1:
                    white.extend(_dashes(line, s0, s1, w / 2, 0.03))
                else:
                    white.append(_strip(line, ss, *left, 0.03))
            elif not lane.arm:
                white.append(_strip(line, ss, *left, 0.03))
        if len(surface) > 40:  # keep each mesh small
            out.road.append(_visual_body(client, *_merge(surface), ASPHALT))
            surface = []
    for patch in graph.patches:
        surface.append(_polygon(patch.xy, 0.015, patch.hole))
        if patch.hole is not None:
            out.ground.append(_visual_body(client, *_polygon(patch.hole, 0.025), GRASS))
    if surface:
        out.road.append(_visual_body(client, *_merge(surface), ASPHALT))
    for k, lane in enumerate(graph.lanes):
        # Stop lines where a signal ends the lane; dashed give-way lines at roundabout entries.
        end = lane.length_m
        if lane.signal_group >= 0:
            white.append(_strip(lane.line, np.array([end - STOP_LINE_M, end]), -w / 2, w / 2, 0.035))
            _signal_heads(client, graph, k, out)
        elif lane.internal and lane.yield_m >= 0:
            ss = np.array([end - STOP_LINE_M, end])
            white.extend(_strip(lane.line, ss, d, d + 0.5, 0.035) for d in np.arange(-w / 2, w / 2 - 0.4, 0.9))
    if white:
        out.marking.append(_visual_body(client, *_merge(white), WHITE))
    if yellow:
        out.marking.append(_visual_body(client, *_merge(yellow), YELLOW))
    return out
