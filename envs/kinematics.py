"""The ``kinematics`` observation: nearby vehicles and route features in the ego frame.

Like highway-env's Kinematics observation: a table of the ``vehicles`` nearest vehicles within
``vehicle_range_m`` (rows sorted by distance; empty rows are all zero), one row per vehicle
``[presence, x, y, vx, vy, cos(heading), sin(heading)]`` in the ego frame (x forward, y left;
velocities are the other vehicle's own, expressed in the ego frame), followed by route features
(``ROUTE_FEATURES``) and ``waypoints`` points of the ego lane's centre, from two spacings behind the
car to far ahead, denser near the car (``KinematicsLayout.offsets_m``). Everything is scaled into
[-1, 1] (float32, flat). ``KinematicsLayout`` names every entry and turns a vector back into
physical units (``decode``), which is how the expert agent and the ``meta`` action read it.

Friction: the driver is told the road's friction coefficient; with ``observation.friction:
estimate`` the on-board estimator's output replaces it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from drive_sim.planning.controllers import EgoPose
from drive_sim.planning.driver import DriveCommand, Driver, DriverConfig
from drive_sim.planning.lattice import Obstacles, PlanRequest
from drive_sim.road.geometry import Centreline, dedupe_points
from drive_sim.scenarios import Scenario
from drive_sim.vehicle import VehicleConfig
from drive_sim.world import World
from envs.config import ObservationConfig

VEHICLE_FEATURES = ("presence", "x", "y", "vx", "vy", "cos_h", "sin_h")
ROUTE_FEATURES = (
    "speed",
    "yaw_rate",
    "speed_limit",
    "speed_limit_ahead",
    "lane_offset",
    "heading_error",
    "lanes_left",
    "lanes_right",
    "lane_width",
    "friction",
    "stop_distance",
    "stop_required",
    "stop_yield",
    "route_remaining",
)
POSITION_SCALE_M = 100.0
SPEED_SCALE_MPS = 40.0
STOP_SCALE_M = 100.0
LIMIT_LOOKAHEAD_M = 50.0


@dataclass(frozen=True)
class KinematicsLayout:
    """Where everything sits in a ``kinematics`` vector, and its scales."""

    vehicles: int
    waypoints: int
    spacing_m: float

    @property
    def size(self) -> int:
        """Length of the vector."""
        return self.vehicles * len(VEHICLE_FEATURES) + len(ROUTE_FEATURES) + 2 * self.waypoints

    def offsets_m(self) -> np.ndarray:
        """Distances along the lane of the waypoints from the car [m].

        Two spacings behind, then ``spacing * (k + k^2 / 8)`` for k = 0, 1, ...: dense near the
        car, where a tight turn needs detail (a 10 m polyline cuts a 12 m radius corner), sparse
        far ahead, where the planner only needs the lane's direction.
        """
        k = np.arange(self.waypoints - 1, dtype=np.float64)
        return np.concatenate([[-2.0 * self.spacing_m], self.spacing_m * (k + k * k / 8.0)])

    @property
    def waypoint_scale_m(self) -> float:
        """Waypoint coordinates are divided by this [m]."""
        return float(self.offsets_m()[-1])

    def names(self) -> tuple[str, ...]:
        """Name of every entry, in order."""
        rows = tuple(f"vehicle_{i}_{f}" for i in range(self.vehicles) for f in VEHICLE_FEATURES)
        pts = tuple(f"waypoint_{k}_{a}" for k in range(self.waypoints) for a in ("x", "y"))
        return rows + ROUTE_FEATURES + pts

    def decode(self, obs: np.ndarray) -> dict[str, np.ndarray | float]:
        """Physical values of one vector.

        Returns ``vehicles`` (rows of present vehicles: x, y, vx, vy, heading), each route
        feature by name (m, m/s, rad; lane counts as integers) and ``waypoints`` (P, 2) [m].
        """
        v = np.asarray(obs, dtype=np.float64)
        nv = self.vehicles * len(VEHICLE_FEATURES)
        table = v[:nv].reshape(self.vehicles, len(VEHICLE_FEATURES))
        present = table[:, 0] > 0.5
        rows = table[present]
        vehicles = np.stack(
            [
                rows[:, 1] * POSITION_SCALE_M,
                rows[:, 2] * POSITION_SCALE_M,
                rows[:, 3] * SPEED_SCALE_MPS,
                rows[:, 4] * SPEED_SCALE_MPS,
                np.arctan2(rows[:, 6], rows[:, 5]),
            ],
            axis=1,
        )
        r = dict(zip(ROUTE_FEATURES, v[nv : nv + len(ROUTE_FEATURES)].tolist(), strict=True))
        out: dict[str, np.ndarray | float] = {"vehicles": vehicles}
        out["speed"] = r["speed"] * SPEED_SCALE_MPS
        out["yaw_rate"] = r["yaw_rate"]
        out["speed_limit"] = r["speed_limit"] * SPEED_SCALE_MPS
        out["speed_limit_ahead"] = r["speed_limit_ahead"] * SPEED_SCALE_MPS
        out["lane_width"] = r["lane_width"] * 5.0
        out["lane_offset"] = r["lane_offset"] * float(out["lane_width"])
        out["heading_error"] = r["heading_error"] * math.pi
        out["lanes_left"] = round(r["lanes_left"] * 3.0)
        out["lanes_right"] = round(r["lanes_right"] * 3.0)
        out["friction"] = r["friction"]
        out["stop_distance"] = r["stop_distance"] * STOP_SCALE_M if r["stop_distance"] < 1.0 else math.inf
        out["stop_required"] = r["stop_required"]
        out["stop_yield"] = r["stop_yield"]
        out["route_remaining"] = r["route_remaining"]
        out["waypoints"] = v[nv + len(ROUTE_FEATURES) :].reshape(self.waypoints, 2) * self.waypoint_scale_m
        return out


class KinematicsObservation:
    """Nearby vehicles and route features (see the module docstring)."""

    def __init__(self, world: World, scenario: Scenario, cfg: ObservationConfig) -> None:
        self.world = world
        self.scenario = scenario
        self.cfg = cfg
        self.layout = KinematicsLayout(cfg.vehicles, cfg.waypoints, cfg.waypoint_spacing_m)
        self.space = spaces.Box(-1.0, 1.0, (self.layout.size,), np.float32)
        self.names = self.layout.names()
        road = world.road
        self._fwd = sorted(road.lane_offsets_m[i] for i in road.forward_lanes())
        self._ahead = self.layout.offsets_m()
        self._buf = np.zeros(self.layout.size, np.float64)

    def observe(self) -> np.ndarray:
        """Current observation (a new array)."""
        w, lay, out = self.world, self.layout, self._buf
        out.fill(0.0)
        e, f = w.ego, w.frenet
        c, s = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
        # Vehicles: nearest first, within range.
        xy, yaw, v = w.traffic_state()
        if len(xy):
            dx, dy = xy[:, 0] - e.x_m, xy[:, 1] - e.y_m
            dist = np.hypot(dx, dy)
            order = np.argsort(dist, kind="stable")
            order = order[dist[order] < self.cfg.vehicle_range_m][: lay.vehicles]
            k = len(order)
            if k:
                rel = yaw[order] - e.yaw_rad
                vw_x, vw_y = v[order] * np.cos(yaw[order]), v[order] * np.sin(yaw[order])
                table = np.stack(
                    [
                        np.ones(k),
                        (c * dx[order] + s * dy[order]) / POSITION_SCALE_M,
                        (-s * dx[order] + c * dy[order]) / POSITION_SCALE_M,
                        (c * vw_x + s * vw_y) / SPEED_SCALE_MPS,
                        (-s * vw_x + c * vw_y) / SPEED_SCALE_MPS,
                        np.cos(rel),
                        np.sin(rel),
                    ],
                    axis=1,
                )
                out[: k * len(VEHICLE_FEATURES)] = table.ravel()
        # Route features.
        r = lay.vehicles * len(VEHICLE_FEATURES)
        road = w.road
        centre = min(self._fwd, key=lambda x: abs(x - f.d_m))
        kind, dist_m = w.stop_line_ahead()
        friction = w.estimate_friction() if self.cfg.friction == "estimate" else w.friction
        done = (f.s_m - w.start_s_m) / self.scenario.route_length_m
        out[r : r + len(ROUTE_FEATURES)] = (
            e.vx_mps / SPEED_SCALE_MPS,
            e.yaw_rate_rps,
            self.scenario.speed_limit_at(f.s_m) / SPEED_SCALE_MPS,
            self.scenario.speed_limit_at(f.s_m + LIMIT_LOOKAHEAD_M) / SPEED_SCALE_MPS,
            (f.d_m - centre) / road.lane_width_m,
            f.heading_error_rad / math.pi,
            sum(1 for x in self._fwd if x > centre + 0.1) / 3.0,
            sum(1 for x in self._fwd if x < centre - 0.1) / 3.0,
            road.lane_width_m / 5.0,
            friction,
            min(dist_m / STOP_SCALE_M, 1.0),
            1.0 if kind in ("red", "amber") else 0.0,
            1.0 if kind == "yield" else 0.0,
            1.0 - done,
        )
        # Waypoints of the ego lane's centre, in the ego frame.
        pts, _ = road.centreline.to_world(f.s_m + self._ahead, np.full(len(self._ahead), centre))
        dx, dy = pts[:, 0] - e.x_m, pts[:, 1] - e.y_m
        p = r + len(ROUTE_FEATURES)
        out[p::2] = (c * dx + s * dy) / lay.waypoint_scale_m
        out[p + 1 :: 2] = (-s * dx + c * dy) / lay.waypoint_scale_m
        np.minimum(np.maximum(out, -1.0, out=out), 1.0, out=out)
        return out.astype(np.float32)


def plan_request(
    k: dict[str, np.ndarray | float],
    accel_limits: tuple[float, float],
    accel_mps2: float = 0.0,
    *,
    desired_speed_mps: float | None = None,
    lanes: tuple[int, ...] | None = None,
    preferred_lane: int | None = None,
    time_gap_scale: float = 1.0,
    lead_brake_mps2: float | None = None,
) -> tuple[PlanRequest, EgoPose]:
    """A planner request in the ego frame from a decoded ``kinematics`` observation.

    Args:
        k: ``KinematicsLayout.decode`` output.
        accel_limits: (largest deceleration, largest acceleration) at the decoded friction.
        accel_mps2: the measured acceleration (the observation has none; ``KinematicsDriver`` derives it).
        desired_speed_mps: target speed; by default the lower of the limit here and 50 m ahead.
        lanes: lanes the plan may end in, relative to the current one (0 current, +1 the next
            to the left, -1 to the right); by default every lane the road has.
        preferred_lane: relative lane the driver prefers, or None.
        time_gap_scale: scales the planner's following gap (``PlanRequest.time_gap_scale``).
        lead_brake_mps2: how hard the leader may brake (``PlanRequest.lead_brake_mps2``).

    Returns:
        (request, the ego pose in its own frame).
    """
    width = float(k["lane_width"])
    path = _path_from_waypoints(np.asarray(k["waypoints"]))
    s, d, h = path.project(np.zeros((1, 2)))
    left, right = int(k["lanes_left"]), int(k["lanes_right"])
    rel = tuple(range(-right, left + 1)) if lanes is None else tuple(x for x in lanes if -right <= x <= left)
    if not rel:
        rel = (0,)
    speed = float(k["speed"])
    limit = min(float(k["speed_limit"]), float(k["speed_limit_ahead"]))
    desired = limit if desired_speed_mps is None else min(desired_speed_mps, float(k["speed_limit"]))
    stop_d = float(k["stop_distance"])
    vehicles = np.asarray(k["vehicles"])
    obstacles = Obstacles(vehicles[:, :2].copy(), vehicles[:, 2:4].copy(), vehicles[:, 4].copy())
    req = PlanRequest(
        path=path,
        s_m=float(s[0]),
        d_m=float(d[0]),
        heading_error_rad=-float(h[0]),
        speed_mps=speed,
        accel_mps2=accel_mps2,
        lane_offsets_m=tuple(x * width for x in rel),
        desired_speed_mps=desired,
        speed_limit_mps=float(k["speed_limit"]),
        friction=float(k["friction"]),
        max_accel_mps2=accel_limits[1],
        max_decel_mps2=accel_limits[0],
        obstacles=obstacles,
        stop_s_m=float(s[0]) + stop_d if k["stop_required"] > 0.5 and math.isfinite(stop_d) else None,
        yield_s_m=float(s[0]) + stop_d if k["stop_yield"] > 0.5 and math.isfinite(stop_d) else None,
        preferred_offset_m=None if preferred_lane is None else preferred_lane * width,
        time_gap_scale=time_gap_scale,
        lead_brake_mps2=lead_brake_mps2,
    )
    return req, EgoPose(0.0, 0.0, 0.0, speed, float(k["yaw_rate"]))


class KinematicsDriver:
    """A ``Driver`` fed with decoded ``kinematics`` observations: the expert and the ``meta`` action.

    It remembers the last speed, so the plan starts from the measured acceleration (feeding back
    the commanded one would let a braking command reinforce itself).
    """

    def __init__(self, cfg: DriverConfig | None, vehicle: VehicleConfig | None, control_period_s: float) -> None:
        self.driver = Driver(cfg, vehicle)
        self.control_period_s = control_period_s
        self._prev_speed: float | None = None

    def reset(self) -> None:
        """Start of an episode."""
        self.driver.reset()
        self._prev_speed = None

    def drive(
        self,
        k: dict[str, np.ndarray | float],
        *,
        desired_speed_mps: float | None = None,
        lanes: tuple[int, ...] | None = None,
        preferred_lane: int | None = None,
        time_gap_scale: float = 1.0,
        lead_brake_mps2: float | None = None,
    ) -> DriveCommand:
        """Plan and control one period from a decoded observation (arguments as ``plan_request``)."""
        speed = float(k["speed"])
        accel = 0.0 if self._prev_speed is None else (speed - self._prev_speed) / self.control_period_s
        self._prev_speed = speed
        limits = self.driver.accel_limits(speed, float(k["friction"]))
        req, pose = plan_request(
            k,
            limits,
            accel,
            desired_speed_mps=desired_speed_mps,
            lanes=lanes,
            preferred_lane=preferred_lane,
            time_gap_scale=time_gap_scale,
            lead_brake_mps2=lead_brake_mps2,
        )
        return self.driver.drive(req, pose, self.control_period_s)


def _path_from_waypoints(pts: np.ndarray, extend_m: float = 200.0) -> Centreline:
    """The lane centre through the waypoints, extended straight beyond the last one."""
    pts = dedupe_points(pts, 0.5)
    if len(pts) < 2:
        pts = np.array([[-10.0, 0.0], [10.0, 0.0]])
    direction = pts[-1] - pts[-2]
    direction = direction / max(float(np.hypot(*direction)), 1e-9)
    tail = pts[-1] + np.outer(np.arange(10.0, extend_m + 1e-9, 10.0), direction)
    return Centreline(np.concatenate([pts, tail]))
