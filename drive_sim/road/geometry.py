"""Lane geometry in pure numpy.

A reference centreline with arc length, heading and curvature, and vectorised Frenet (s, d)
projection for batches of points.

Conventions: ``s`` is arc length along the reference line [m]; ``d`` is the signed lateral
offset [m], positive to the left of the direction of increasing ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


def dedupe_points(xy: np.ndarray, min_step_m: float = 1e-6) -> np.ndarray:
    """``xy`` without the points closer than ``min_step_m`` to the point before them."""
    keep = np.concatenate([[True], np.hypot(*np.diff(xy, axis=0).T) > min_step_m])
    return xy[keep]


class Centreline:
    """A planar polyline sampled densely enough to be treated as smooth.

    Args:
        xy: (M, 2) points [m], M >= 2, consecutive points distinct.
    """

    def __init__(self, xy: np.ndarray) -> None:
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) < 2:
            raise ValueError(f"Centreline: xy must have shape (M>=2, 2), got {xy.shape}")
        seg = np.diff(xy, axis=0)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        if np.any(seg_len <= 1e-9):
            raise ValueError("Centreline: consecutive points must be distinct")
        self.xy = xy
        self.s = np.concatenate([[0.0], np.cumsum(seg_len)])
        self.length_m = float(self.s[-1])
        self._seg = seg
        self._seg_len = seg_len
        seg_heading = np.arctan2(seg[:, 1], seg[:, 0])
        # Heading at the points: the segment heading, unwrapped so interpolation is continuous.
        heading = np.unwrap(np.concatenate([seg_heading, seg_heading[-1:]]))
        self.heading = heading
        dh = np.diff(np.unwrap(seg_heading))
        mid = 0.5 * (seg_len[1:] + seg_len[:-1])
        curv = np.zeros(len(xy))
        if len(dh):
            curv[1:-1] = dh / mid
            curv[0], curv[-1] = curv[1], curv[-2]
        self.curvature = curv
        self._tree = cKDTree(xy)
        # Python-float copies for ``locate``'s small windowed search.
        self._xy_list = xy.tolist()
        self._seg_list = seg.tolist()
        self._len_list = seg_len.tolist()
        self._len2_list = (seg_len * seg_len).tolist()
        self._s_list = self.s.tolist()
        self._heading_list = self.heading.tolist()
        self._mid_curv_list: list[float] | None = None  # ``tangent_heading``'s, made on its first call

    def _segment(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Segment index containing each arc length, and the arc length into that segment.

        (``np.minimum(np.maximum(...))`` rather than ``np.clip``: this runs several times per
        step on tiny arrays, where ``np.clip``'s dispatch costs several times the work.)
        """
        s = np.minimum(np.maximum(np.asarray(s, dtype=np.float64), 0.0), self.length_m)
        idx = np.minimum(np.maximum(np.searchsorted(self.s, s, side="right") - 1, 0), len(self._seg) - 1)
        return idx, s - self.s[idx]

    def interpolate(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position (…, 2), heading (…,) and curvature (…,) at arc lengths ``s`` (clamped to the line)."""
        idx, ds = self._segment(s)
        frac = ds / self._seg_len[idx]
        xy = self.xy[idx] + self._seg[idx] * frac[..., None]
        curv = self.curvature[idx] + (self.curvature[idx + 1] - self.curvature[idx]) * frac
        return xy, self.heading[idx], curv

    def to_world(self, s: np.ndarray | float, d: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """World position (…, 2) and reference heading (…,) of Frenet points (s, d)."""
        idx, ds = self._segment(s)
        frac = ds / self._seg_len[idx]
        seg = self._seg[idx]
        xy = self.xy[idx] + seg * frac[..., None]
        # The unit normal (left) of the segment is its direction rotated by +90 degrees.
        scale = np.asarray(d, dtype=np.float64) / self._seg_len[idx]
        xy[..., 0] -= seg[..., 1] * scale
        xy[..., 1] += seg[..., 0] * scale
        return xy, self.heading[idx]

    def offset(self, d_m: float) -> Centreline:
        """The parallel line ``d_m`` to the left (negative: right), e.g. a lane centre [m]."""
        normal = np.stack([-np.sin(self.heading), np.cos(self.heading)], axis=1)
        return Centreline(self.xy + d_m * normal)

    def locate(self, x_m: float, y_m: float, hint: int | None = None) -> tuple[float, float, float, int]:
        """Frenet coordinates of one point, searching near segment ``hint`` first.

        The per-step ego projection: a window of segments around the previous answer replaces the
        tree query (about 10x cheaper for one point). Falls back to ``project`` when the foot
        point is at the window's edge or there is no hint.

        Returns:
            (s, d, heading, segment index).
        """
        nseg = len(self._seg)
        if hint is not None:
            # Nine segments in plain Python floats: at this size a loop beats numpy's per-call cost.
            lo, hi = max(hint - 4, 0), min(hint + 5, nseg)
            best = None
            for i in range(lo, hi):
                ax, ay = self._xy_list[i]
                vx, vy = self._seg_list[i]
                ln2 = self._len2_list[i]
                rx, ry = x_m - ax, y_m - ay
                t = min(max((rx * vx + ry * vy) / ln2, 0.0), 1.0)
                fx, fy = rx - vx * t, ry - vy * t
                dist2 = fx * fx + fy * fy
                if best is None or dist2 < best[0]:
                    best = (dist2, i, t, rx, ry, vx, vy)
            assert best is not None
            _, i, t, rx, ry, vx, vy = best
            if (i > lo or lo == 0) and (i < hi - 1 or hi == nseg):
                ln = self._len_list[i]
                return self._s_list[i] + t * ln, (vx * ry - vy * rx) / ln, self._heading_list[i], i
        s, d, h = self.project(np.array([[x_m, y_m]]))
        i = int(np.clip(np.searchsorted(self.s, s[0], side="right") - 1, 0, nseg - 1))
        return float(s[0]), float(d[0]), float(h[0]), i

    def tangent_heading(self, s_m: float, seg: int) -> float:
        """The line's tangent heading at arc length ``s_m`` on segment ``seg`` (as ``locate`` returns them).

        ``locate`` and ``project`` give the segment's chord heading, a step of up to 0.7 degree per
        1 m chord on a tight curve; the tangent turns from the chord's (the tangent at its middle)
        by the curvature times the distance from the middle. Plain floats: a per-step call.
        """
        mid = self._mid_curv_list
        if mid is None:
            mid = self._mid_curv_list = (0.5 * (self.curvature[:-1] + self.curvature[1:])).tolist()
        return self._heading_list[seg] + mid[seg] * (s_m - self._s_list[seg] - 0.5 * self._len_list[seg])

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frenet coordinates of world points.

        Args:
            points: (N, 2) world positions [m].

        Returns:
            (s, d, heading): arc length [m], signed lateral offset [m] (left positive) and the
            reference heading [rad] at the foot point, each (N,).
        """
        pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
        _, nearest = self._tree.query(pts)
        nseg = len(self._seg)
        # The foot point lies on one of the two segments touching the nearest vertex.
        cand = np.stack([np.clip(nearest - 1, 0, nseg - 1), np.clip(nearest, 0, nseg - 1)], axis=1)
        a = self.xy[cand]  # (N, 2, 2)
        v = self._seg[cand]
        ln = self._seg_len[cand]
        rel = pts[:, None, :] - a
        t = np.clip(np.einsum("nkj,nkj->nk", rel, v) / (ln * ln), 0.0, 1.0)
        foot = a + v * t[..., None]
        dist2 = np.sum((pts[:, None, :] - foot) ** 2, axis=-1)
        best = np.argmin(dist2, axis=1)
        rows = np.arange(len(pts))
        seg_idx = cand[rows, best]
        tb = t[rows, best]
        s = self.s[seg_idx] + tb * self._seg_len[seg_idx]
        vb = self._seg[seg_idx]
        relb = rel[rows, best]
        cross = vb[:, 0] * relb[:, 1] - vb[:, 1] * relb[:, 0]
        d = cross / self._seg_len[seg_idx]
        return s, d, self.heading[seg_idx]


@dataclass(frozen=True)
class Road:
    """A road: a reference centreline and parallel lanes.

    Attributes:
        name: layout name.
        centreline: the reference line; lane centres are offset from it.
        lane_width_m: width of every lane [m].
        lane_offsets_m: lateral offset d of each lane centre [m], lane 0 the rightmost.
        lane_directions: +1 for traffic along increasing s, -1 for the opposite direction.
        shoulder_m: paved width beyond each edge line before the barrier [m].
    """

    name: str
    centreline: Centreline
    lane_width_m: float
    lane_offsets_m: tuple[float, ...]
    lane_directions: tuple[int, ...]
    shoulder_m: float = 1.5

    @property
    def n_lanes(self) -> int:
        """Number of lanes."""
        return len(self.lane_offsets_m)

    @property
    def length_m(self) -> float:
        """Length of the reference line [m]."""
        return self.centreline.length_m

    @property
    def edge_right_m(self) -> float:
        """Lateral offset of the right edge line [m]."""
        return min(self.lane_offsets_m) - self.lane_width_m / 2

    @property
    def edge_left_m(self) -> float:
        """Lateral offset of the left edge line [m]."""
        return max(self.lane_offsets_m) + self.lane_width_m / 2

    def lane_index(self, d: np.ndarray | float) -> np.ndarray:
        """Index of the lane whose centre is nearest to lateral offset ``d``."""
        offsets = np.asarray(self.lane_offsets_m)
        d = np.asarray(d, dtype=np.float64)
        return np.argmin(np.abs(d[..., None] - offsets), axis=-1)

    def forward_lanes(self) -> tuple[int, ...]:
        """Indices of the lanes that run along increasing s."""
        return tuple(i for i, k in enumerate(self.lane_directions) if k > 0)
