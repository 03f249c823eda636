"""Lane graphs for junction layouts: on-ramp merge, four-way signalised intersection, roundabout.

A ``LaneGraph`` is a set of single lanes (each its own centreline with arc length) joined
end-to-start by successor links. Two lanes feeding one lane form a *merge node*; a lane flagged
``yield_m`` gives way there (ramp, roundabout entry). Lanes flagged ``signal_group`` end at a
stop line controlled by a signal phase. ``routes`` lists every entry-to-exit path; traffic
follows them and the ego car drives one of them.

All arrays that traffic needs every step are precomputed here: per-route arc-length tables
(where each lane starts along each route), a flattened copy of every lane's polyline for
vectorised pose lookup, and one k-d tree over all lane points for locating a car.

Conventions as in ``geometry``: right-hand traffic, ``s`` along a lane, headings in radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from drive_sim.config import require
from drive_sim.road.geometry import Centreline, dedupe_points

#: Comfortable lateral acceleration that sets the speed on a curved lane [m/s^2].
CURVE_LATERAL_ACCEL_MPS2 = 2.5


@dataclass(frozen=True)
class SignalConfig:
    """Signal timing at signalised junctions.

    Attributes:
        green_s: green time of each phase [s].
        amber_s: amber time [s]; vehicles that can stop comfortably stop.
        all_red_s: shortest all-red time [s]; it lasts until the junction box is empty.
        critical_gap_s: time gap a driver giving way needs in priority traffic [s].
        random_start: start each episode at a random point of the cycle (the phase with green or
            amber and the time into it drawn from the episode's seed) instead of the first
            phase's green; the perception dataset uses it so frames show every state.
    """

    green_s: float = 12.0
    amber_s: float = 3.0
    all_red_s: float = 2.0
    critical_gap_s: float = 2.5
    random_start: bool = False

    def __post_init__(self) -> None:
        for name in ("green_s", "amber_s", "all_red_s", "critical_gap_s"):
            require(getattr(self, name) > 0, f"road.signals.{name}", f"must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class Lane:
    """One lane of a lane graph.

    Attributes:
        name: readable id, e.g. ``"south_in"`` or ``"ring_3"``.
        line: the lane centreline.
        successors: indices of the lanes this one leads into.
        internal: inside a junction (no spawning; the signal controller's "box").
        signal_group: signal whose stop line is at this lane's end, or -1.
        yield_m: >= 0: traffic from this lane gives way at its end, waiting this far before it [m];
            -1: has priority.
        speed_limit_mps: legal speed on the lane, already lowered on tight curves [m/s].
        arm: the junction arm an entry or exit lane belongs to ("" for internal lanes).
    """

    name: str
    line: Centreline
    successors: tuple[int, ...] = ()
    internal: bool = False
    signal_group: int = -1
    yield_m: float = -1.0
    speed_limit_mps: float = 13.9
    arm: str = ""

    @property
    def length_m(self) -> float:
        """Lane length [m]."""
        return self.line.length_m


@dataclass(frozen=True)
class Patch:
    """An extra paved polygon drawn under a junction (intersection box, roundabout ring)."""

    xy: np.ndarray  # (K, 2) outline, counter-clockwise
    hole: np.ndarray | None = None  # (K, 2) inner outline (the roundabout's central island)


class LaneGraph:
    """Lanes, their links and every entry-to-exit route.

    Args:
        name: layout name.
        lanes: the lanes; ``successors`` index into this list.
        lane_width_m: width of every lane [m].
        ego_routes: named routes for the ego car, ``"entry-exit"`` -> lane indices.
        default_route: the key of ``ego_routes`` used when none is configured.
        signal_groups: number of signal phases (0 without signals).
        patches: paved areas beyond the lane strips.
    """

    def __init__(
        self,
        name: str,
        lanes: list[Lane],
        lane_width_m: float,
        ego_routes: dict[str, tuple[int, ...]],
        default_route: str,
        signal_groups: int = 0,
        patches: tuple[Patch, ...] = (),
    ) -> None:
        self.name = name
        self.lanes = lanes
        self.lane_width_m = lane_width_m
        self.ego_routes = ego_routes
        self.default_route = default_route
        self.signal_groups = signal_groups
        self.patches = patches
        n = len(lanes)
        preds: list[list[int]] = [[] for _ in range(n)]
        for i, lane in enumerate(lanes):
            for j in lane.successors:
                preds[j].append(i)
        self.predecessors = [tuple(p) for p in preds]
        self.entries = tuple(i for i in range(n) if not preds[i])
        self.exits = tuple(i for i in range(n) if not lanes[i].successors)
        self.routes = self._enumerate_routes()
        self.length = np.array([ln.length_m for ln in lanes])
        self.speed_limit = np.array([ln.speed_limit_mps for ln in lanes])
        self.signal_group = np.array([ln.signal_group for ln in lanes], dtype=np.int64)
        self.yield_m = np.array([ln.yield_m for ln in lanes])
        self.internal = np.array([ln.internal for ln in lanes], dtype=bool)
        #: lanes fed by two or more lanes
        self.merges = tuple(i for i in range(n) if len(preds[i]) >= 2)
        self._build_route_tables()
        self._build_flat()
        self._paved: dict[float, PavedArea] = {}

    # ------------------------------------------------------------------ routes
    def _enumerate_routes(self) -> list[tuple[int, ...]]:
        routes: list[tuple[int, ...]] = []

        def walk(path: list[int]) -> None:
            last = path[-1]
            if not self.lanes[last].successors:
                routes.append(tuple(path))
                return
            for nxt in self.lanes[last].successors:
                if nxt not in path:  # a route never visits a lane twice (no laps of the ring)
                    walk([*path, nxt])

        for e in self.entries:
            walk([e])
        # U-turns back into the arm a route came from are not offered.
        return [r for r in routes if not self.lanes[r[0]].arm or self.lanes[r[0]].arm != self.lanes[r[-1]].arm]

    def _build_route_tables(self) -> None:
        """``route_start[r, lane]``: distance along route r at which ``lane`` begins (inf if not on it)."""
        nr, nl = len(self.routes), len(self.lanes)
        self.route_start = np.full((nr, nl), np.inf)
        self.route_prev = np.full((nr, nl), -1, dtype=np.int64)  # lane before ``lane`` on route r
        self.route_next = np.full((nr, nl), -1, dtype=np.int64)  # lane after ``lane`` on route r
        self.route_len = np.zeros(nr)
        width = max(len(r) for r in self.routes)
        self.route_lanes = np.full((nr, width), -1, dtype=np.int64)
        self.route_size = np.array([len(r) for r in self.routes], dtype=np.int64)
        for r, route in enumerate(self.routes):
            acc = 0.0
            for k, lane in enumerate(route):
                self.route_start[r, lane] = acc
                self.route_lanes[r, k] = lane
                if k > 0:
                    self.route_prev[r, lane] = route[k - 1]
                if k + 1 < len(route):
                    self.route_next[r, lane] = route[k + 1]
                acc += self.lanes[lane].length_m
            self.route_len[r] = acc

    def route_index(self, lanes: tuple[int, ...]) -> int:
        """Index in ``routes`` of a lane sequence."""
        return self.routes.index(tuple(lanes))

    def route_centreline(self, lanes: tuple[int, ...]) -> Centreline:
        """One centreline through the lanes of a route (the ego car's reference path)."""
        parts = [self.lanes[lanes[0]].line.xy]
        for lane in lanes[1:]:
            xy = self.lanes[lane].line.xy
            parts.append(xy[1:] if np.hypot(*(xy[0] - parts[-1][-1])) < 1e-6 else xy)
        return Centreline(np.concatenate(parts))

    # ------------------------------------------------------------------ lookups
    def _build_flat(self) -> None:
        """Every lane's polyline in one array, lanes 1 m apart in a shared arc-length axis."""
        pts, gs, lane_of, local_s = [], [], [], []
        self.flat_base = np.zeros(len(self.lanes))
        self.flat_first = np.zeros(len(self.lanes), dtype=np.int64)
        self.flat_last = np.zeros(len(self.lanes), dtype=np.int64)  # index of the last segment
        base, count = 0.0, 0
        for i, lane in enumerate(self.lanes):
            line = lane.line
            self.flat_base[i] = base
            self.flat_first[i] = count
            self.flat_last[i] = count + len(line.xy) - 2
            pts.append(line.xy)
            gs.append(base + line.s)
            lane_of.append(np.full(len(line.xy), i))
            local_s.append(line.s)
            count += len(line.xy)
            base += line.length_m + 1.0
        self.flat_xy = np.concatenate(pts)
        self.flat_s = np.concatenate(gs)
        seg = np.diff(self.flat_xy, axis=0)
        self.flat_seg = np.concatenate([seg, seg[-1:]])
        self.flat_seg_len = np.maximum(np.hypot(self.flat_seg[:, 0], self.flat_seg[:, 1]), 1e-9)
        self.flat_heading = np.arctan2(self.flat_seg[:, 1], self.flat_seg[:, 0])
        self.point_lane = np.concatenate(lane_of)
        self.point_s = np.concatenate(local_s)
        # The heading at a lane's last point is its last segment's.
        last = self.flat_last + 1
        self.flat_heading[last] = self.flat_heading[self.flat_last]
        self._tree = cKDTree(self.flat_xy)

    def poses(self, lane: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World position (n, 2) and heading (n,) at arc length ``s`` along lanes ``lane``."""
        g = self.flat_base[lane] + np.minimum(np.maximum(s, 0.0), self.length[lane])
        idx = np.searchsorted(self.flat_s, g, side="right") - 1
        idx = np.minimum(np.maximum(idx, self.flat_first[lane]), self.flat_last[lane])
        frac = (g - self.flat_s[idx]) / self.flat_seg_len[idx]
        return self.flat_xy[idx] + self.flat_seg[idx] * frac[:, None], self.flat_heading[idx]

    def locate(self, x_m: float, y_m: float, yaw_rad: float, prefer: tuple[int, ...] = ()) -> tuple[int, float, float]:
        """The lane a car at (x, y) heading ``yaw`` drives in.

        Among the nearest lane points whose direction agrees with the car's (within 60 deg), one
        on a ``prefer`` lane (the car's route) wins when it is within half a lane width of the
        nearest; junction lanes overlap, so the route decides between them.

        Returns:
            (lane index or -1 when no lane runs this way nearby, arc length on it [m], distance
            from the car to the lane centre [m]).
        """
        dist, idx = self._tree.query((x_m, y_m), k=8)
        best = (-1, 0.0, math.inf)
        for d, i in zip(dist.tolist(), idx.tolist(), strict=True):
            if not math.isfinite(d):
                break
            dh = abs((float(self.flat_heading[i]) - yaw_rad + math.pi) % (2 * math.pi) - math.pi)
            if dh > math.radians(60.0):
                continue
            lane = int(self.point_lane[i])
            on_pref = lane in prefer
            if (
                best[0] < 0
                or (on_pref and best[0] not in prefer and d < best[2] + self.lane_width_m / 2)
                or ((on_pref or best[0] not in prefer) and d < best[2])
            ):
                best = (lane, float(self.point_s[i]), d)
        return best

    def heading_near(self, points: np.ndarray) -> np.ndarray:
        """The heading [rad] of the lane point nearest each (x, y) of ``points`` (N, 2) (any lane, either way)."""
        _, idx = self._tree.query(np.asarray(points, dtype=np.float64).reshape(-1, 2))
        return self.flat_heading[idx]

    def distance_to_lanes(self, x_m: float, y_m: float) -> float:
        """Distance from (x, y) to the nearest lane-centre point [m] (points are about 1 m apart)."""
        d, _ = self._tree.query((x_m, y_m))
        return float(d)

    def paved(self, inset_m: float = 0.0) -> PavedArea:
        """Where the lanes and patches lie, ``inset_m`` in from their edges (cached per inset)."""
        key = round(float(inset_m), 3)
        if key not in self._paved:
            self._paved[key] = PavedArea(self, key)
        return self._paved[key]

    def total_length_m(self, internal: bool = False) -> float:
        """Summed length of the lanes (without junction-internal ones unless ``internal``) [m]."""
        keep = np.ones(len(self.lanes), bool) if internal else ~self.internal
        return float(self.length[keep].sum())


class PavedArea:
    """A raster of a lane graph's paved area: every lane strip and patch, ``inset_m`` in from its edges.

    A lidar or radar return inside it comes from something on the road (a vehicle), not from a
    barrier, pole or the roundabout's island. The lanes of a junction overlap and cross, so no one
    reference line gives a lateral offset to test; a raster answers for any number of points with
    one array lookup (rasterised with OpenCV's polyline and polygon fills, which draw the strips'
    rounded joins for us).

    Args:
        graph: the lane graph.
        inset_m: how far inside the paved edges a point must be [m].
        cell_m: raster resolution [m].
    """

    def __init__(self, graph: LaneGraph, inset_m: float, cell_m: float = 0.2) -> None:
        import cv2

        self.cell_m = cell_m
        half = graph.lane_width_m / 2 - inset_m
        pts = [graph.flat_xy]
        pts.extend(p.xy for p in graph.patches)
        allxy = np.concatenate(pts)
        self.origin = allxy.min(axis=0) - graph.lane_width_m
        size = np.ceil((allxy.max(axis=0) + graph.lane_width_m - self.origin) / cell_m).astype(int) + 1
        self.shape = (int(size[1]), int(size[0]))  # rows (y), columns (x)

        def pix(xy: np.ndarray) -> np.ndarray:
            return np.round((xy - self.origin) / cell_m).astype(np.int32)

        lanes = np.zeros(self.shape, np.uint8)
        if half > 0:
            thick = max(1, int(round(2 * half / cell_m)))
            for lane in graph.lanes:
                cv2.polylines(lanes, [pix(lane.line.xy)], False, 1, thickness=thick, lineType=cv2.LINE_8)
        patches = np.zeros(self.shape, np.uint8)
        for p in graph.patches:
            cv2.fillPoly(patches, [pix(p.xy)], 1)
            if p.hole is not None:
                cv2.fillPoly(patches, [pix(p.hole)], 0)
        k = int(round(inset_m / cell_m))
        if k > 0:
            patches = cv2.erode(patches, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
        self.grid = (lanes | patches).astype(bool)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Whether each (x, y) of ``points`` (N, 2) lies in the area."""
        ij = np.round((np.asarray(points, dtype=np.float64) - self.origin) / self.cell_m).astype(np.int64)
        inside = (ij[:, 0] >= 0) & (ij[:, 1] >= 0) & (ij[:, 0] < self.shape[1]) & (ij[:, 1] < self.shape[0])
        out = np.zeros(len(ij), bool)
        out[inside] = self.grid[ij[inside, 1], ij[inside, 0]]
        return out


# ---------------------------------------------------------------------- geometry helpers
def _line(p0: np.ndarray, p1: np.ndarray, step_m: float = 2.0) -> np.ndarray:
    n = max(2, int(math.ceil(np.hypot(*(p1 - p0)) / step_m)) + 1)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return p0 + (p1 - p0) * t


def _bezier(p0: np.ndarray, h0: float, p1: np.ndarray, h1: float, step_m: float = 1.0) -> np.ndarray:
    """Cubic Bezier from p0 (heading h0) to p1 (heading h1); handles at ~0.39 of the chord."""
    chord = float(np.hypot(*(p1 - p0)))
    k = 0.39 * chord
    c0 = p0 + k * np.array([math.cos(h0), math.sin(h0)])
    c1 = p1 - k * np.array([math.cos(h1), math.sin(h1)])
    n = max(3, int(math.ceil(chord * 1.3 / step_m)) + 1)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * c0 + 3 * (1 - t) * t**2 * c1 + t**3 * p1


def _arc(radius: float, a0: float, a1: float, step_m: float = 1.0) -> np.ndarray:
    """Counter-clockwise arc of the circle about the origin from angle a0 to a1 (a1 > a0)."""
    n = max(2, int(math.ceil(radius * (a1 - a0) / step_m)) + 1)
    a = np.linspace(a0, a1, n)
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def _limit(line: Centreline, limit_mps: float) -> float:
    """The lane's speed: the limit, lowered to keep lateral acceleration comfortable on its tightest curve."""
    k = float(np.max(np.abs(line.curvature))) if len(line.curvature) else 0.0
    return min(limit_mps, math.sqrt(CURVE_LATERAL_ACCEL_MPS2 / k)) if k > 1e-6 else limit_mps


ARMS = {"east": 0.0, "north": 0.5 * math.pi, "west": math.pi, "south": 1.5 * math.pi}


def _arm_frame(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit vector of an arm and its left normal."""
    u = np.array([math.cos(angle), math.sin(angle)])
    return u, np.array([-u[1], u[0]])


class _Builder:
    def __init__(self) -> None:
        self.lanes: list[dict] = []

    def add(self, name: str, xy: np.ndarray, limit: float, **kw: object) -> int:
        line = Centreline(_densify(dedupe_points(xy), 1.0))
        self.lanes.append({"name": name, "line": line, "speed_limit_mps": _limit(line, limit), "successors": [], **kw})
        return len(self.lanes) - 1

    def link(self, a: int, b: int) -> None:
        self.lanes[a]["successors"].append(b)

    def build(self) -> list[Lane]:
        return [Lane(**{**d, "successors": tuple(d["successors"])}) for d in self.lanes]


def _densify(xy: np.ndarray, step_m: float) -> np.ndarray:
    """Points at most ``step_m`` apart (``locate`` and the on-road test use the nearest point)."""
    out = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:], strict=True):
        n = int(math.ceil(np.hypot(*(b - a)) / step_m))
        out.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])
    return np.concatenate(out)


# ---------------------------------------------------------------------- layouts
def build_intersection(lane_width_m: float, arm_length_m: float, speed_limit_mps: float) -> LaneGraph:
    """Two two-lane roads crossing at right angles, one signal phase per arm.

    Every arm has an inbound lane ending at a stop line and an outbound lane; from each inbound
    lane, connector lanes turn right, go straight and turn left into the other arms' outbound
    lanes. Each arm gets its own green (protected phases), so paths that cross are never green
    together.
    """
    w = lane_width_m
    box = w + 5.0  # distance from the centre to each stop line [m]
    b = _Builder()
    inbound, outbound = {}, {}
    for arm, ang in ARMS.items():
        u, n = _arm_frame(ang)
        far, near = u * (box + arm_length_m), u * box
        inbound[arm] = b.add(f"{arm}_in", _line(far + n * w / 2, near + n * w / 2), speed_limit_mps, signal_group=len(inbound), arm=arm)
        outbound[arm] = b.add(f"{arm}_out", _line(near - n * w / 2, far - n * w / 2), speed_limit_mps, arm=arm)
    routes: dict[str, tuple[int, ...]] = {}
    for a, ang_a in ARMS.items():
        ua, na = _arm_frame(ang_a)
        p0, h0 = ua * box + na * w / 2, ang_a + math.pi
        for c, ang_c in ARMS.items():
            if c == a:
                continue
            uc, nc = _arm_frame(ang_c)
            p1, h1 = uc * box - nc * w / 2, ang_c
            xy = _line(p0, p1, 1.0) if abs((h1 - h0 + math.pi) % (2 * math.pi) - math.pi) < 1e-6 else _bezier(p0, h0, p1, h1)
            conn = b.add(f"{a}_to_{c}", xy, speed_limit_mps, internal=True)
            b.link(inbound[a], conn)
            b.link(conn, outbound[c])
            routes[f"{a}-{c}"] = (inbound[a], conn, outbound[c])
    half = box
    square = np.array([[half, -half], [half, half], [-half, half], [-half, -half]])
    return LaneGraph("intersection", b.build(), w, routes, "south-north", signal_groups=4, patches=(Patch(square),))


def build_roundabout(lane_width_m: float, arm_length_m: float, radius_m: float, speed_limit_mps: float) -> LaneGraph:
    """A single-lane roundabout with four two-lane arms; traffic circulates counter-clockwise and entries yield.

    The ring is cut into lanes at every entry (merge) and exit (diverge) point; entries join the
    ring a little counter-clockwise of their arm's axis, exits leave it a little before.
    """
    w = lane_width_m
    start = radius_m + 18.0  # where the arms meet the junction, from the centre [m]
    split = math.radians(30.0)  # entries join (exits leave) the ring this far from their arm's axis
    b = _Builder()
    cuts = []  # (angle, kind, arm)
    inbound, outbound = {}, {}
    for arm, ang in ARMS.items():
        u, n = _arm_frame(ang)
        far, near = u * (start + arm_length_m), u * start
        inbound[arm] = b.add(f"{arm}_in", _line(far + n * w / 2, near + n * w / 2), speed_limit_mps, arm=arm)
        outbound[arm] = b.add(f"{arm}_out", _line(near - n * w / 2, far - n * w / 2), speed_limit_mps, arm=arm)
        cuts += [((ang - split) % (2 * math.pi), "exit", arm), ((ang + split) % (2 * math.pi), "entry", arm)]
    cuts.sort()
    ring = []
    for k, (a0, _, _) in enumerate(cuts):
        a1 = cuts[(k + 1) % len(cuts)][0]
        if a1 <= a0:
            a1 += 2 * math.pi
        ring.append(b.add(f"ring_{k}", _arc(radius_m, a0, a1), speed_limit_mps, internal=True))
    for k in range(len(ring)):
        b.link(ring[k], ring[(k + 1) % len(ring)])
    entry_conn, exit_conn = {}, {}
    for k, (a, kind, arm) in enumerate(cuts):
        u, n = _arm_frame(ARMS[arm])
        on_ring = radius_m * np.array([math.cos(a), math.sin(a)])
        tangent = a + 0.5 * math.pi
        if kind == "entry":
            p0 = u * start + n * w / 2
            conn = b.add(f"{arm}_entry", _bezier(p0, ARMS[arm] + math.pi, on_ring, tangent), speed_limit_mps, internal=True, yield_m=8.0)
            b.link(inbound[arm], conn)
            b.link(conn, ring[k])  # the ring lane starting at this cut
            entry_conn[arm] = conn
        else:
            p1 = u * start - n * w / 2
            conn = b.add(f"{arm}_exit", _bezier(on_ring, tangent, p1, ARMS[arm]), speed_limit_mps, internal=True)
            b.link(ring[k - 1], conn)  # the ring lane ending at this cut
            b.link(conn, outbound[arm])
            exit_conn[arm] = conn
    graph_lanes = b.build()
    routes: dict[str, tuple[int, ...]] = {}
    for a in ARMS:
        for c in ARMS:
            if c == a:
                continue
            path = [inbound[a], entry_conn[a]]
            lane = graph_lanes[entry_conn[a]].successors[0]
            while exit_conn[c] not in graph_lanes[lane].successors:
                path.append(lane)
                lane = next(s for s in graph_lanes[lane].successors if s in ring)
            path += [lane, exit_conn[c], outbound[c]]
            routes[f"{a}-{c}"] = tuple(path)
    ang = np.linspace(0.0, 2 * math.pi, 73)[:-1, None]
    unit = np.hstack([np.cos(ang), np.sin(ang)])
    outer, inner = (radius_m + w / 2 + 0.5) * unit, (radius_m - w / 2 - 0.5) * unit
    return LaneGraph("roundabout", graph_lanes, w, routes, "south-north", patches=(Patch(outer, inner),))


def build_merge(
    lane_width_m: float, lanes: int, length_m: float, merge_at_m: float, ramp_length_m: float, speed_limit_mps: float
) -> LaneGraph:
    """A one-way main road of ``lanes`` lanes with an on-ramp joining its right lane at ``merge_at_m``.

    The ramp runs in from the right on a smooth S-curve and becomes the right lane; ramp traffic
    gives way to the right lane (it waits at the end of the ramp when no gap comes), and the main
    road keeps its lanes (no lane changes on this layout's lane graph).
    """
    w = lane_width_m
    b = _Builder()
    xs = np.arange(0.0, length_m + 1e-9, 10.0)
    up_x = np.append(xs[xs < merge_at_m], merge_at_m)
    main_up = b.add("main_0_up", np.stack([up_x, np.zeros_like(up_x)], 1), speed_limit_mps)
    down_x = np.concatenate([[merge_at_m], xs[xs > merge_at_m]])
    main_down = b.add("main_0_down", np.stack([down_x, np.zeros_like(down_x)], 1), speed_limit_mps)
    b.link(main_up, main_down)
    routes: dict[str, tuple[int, ...]] = {"main-main": (main_up, main_down)}
    for k in range(1, lanes):
        lane = b.add(f"main_{k}", np.stack([xs, np.full_like(xs, k * w)], 1), speed_limit_mps)
        routes[f"main{k}-main"] = (lane,)
    offset = 6.0 * w  # lateral distance of the ramp's start from the right lane [m]
    t = np.linspace(0.0, 1.0, int(ramp_length_m / 2.0) + 1)
    ramp_xy = np.stack([merge_at_m - ramp_length_m * (1 - t), -offset * (1 - (3 * t**2 - 2 * t**3))], 1)
    lead_in = np.stack([np.linspace(merge_at_m - ramp_length_m - 100.0, merge_at_m - ramp_length_m, 11), np.full(11, -offset)], 1)
    ramp = b.add("ramp", np.concatenate([lead_in[:-1], ramp_xy]), speed_limit_mps, yield_m=55.0)
    b.link(ramp, main_down)
    routes["ramp-main"] = (ramp, main_down)
    return LaneGraph("merge", b.build(), w, routes, "ramp-main")
