"""Ground-truth labels of a camera frame, for the perception dataset (issue 18).

What the perception net learns to read from the ego camera, taken from the world at the moment
of the frame: where the lane is (offset from its centre, heading error, curvature ahead, the
road edges), what is ahead in the ego lane (a lead vehicle: present, gap, relative speed), the
next stop or give-way line (distance and state), and per pixel the class and depth.

This module belongs to ``envs`` because it is the one package that may read the world for an
observation-like product; the collector in ``agents.datasets`` gets labels only through it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from drive_sim.sensors import SEG_CLASSES, Camera
from drive_sim.traffic import VEHICLE_LENGTH_M
from drive_sim.vehicle import Vehicle
from drive_sim.weather import headlight_pattern
from drive_sim.world import World

#: The segmentation task's classes; ``SEG_TASK_OF`` maps the world's ``SEG_CLASSES`` onto them.
#: "verge" is whatever bounds the road beside it: grass and barriers. Sky, signal heads and the
#: (never visible) ego car are background.
SEG_TASK_CLASSES = ("background", "road", "marking", "vehicle", "verge")
_TASK = {"none": 0, "ground": 4, "road": 1, "marking": 2, "barrier": 4, "ego": 0, "vehicle": 3, "signal": 0}
SEG_TASK_OF = np.zeros(max(SEG_CLASSES.values()) + 1, np.uint8)
for _name, _id in SEG_CLASSES.items():
    SEG_TASK_OF[_id] = _TASK[_name]

#: The state of the next stop line within ``STOP_RANGE_M``: "none" beyond it or where there is none.
LIGHT_STATES = ("none", "green", "amber", "red", "yield")
#: How far ahead a lead vehicle counts as present, and the gap stored when none is [m].
LEAD_RANGE_M = 60.0
#: How far ahead a stop line counts, and the distance stored when none is [m].
STOP_RANGE_M = 60.0
#: The stretch ahead over which the lane curvature is averaged [m].
CURVATURE_AHEAD_M = (5.0, 30.0)

#: Per-frame scalar labels, in the order of ``FrameLabels.scalars``.
SCALAR_LABELS = (
    "lane_offset_m",  # ego centre from the ego lane's centre, left positive
    "heading_error_deg",  # ego heading minus the lane's, left positive
    "curvature_ahead_1pm",  # mean lane curvature 5-30 m ahead, left turns positive [1/m]
    "edge_left_m",  # ego centre to the left edge of its carriageway
    "edge_right_m",  # ego centre to the right edge
    "lead_present",  # 1 if a vehicle in the ego lane is ahead within LEAD_RANGE_M
    "lead_distance_m",  # bumper-to-bumper gap to it (LEAD_RANGE_M when none)
    "lead_rel_speed_mps",  # its speed along the lane minus the ego's (0 when none)
    "stop_distance_m",  # distance to the next stop or give-way line (STOP_RANGE_M when none)
    "light_state",  # index into LIGHT_STATES
    "speed_mps",  # ego speed (not for the camera to read; kept for analysis)
)


def frame_labels(world: World) -> np.ndarray:
    """The scalar labels of the world as it is now (see ``SCALAR_LABELS``)."""
    e, f, road = world.ego, world.frenet, world.road
    fwd = [road.lane_offsets_m[i] for i in road.forward_lanes()]
    centre = min(fwd, key=lambda x: abs(x - f.d_m))
    s0, s1 = f.s_m + CURVATURE_AHEAD_M[0], f.s_m + CURVATURE_AHEAD_M[1]
    _, _, curv = road.centreline.interpolate(np.linspace(s0, s1, 11))
    # Lead: the nearest vehicle ahead whose centre is in the ego lane and heads the same way.
    present, gap, rel = 0.0, LEAD_RANGE_M, 0.0
    xy, yaw, v = world.traffic_state()
    if len(xy):
        s, d, ref = road.centreline.project(xy)
        along = np.cos((yaw - ref + math.pi) % (2 * math.pi) - math.pi)
        gaps = s - f.s_m - (Vehicle.LENGTH_M + VEHICLE_LENGTH_M) / 2
        mine = (np.abs(d - centre) < road.lane_width_m / 2) & (along > 0.7) & (gaps > -VEHICLE_LENGTH_M) & (gaps <= LEAD_RANGE_M)
        if mine.any():
            k = int(np.flatnonzero(mine)[np.argmin(gaps[mine])])
            present, gap = 1.0, max(float(gaps[k]), 0.0)
            rel = float(v[k] * along[k]) - e.speed_mps * math.cos(f.heading_error_rad)
    kind, dist = world.stop_line_ahead()
    if kind == "" or dist > STOP_RANGE_M:
        kind, dist = "none", STOP_RANGE_M
    return np.array(
        [
            f.d_m - centre,
            math.degrees(f.heading_error_rad),
            float(np.mean(curv)),
            road.edge_left_m - f.d_m,
            f.d_m - road.edge_right_m,
            present,
            gap,
            rel,
            max(dist, 0.0),
            float(LIGHT_STATES.index(kind)),
            e.speed_mps,
        ]
    )


class FrameLabeller:
    """Labelled frames of an env's ego car: per size, RGB through the weather, task classes and depth; and the scalar labels.

    Args:
        env: a ``DrivingEnv`` (``env.unwrapped``), reset.
        sizes: square image sizes [px]; mount and field of view are the env camera's.
        seed: seeds the rain streaks, one generator per size: the frames of one size do not
            depend on which other sizes are filmed, and filming draws nothing from the episode's
            own generators.
    """

    def __init__(self, env: Any, sizes: tuple[int, ...], seed: int = 0) -> None:
        world: World = env.world
        base = world.cfg.camera
        self.world = world
        self._cams = []
        for size in sizes:
            cfg = dataclasses.replace(base, width=size, height=size, depth=True, segmentation=True)
            cam = Camera(world.client, cfg, world.seg_lookup)
            rng = np.random.default_rng([seed, 19, size])
            self._cams.append((size, cam, headlight_pattern(size, size, cfg.fov_deg, cfg.pitch_deg), rng))

    def capture(self, *, buffers: bool = True) -> dict[str, np.ndarray]:
        """One labelled frame per size, and the scalars.

        Returns ``rgbS`` (S, S, 3) uint8, ``segS`` (S, S) uint8 (``SEG_TASK_CLASSES``) and
        ``depthS`` (S, S) uint16 [cm] per size S, and ``labels`` (``SCALAR_LABELS``, float32).
        Without ``buffers``, only the RGB frames and the labels.
        """
        out = {}
        for size, cam, headlight, rng in self._cams:
            frame = self.world.render_camera(cam, headlight, rng, depth=buffers, segmentation=buffers)
            out[f"rgb{size}"] = frame.rgb
            if buffers:
                assert frame.depth_m is not None and frame.segmentation is not None
                out[f"seg{size}"] = SEG_TASK_OF[frame.segmentation]
                out[f"depth{size}"] = np.clip(np.round(frame.depth_m * 100.0), 0, 65535).astype(np.uint16)
        out["labels"] = frame_labels(self.world).astype(np.float32)
        return out


__all__ = [
    "LEAD_RANGE_M",
    "LIGHT_STATES",
    "SCALAR_LABELS",
    "SEG_TASK_CLASSES",
    "SEG_TASK_OF",
    "STOP_RANGE_M",
    "FrameLabeller",
    "frame_labels",
]
