"""The ``perceived`` observation: the ``kinematics`` layout filled only from the car's own estimates.

Every period the observation reads the car's sensors and runs the perception stack on them:

- the camera frame through the shipped perception net (``perception.load``): lane offset, heading
  error, road edges, the lead vehicle, the next stop line and the light's state;
- the localisation filter (``perception.fusion.Localiser``): IMU and wheel odometry predict, GNSS
  fixes and the net's lane reading matched against the map correct;
- the tracker (``perception.fusion.Tracker``): lidar clusters, radar returns and the camera's lead,
  in the ego frame.

The vector has exactly the ``kinematics`` layout (``envs.kinematics.KinematicsLayout``), so a
policy trained on one can be evaluated on the other and the expert reads both. The map is prior
knowledge (lane geometry, speed limits); where the car is on it comes from the filter. The world's
true state reaches only ``info`` (metrics stay honest) and ``estimate`` (for logs and videos).

Sensor noise comes from a generator of its own (``reset``), so that the same seed gives the same
traffic as the ``kinematics`` observation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from drive_sim.config import ConfigError
from drive_sim.scenarios import Scenario
from drive_sim.vehicle import Vehicle
from drive_sim.world import World
from envs.config import ObservationConfig
from envs.kinematics import (
    LIMIT_LOOKAHEAD_M,
    POSITION_SCALE_M,
    ROUTE_FEATURES,
    SPEED_SCALE_MPS,
    STOP_SCALE_M,
    VEHICLE_FEATURES,
    KinematicsLayout,
)
from envs.labels import LIGHT_STATES
from perception.fusion import (
    LaneMap,
    Localiser,
    LocaliserConfig,
    SignalTracker,
    Tracker,
    TrackerConfig,
    camera_detection,
    lidar_detections,
    radar_detections,
)

#: The camera's distance to a stop or give-way line as a measurement along the road: its noise [m]
#: (the net's error is about 1 m, with a bias of up to 0.8 m that holds over a few metres), and the
#: distance travelled between two readings taken [m], so that a car waiting in one place does not
#: take one view's error a hundred times.
STOP_LINE_STD_M = 1.5
STOP_LINE_SPACING_M = 3.0
#: A camera line reading farther than this many stds (the along-road estimate's and the reading's
#: together) from the map's next line is not that line (``PerceivedObservation.observe``).
LINE_MATCH_SIGMA = 3.0
#: On a junction layout a moving track this close to its lane's direction is taken to move along it [rad].
LANE_SNAP_RAD = math.radians(25.0)
#: Time constant of the share of periods whose lane reading the filter took [s].
LANE_RATE_TAU_S = 1.0
#: ``caution`` is 1 at these: lateral std [m], along-road std [m] (each from its clear-weather level:
#: about 0.05 m and 2 m, the fixes' bias), a lane reading taken in none of the recent periods.
CAUTION_LATERAL_M = (0.15, 0.5)
CAUTION_ALONG_M = (3.0, 6.0)
#: Seconds without a GNSS fix over which that term ramps up [s].
CAUTION_NO_FIX_S = (1.0, 5.0)
#: A lidar or radar return counts as on the road this far inside the paved edges [m] (a vehicle's
#: side is about 0.9 m from its lane centre, 0.85 m inside the edge; barriers and poles stand outside).
ON_ROAD_INSET_M = 0.5


#: Sensors the localiser cannot start or run without, and why.
NEEDED = {
    "gnss": "the localiser starts from a GNSS fix and corrects its drift with them",
    "imu": "the localiser predicts the heading and speed from the IMU",
    "odometry": "the localiser corrects the speed with the wheel odometry",
}


@dataclass(frozen=True)
class Estimate:
    """What the stack believes this period (for logs, videos and the fusion figures).

    Attributes:
        ego: (x, y, yaw, v) estimated.
        ego_cov: 4x4 covariance of ``ego``.
        ego_std: (position std along the larger axis [m], yaw std [rad], speed std [m/s]).
        tracks: (K, 5) confirmed tracks in the world frame: id, x, y, vx, vy (through the estimated pose).
        tracks_ego: (K, 5) the same in the ego frame, as the tracker keeps them.
        camera: the net's latest predictions (held between its runs, ``perception_every``; empty during a camera dropout).
        gnss: the receiver's fix this period (None during a dropout).
        caution: how unsure the stack is, in [0, 1] (``PerceivedObservation.caution``).
        lateral_std_m, along_std_m: the position's std across and along the road [m].
        lane_rate: the share of recent periods whose camera lane reading the filter took.
    """

    ego: np.ndarray
    ego_cov: np.ndarray
    ego_std: tuple[float, float, float]
    tracks: np.ndarray
    tracks_ego: np.ndarray
    camera: dict[str, float]
    gnss: np.ndarray | None
    caution: float = 0.0
    lateral_std_m: float = 0.0
    along_std_m: float = 0.0
    lane_rate: float = 1.0


def check_sensors(world: World) -> None:
    """One clear line if the scenario disables a sensor the localiser needs."""
    sc = world.cfg.sensors
    for name, why in NEEDED.items():
        if not getattr(sc, name).enabled:
            raise ConfigError(
                f"obs_type perceived: scenario.world.sensors.{name} is disabled, but {why}; set scenario.world.sensors.{name}.enabled: true"
            )


class PerceivedObservation:
    """The ``kinematics`` vector from perception and fusion (see the module docstring)."""

    def __init__(self, world: World, scenario: Scenario, cfg: ObservationConfig) -> None:
        from perception import load

        check_sensors(world)
        self.world = world
        self.scenario = scenario
        self.cfg = cfg
        self.layout = KinematicsLayout(cfg.vehicles, cfg.waypoints, cfg.waypoint_spacing_m)
        self.space = spaces.Box(-1.0, 1.0, (self.layout.size,), np.float32)
        self.names = self.layout.names()
        try:
            self.net = load(cfg.perception_model or None)
        except (ValueError, OSError) as err:
            raise ConfigError(f"observation.perception_model: {err}") from None
        cam = world.cfg.camera
        if (cam.width, cam.height) != (self.net.size, self.net.size):
            raise ConfigError(
                f"obs_type perceived: the perception net reads {self.net.size}x{self.net.size} frames, the scenario's camera is "
                f"{cam.width}x{cam.height}; set scenario.world.camera.width and height to {self.net.size}"
            )
        road = world.road
        self._fwd = sorted(road.lane_offsets_m[i] for i in road.forward_lanes())
        self._hint: int | None = None
        centreline = road.centreline

        def locate(x: float, y: float) -> tuple[float, float, float]:
            # The tangent's heading, not the 1 m chord's: the filter's heading reading is against it.
            s, d, _, i = centreline.locate(x, y, self._hint)
            self._hint = i
            return s, d, centreline.tangent_heading(s, i)

        self._locate = locate
        sc = world.cfg.sensors
        self.localiser = Localiser(
            LocaliserConfig(
                gnss_noise_std_m=sc.gnss.noise_std_m,
                gnss_bias_std_m=sc.gnss.bias_std_m,
                gnss_bias_tau_s=sc.gnss.bias_tau_s,
                accel_noise_std_mps2=sc.imu.accel_noise_std_mps2,
                gyro_noise_std_rps=sc.imu.gyro_noise_std_rps,
                accel_bias_std_mps2=sc.imu.accel_bias_std_mps2,
                gyro_bias_std_rps=sc.imu.gyro_bias_std_rps,
                odometry_noise_std_mps=sc.odometry.noise_std_mps,
            ),
            LaneMap(
                locate,
                tuple(self._fwd),
                road.edge_left_m,
                road.edge_right_m,
                sharp_turns=world.network is not None,
                stop_lines_s=world.route_lines_s,
            ),
        )
        self._lines = world.route_lines_s
        self._give_way = frozenset(world.route_give_way_s)
        self.tracker = Tracker(TrackerConfig())
        self.signal = SignalTracker()
        self._ahead = self.layout.offsets_m()
        self._buf = np.zeros(self.layout.size, np.float64)
        self.estimate: Estimate | None = None
        self._started = False
        self._gnss: np.ndarray | None = None

    def reset(self, rng: np.random.Generator) -> None:
        """Start of an episode (after the world's reset): the sensors' own generator, a fresh filter and tracker."""
        self.world.sensor_rng = rng
        self.tracker.reset()
        self.signal.reset()
        self._hint = None
        self._started = False
        self._lane_rate = 1.0
        self._sensors_down = 0.0
        self._no_fix_s = 0.0
        self._since_line_m = math.inf
        self._light_read = "none"
        self._period = 0
        self._cam_last: dict[str, float] = {}
        self._cam_down = False

    # ------------------------------------------------------------------ the stack
    def _on_road(self, pose: tuple[float, float, float]) -> Any:
        x0, y0, yaw = pose
        c, s = math.cos(yaw), math.sin(yaw)
        road, network = self.world.road, self.world.network
        # On a junction layout the ego road is one route's lane; the other lanes (the main road
        # beside a ramp, the crossing arms, the ring) carry traffic too, so the whole paved area
        # counts there.
        paved = network.paved(ON_ROAD_INSET_M) if network is not None else None

        def mask(pts: np.ndarray) -> np.ndarray:
            world_xy = np.stack([x0 + c * pts[:, 0] - s * pts[:, 1], y0 + s * pts[:, 0] + c * pts[:, 1]], axis=1)
            if paved is not None:
                return paved.contains(world_xy)
            _, d, _ = road.centreline.project(world_xy)
            return (d > road.edge_right_m + ON_ROAD_INSET_M) & (d < road.edge_left_m - ON_ROAD_INSET_M)

        return mask

    def _lane_heading(self, pose: tuple[float, float, float]) -> Any:
        """On a junction layout: ego-frame points -> the nearest lane's direction in the ego frame (None elsewhere)."""
        network = self.world.network
        if network is None:
            return None
        x0, y0, yaw = pose
        c, s = math.cos(yaw), math.sin(yaw)

        def heading(pts: np.ndarray) -> np.ndarray:
            world_xy = np.stack([x0 + c * pts[:, 0] - s * pts[:, 1], y0 + s * pts[:, 0] + c * pts[:, 1]], axis=1)
            return network.heading_near(world_xy) - yaw

        return heading

    def _camera(self) -> dict[str, float]:
        frame = self.world.capture_camera()
        if not frame.valid:
            return {}
        p = self.net(frame.rgb, segmentation=False)
        out = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in p.items() if k != "segmentation"}
        return out

    def _perceive(self) -> tuple[dict[str, float], list[Any], float, tuple[float, float, float]]:
        """One period of the stack: camera predictions, confirmed tracks, yaw rate, and the estimate's (s, d, heading) on the map."""
        w = self.world
        r = w.read_sensors()
        # The net runs once every ``perception_every`` periods; ``cam`` is empty in between.
        fresh = self._period % self.cfg.perception_every == 0
        self._period += 1
        cam = self._camera() if fresh else {}
        if fresh:
            self._cam_last, self._cam_down = cam, not cam
        loc = self.localiser
        dt = w.cfg.control_period_s
        valid = r.valid
        gnss = r.gnss_xy_m if valid.get("gnss", True) else None
        imu = r.imu if valid.get("imu", True) else None
        odo = r.odometry_speed_mps if valid.get("odometry", True) else None
        lane = {k: cam[k] for k in ("lane_offset_m", "heading_error_deg", "edge_left_m", "edge_right_m") if k in cam}
        self._gnss = None if gnss is None else np.array(gnss, np.float64)
        self._no_fix_s = 0.0 if gnss is not None else self._no_fix_s + dt
        self._light_read = LIGHT_STATES[int(cam["light_state"])] if cam else "none"
        if not self._started:
            if gnss is None:  # no fix yet (a dropout at the start): the filter waits
                return cam, [], 0.0, (0.0, 0.0, 0.0)
            loc.reset(gnss, odo)
            self._started = True
            if lane:
                loc.update_camera(lane)
        else:
            # The first period after a spawn: the wheels, placed spinning at the car's speed, settle onto
            # the road and read up to a metre a second off (a simulator transient, not slip): skipped.
            took = loc.stats.accepted.get("camera_lane", 0)
            skipped = self._map_skips()
            loc.step(dt, imu, odo if w.steps > 1 else None, gnss, lane)
            ok = loc.stats.accepted.get("camera_lane", 0) > took
            # The share moves on the periods the net ran. A reading the map made the filter skip (a
            # junction's turn, where the box has no lane lines) is no sign of a failing camera: the
            # share holds. Counted, it put the caution at 1 through every turn, and the slowed car
            # stopped in the box beside the oncoming queue (Intersection-v0, tuning seed 1004).
            if fresh and self._map_skips() == skipped:
                step = dt * self.cfg.perception_every / LANE_RATE_TAU_S
                self._lane_rate += (float(ok) - self._lane_rate) * step
            self._since_line_m += max(float(loc.x[3]), 0.0) * dt
            line_m = cam.get("stop_distance_m", math.inf)
            if (
                self._lines
                and self._light_read != "none"
                and self.signal.cfg.in_sight(line_m)
                and self._since_line_m >= STOP_LINE_SPACING_M
            ):
                loc.update_stop_line(line_m, STOP_LINE_STD_M)
                self._since_line_m = 0.0
        x = loc.x
        pose = (float(x[0]), float(x[1]), float(x[2]))
        place = self._locate(pose[0], pose[1])
        ref = place[2]
        road_heading = ref - pose[2]
        on_road = self._on_road(pose)
        dets = []
        lid = w.read_lidar()
        radar_out = w.radar is not None and not valid.get("radar", True)
        self._sensors_down = float(not lid.valid or radar_out or self._cam_down)
        if lid.valid:
            dets.append(
                lidar_detections(
                    lid.ranges_m, lid.angles_rad, w.lidar.cfg.range_m, on_road, road_heading, self.tracker.cfg, self._lane_heading(pose)
                )
            )
        if r.radar_ranges_m is not None and valid.get("radar", True) and w.radar is not None:
            rc = w.cfg.sensors.radar
            dets.append(
                radar_detections(
                    r.radar_ranges_m,
                    r.radar_range_rates_mps,
                    w.radar.angles_rad,
                    rc.range_m,
                    on_road,
                    Vehicle.LENGTH_M / 2,
                    self.tracker.cfg,
                )
            )
        if cam:
            dets.append(
                camera_detection(
                    cam.get("lead_p", 0.0) > 0.5,
                    cam.get("lead_distance_m", 0.0),
                    cam.get("lead_rel_speed_mps", 0.0),
                    cam.get("lane_offset_m", 0.0),
                    Vehicle.LENGTH_M,
                    float(x[3]),
                    self.tracker.cfg,
                )
            )
        rate = 0.0 if imu is None else float(imu[2]) - float(x[4])
        tracks = self.tracker.step(dt, float(x[3]), rate, dets)
        return cam, tracks, rate, place

    def _map_skips(self) -> int:
        """How many lane readings the filter has skipped where the map bends (``Localiser.update_camera``)."""
        r = self.localiser.stats.rejected
        return r.get("camera_in_turn", 0) + r.get("camera_ambiguous", 0)

    def caution(self, lateral_std_m: float, along_std_m: float) -> float:
        """How unsure the stack is this period, in [0, 1]: the largest of its signs of doubt.

        - the position's std across the road (the lane readings fail: fog, night, a blinded camera),
        - its std along the road (a GNSS outage: the stop lines and junctions are placed from it),
        - the share of recent periods without a lane reading the filter took,
        - a half for a sensor flagged out (lidar, radar or camera): the tracker sees less;
        - up to a half while GNSS is lost (dead reckoning), reached after ``CAUTION_NO_FIX_S``.

        Each ramps from 0 at the first value of ``CAUTION_*`` to 1 at the second. A driver (the
        expert) slows and keeps longer gaps with it (``agents.policies.expert``).
        """

        def ramp(v: float, lo_hi: tuple[float, float]) -> float:
            lo, hi = lo_hi
            return min(max((v - lo) / (hi - lo), 0.0), 1.0)

        return max(
            ramp(lateral_std_m, CAUTION_LATERAL_M),
            ramp(along_std_m, CAUTION_ALONG_M),
            1.0 - self._lane_rate,
            0.5 * self._sensors_down,
            0.5 * ramp(self._no_fix_s, CAUTION_NO_FIX_S),
        )

    # ------------------------------------------------------------------ the vector
    def observe(self) -> np.ndarray:
        """Current observation (a new array)."""
        w, lay, out = self.world, self.layout, self._buf
        out.fill(0.0)
        cam, tracks, rate, (s_m, d_m, ref) = self._perceive()
        if not self._started:
            self.estimate = None
            return out.astype(np.float32)
        loc = self.localiser
        ex, ey, eyaw, ev = (float(v) for v in loc.x[:4])
        c, s = math.cos(eyaw), math.sin(eyaw)
        # Vehicles: the confirmed tracks, nearest first, within range.
        rows = [t for t in tracks if math.hypot(t.x[0], t.x[1]) < self.cfg.vehicle_range_m][: lay.vehicles]
        if rows:
            # A vehicle's heading is its velocity's; a slow one's is unknown from the track: the
            # road's (the ego heading on one road, the lane it stands in on a junction, where a
            # car waiting on a crossing arm stands across the ego's way).
            pos = np.array([t.x[:2] for t in rows])
            vel = np.array([t.x[2:4] for t in rows])
            speed = np.hypot(vel[:, 0], vel[:, 1])
            heading = np.arctan2(vel[:, 1], vel[:, 0])
            lane_heading = self._lane_heading((ex, ey, eyaw))
            slow = speed <= 1.0
            heading[slow] = 0.0
            if lane_heading is not None:
                lane = lane_heading(pos)
                heading[slow] = lane[slow]
                # On a junction layout a moving track within LANE_SNAP_RAD of its lane's direction (or
                # against it: oncoming) moves along the lane: the rest of its velocity is the
                # tracker's noise, and an oncoming car given 1 m/s towards the ego's lane makes the
                # planner brake for a conflict that is not there (the stop-start after a turn).
                lane = np.where(np.cos(heading - lane) < 0.0, lane + math.pi, lane)
                snap = ~slow & (np.abs(np.angle(np.exp(1j * (heading - lane)))) < LANE_SNAP_RAD)
                heading[snap] = lane[snap]
                vel[snap] = speed[snap, None] * np.stack([np.cos(lane[snap]), np.sin(lane[snap])], axis=1)
            table = np.concatenate(
                [
                    np.ones((len(rows), 1)),
                    pos / POSITION_SCALE_M,
                    vel / SPEED_SCALE_MPS,
                    np.cos(heading)[:, None],
                    np.sin(heading)[:, None],
                ],
                axis=1,
            )
            out[: len(rows) * len(VEHICLE_FEATURES)] = table.ravel()
        # Route features, from the estimated place on the map and the camera.
        road = w.road
        centre = min(self._fwd, key=lambda x: abs(x - d_m))
        heading_error = (eyaw - ref + math.pi) % (2 * math.pi) - math.pi
        # The next line and its light: the camera's readings where it sees them, held and dead-reckoned
        # at the line itself, where the net cannot see the heads (SignalTracker).
        tangent = np.array([math.cos(ref), math.sin(ref)])
        along_std = math.sqrt(max(float(tangent @ loc.P[:2, :2] @ tangent), 0.0))
        # The map says where the lines are: a line the camera reads where the map has none (beyond
        # LINE_MATCH_SIGMA of the two errors from the next one) is the net's mistake. The net, never
        # trained on the on-ramp, read give-way lines 8-25 m ahead all along it.
        next_s = min((ls for ls in self._lines if ls > s_m - 0.5), default=math.inf)
        next_m = next_s - s_m
        read_m = cam.get("stop_distance_m", math.inf)
        tol = LINE_MATCH_SIGMA * math.hypot(along_std, self.signal.cfg.reading_std_m)
        read = self._light_read if abs(read_m - next_m) <= tol else "none"
        light, stop_m = self.signal.step(w.cfg.control_period_s, ev, read, read_m)
        # A give-way line's place and kind are the map's, like the lanes (only a signal's state needs
        # the camera): the net does not read the ramp's give-way line at all.
        if next_m <= STOP_SCALE_M and next_s in self._give_way:
            light, stop_m = "yield", next_m
        if not math.isfinite(stop_m):
            stop_m = STOP_SCALE_M
        done = (s_m - w.start_s_m) / self.scenario.route_length_m
        r = lay.vehicles * len(VEHICLE_FEATURES)
        out[r : r + len(ROUTE_FEATURES)] = (
            ev / SPEED_SCALE_MPS,
            rate,
            self.scenario.speed_limit_at(s_m) / SPEED_SCALE_MPS,
            self.scenario.speed_limit_at(s_m + LIMIT_LOOKAHEAD_M) / SPEED_SCALE_MPS,
            (d_m - centre) / road.lane_width_m,
            heading_error / math.pi,
            sum(1 for x in self._fwd if x > centre + 0.1) / 3.0,
            sum(1 for x in self._fwd if x < centre - 0.1) / 3.0,
            road.lane_width_m / 5.0,
            w.estimate_friction(),
            min(max(stop_m, 0.0) / STOP_SCALE_M, 1.0),
            1.0 if light in ("red", "amber") else 0.0,
            1.0 if light == "yield" else 0.0,
            1.0 - done,
        )
        pts, _ = road.centreline.to_world(s_m + self._ahead, np.full(len(self._ahead), centre))
        dx, dy = pts[:, 0] - ex, pts[:, 1] - ey
        p = r + len(ROUTE_FEATURES)
        out[p::2] = (c * dx + s * dy) / lay.waypoint_scale_m
        out[p + 1 :: 2] = (-s * dx + c * dy) / lay.waypoint_scale_m
        np.minimum(np.maximum(out, -1.0, out=out), 1.0, out=out)
        world_tracks = np.array(
            [
                [t.id, ex + c * t.x[0] - s * t.x[1], ey + s * t.x[0] + c * t.x[1], c * t.x[2] - s * t.x[3], s * t.x[2] + c * t.x[3]]
                for t in tracks
            ]
        ).reshape(-1, 5)
        ego_tracks = np.array([[t.id, *t.x] for t in tracks]).reshape(-1, 5)
        normal = np.array([-math.sin(ref), math.cos(ref)])
        lateral_std = math.sqrt(max(float(normal @ loc.P[:2, :2] @ normal), 0.0))
        self.estimate = Estimate(
            loc.x[:4].copy(),
            loc.P[:4, :4].copy(),
            loc.pose_std(),
            world_tracks,
            ego_tracks,
            self._cam_last,
            self._gnss,
            caution=self.caution(lateral_std, along_std),
            lateral_std_m=lateral_std,
            along_std_m=along_std,
            lane_rate=self._lane_rate,
        )
        return out.astype(np.float32)


__all__ = ["NEEDED", "Estimate", "PerceivedObservation", "check_sensors"]
