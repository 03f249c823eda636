"""The simulated world.

One PyBullet ``BulletClient`` (DIRECT) holding the road, the ego car and traffic, stepped at a
fixed physics rate under a slower control period.

Several worlds in one process never see each other: every PyBullet call goes through this
world's own client. ``reset(rng)`` re-places the bodies created at construction (no body is
created or removed after ``__init__``) and restores the physics state saved right after the build,
so an episode depends only on its seed and actions, not on the episodes before it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drive_sim._bullet import connect_direct, pb, shared_args, static_body
from drive_sim.config import require
from drive_sim.network_traffic import EgoOnGraph, NetworkTraffic
from drive_sim.road import NETWORK_LAYOUTS, LaneGraph, Road, RoadConfig, ego_route, make_network, make_road
from drive_sim.scenery import LAMP_DARK, LAMP_LIT, LAMP_OF_STATE, Scenery, build_network_scenery, build_scenery
from drive_sim.sensors import (
    SEG_CLASSES,
    SENSOR_NAMES,
    Camera,
    CameraConfig,
    GnssBias,
    Lidar,
    LidarConfig,
    Radar,
    SensorReadings,
    SensorsConfig,
    active_fault,
)
from drive_sim.traffic import VEHICLE_LENGTH_M, VEHICLE_WIDTH_M, Traffic, TrafficConfig
from drive_sim.types import VEHICLE_STATE_FIELDS, CameraFrame, Control, LidarReading, VehicleState
from drive_sim.vehicle import Vehicle, VehicleConfig
from drive_sim.weather import Conditions, Weather, WeatherConfig, camera_effects, headlight_pattern, lidar_effects

_TRAFFIC_COLOURS = (
    (0.15, 0.35, 0.8, 1.0),
    (0.9, 0.9, 0.88, 1.0),
    (0.1, 0.1, 0.12, 1.0),
    (0.55, 0.58, 0.6, 1.0),
    (0.2, 0.55, 0.3, 1.0),
    (0.95, 0.75, 0.1, 1.0),
)


@dataclass(frozen=True)
class EgoStartConfig:
    """Where and how fast the ego car starts.

    Attributes:
        s_m: arc length of the start [m] (on a junction layout, along the route).
        s_jitter_m: the start moves forward by up to this much, drawn per episode [m].
        lane: start lane index, or -1 for a random forward lane.
        speed_min_mps, speed_max_mps: range of the initial speed [m/s].
        route: on a junction layout, the ego car's route as "entry-exit" arm names (e.g.
            "south-west" at the intersection, "ramp-main" at the merge); empty for the layout's default.
    """

    s_m: float = 100.0
    s_jitter_m: float = 20.0
    lane: int = -1
    speed_min_mps: float = 20.0
    speed_max_mps: float = 25.0
    route: str = ""

    def __post_init__(self) -> None:
        require(self.s_m >= 10.0, "ego.s_m", f"must be at least 10 m, got {self.s_m}")
        require(self.s_jitter_m >= 0.0, "ego.s_jitter_m", f"must be non-negative, got {self.s_jitter_m}")
        require(0.0 <= self.speed_min_mps <= self.speed_max_mps, "ego.speed_min_mps", "must be in [0, speed_max_mps]")


@dataclass(frozen=True)
class WorldConfig:
    """Everything the world simulates.

    Attributes:
        road: layout.
        vehicle: ego powertrain and steering.
        traffic: other vehicles.
        ego: start placement.
        lidar: lidar sensor.
        camera: ego camera.
        friction: tyre-road friction coefficient at the start (dry 0.9, wet 0.6, snow 0.35, ice 0.15).
        weather: fog, night and rain at the start, and the schedule that changes conditions.
        sensors: radar, GNSS, IMU, odometry, friction estimator and scheduled sensor faults.
        physics_dt_s: physics step [s]. 0.05 s with 50 solver iterations matches a 0.005 s
            reference in braking distance, 0-100 km/h time and steady cornering yaw rate (within
            1-5 %, see docs/vehicle.md) at a third of the cost of 0.02 s with 10 iterations,
            whose friction solve under-steers by 10 %.
        control_period_s: period at which controls change and sensors read [s]; a whole
            multiple of ``physics_dt_s``.
        solver_iterations: Bullet constraint-solver iterations per physics step.
    """

    road: RoadConfig = field(default_factory=RoadConfig)
    vehicle: VehicleConfig = field(default_factory=VehicleConfig)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    ego: EgoStartConfig = field(default_factory=EgoStartConfig)
    lidar: LidarConfig = field(default_factory=LidarConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    friction: float = 0.9
    weather: WeatherConfig = field(default_factory=WeatherConfig)
    sensors: SensorsConfig = field(default_factory=SensorsConfig)
    physics_dt_s: float = 0.05
    control_period_s: float = 0.1
    solver_iterations: int = 50

    def __post_init__(self) -> None:
        require(0.0 < self.friction <= 2.0, "friction", f"must be in (0, 2], got {self.friction}")
        require(0.001 <= self.physics_dt_s <= 0.05, "physics_dt_s", f"must be in [0.001, 0.05], got {self.physics_dt_s}")
        ratio = self.control_period_s / self.physics_dt_s
        require(
            self.control_period_s >= self.physics_dt_s and abs(ratio - round(ratio)) < 1e-6,
            "control_period_s",
            f"must be a whole multiple of physics_dt_s ({self.physics_dt_s}), got {self.control_period_s}",
        )
        require(1 <= self.solver_iterations <= 200, "solver_iterations", f"must be in [1, 200], got {self.solver_iterations}")
        forward_lanes = self.road.lanes if self.road.layout == "highway" else 1
        require(-1 <= self.ego.lane < forward_lanes, "ego.lane", f"must be -1 (random) or a forward lane index 0..{forward_lanes - 1}")
        if self.road.layout in NETWORK_LAYOUTS:
            self._check_network()
            return
        require(self.ego.route == "", "ego.route", f"routes exist on the junction layouts ({', '.join(NETWORK_LAYOUTS)}) only")
        t = self.traffic
        if t.density_per_km_per_lane > 0:
            window_km = (t.spawn_ahead_m + t.spawn_behind_m) / 1000.0
            count = round(t.density_per_km_per_lane * forward_lanes * window_km)
            object.__setattr__(self, "traffic", dataclasses.replace(t, count=count))  # derived field of a frozen config
            t = self.traffic
        # Spawning keeps min_spawn_gap_m between cars; beyond ~80 % of the window's capacity it fails.
        capacity = int(0.8 * forward_lanes * (t.spawn_ahead_m + t.spawn_behind_m) / (VEHICLE_LENGTH_M + t.min_spawn_gap_m))
        require(
            t.count <= capacity,
            "traffic.density_per_km_per_lane" if t.density_per_km_per_lane > 0 else "traffic.count",
            f"{t.count} vehicles do not fit {forward_lanes} lane(s) x {t.spawn_behind_m + t.spawn_ahead_m:.0f} m "
            f"with {t.min_spawn_gap_m} m gaps; at most {capacity} (or widen traffic.spawn_ahead_m / spawn_behind_m)",
        )

    def _check_network(self) -> None:
        """Route name and traffic count on a junction layout (its lane graph sets the capacity)."""
        net = make_network(self.road)
        assert net is not None
        ego_route(net, self.ego.route)
        t = self.traffic
        km = net.total_length_m() / 1000.0
        if t.density_per_km_per_lane > 0:
            object.__setattr__(self, "traffic", dataclasses.replace(t, count=round(t.density_per_km_per_lane * km)))
            t = self.traffic
        capacity = int(0.5 * km * 1000.0 / (VEHICLE_LENGTH_M + t.min_spawn_gap_m))
        require(
            t.count <= capacity,
            "traffic.density_per_km_per_lane" if t.density_per_km_per_lane > 0 else "traffic.count",
            f"{t.count} vehicles do not fit the {self.road.layout} layout's {km:.2f} lane-km "
            f"with {t.min_spawn_gap_m} m gaps; at most {capacity}",
        )

    @property
    def substeps(self) -> int:
        """Physics steps per control period."""
        return round(self.control_period_s / self.physics_dt_s)


@dataclass(frozen=True)
class EgoFrenet:
    """The ego car relative to the road.

    Arc length and lateral offset of its centre [m], heading error against the road [rad], lane
    index, and whether it left the road.
    """

    s_m: float
    d_m: float
    heading_error_rad: float
    lane: int
    off_road: bool


class World:
    """One simulated driving world.

    Args:
        cfg: the world's configuration.
    """

    GROUP_SEEN = 1
    GROUP_EGO = 2
    GROUP_GROUND = 4

    def __init__(self, cfg: WorldConfig) -> None:
        self.cfg = cfg
        self.client: Any = connect_direct()
        c = self.client
        c.setGravity(0.0, 0.0, -9.81)
        c.setPhysicsEngineParameter(
            fixedTimeStep=cfg.physics_dt_s, numSolverIterations=cfg.solver_iterations, deterministicOverlappingPairs=1
        )
        #: the lane graph of a junction layout (None on the open roads)
        self.network: LaneGraph | None = make_network(cfg.road)
        self.road: Road = make_road(cfg.road, self.network, cfg.ego.route)
        self.ground_id: int = static_body(c, c.createCollisionShape(pb.GEOM_PLANE), -1)
        if self.network is not None:
            self.scenery: Scenery = build_network_scenery(c, self.network, cfg.road.lanes)
            self._ego_lanes = ego_route(self.network, cfg.ego.route)
            self._ego_route = self.network.route_index(self._ego_lanes)
            self._lines = self._route_lines(self.network, self._ego_lanes)
            self.traffic: Traffic | NetworkTraffic = NetworkTraffic(self.network, cfg.traffic, cfg.road.signals)
        else:
            self._lines = []
            self.scenery = build_scenery(c, self.road)
            self.traffic = Traffic(self.road, cfg.traffic)
        self.vehicle = Vehicle(c, cfg.vehicle)
        self.traffic_ids = self._create_traffic_bodies(cfg.traffic.count)
        self._parked_z = -50.0 - 5.0 * np.arange(cfg.traffic.count)  # where vehicles waiting to enter a junction layout wait
        self.lidar = Lidar(c, cfg.lidar, Vehicle.LENGTH_M / 2, Vehicle.WIDTH_M / 2)
        self.seg_lookup = self._segmentation_lookup()
        self.camera = Camera(c, cfg.camera, self.seg_lookup)
        self.friction = cfg.friction
        self.set_friction(cfg.friction)
        self.weather = Weather(cfg.weather, cfg.friction)
        sc = cfg.sensors
        self.radar = Radar(c, sc.radar, Vehicle.LENGTH_M / 2, cfg.lidar.height_m, Lidar.RAY_MASK) if sc.radar.enabled else None
        self._gnss_bias = GnssBias(sc.gnss)
        self._gnss_every = max(1, round(1.0 / (sc.gnss.rate_hz * cfg.control_period_s)))
        self._gnss_fix = np.zeros(2)
        self._imu_bias = np.zeros(3)
        self._friction_bias = 0.0
        self._last: dict[str, object] = {}
        self._headlight = headlight_pattern(cfg.camera.height, cfg.camera.width, cfg.camera.fov_deg, cfg.camera.pitch_deg)
        self._traffic_set = frozenset(self.traffic_ids)
        self._barrier_set = frozenset(self.scenery.barrier)
        # Collision groups. Group 1: what the lidar sees (traffic, barriers); 2: the ego car;
        # 4: the ground. Lidar rays have group 1 and mask 1, so they skip the ego car and the
        # ground; the seen bodies' mask holds group 1 so rays can hit them, and group 2 so the
        # ego car can. (Bullet puts mass-0 bodies in its "static" group by default.)
        for link in range(-1, c.getNumJoints(self.vehicle.body_id)):
            c.setCollisionFilterGroupMask(self.vehicle.body_id, link, self.GROUP_EGO, self.GROUP_SEEN | self.GROUP_GROUND)
        c.setCollisionFilterGroupMask(self.ground_id, -1, self.GROUP_GROUND, self.GROUP_EGO)
        for body in (*self.traffic_ids, *self.scenery.barrier):
            c.setCollisionFilterGroupMask(body, -1, self.GROUP_SEEN, self.GROUP_EGO | self.GROUP_SEEN)
        cid = c._client
        self._step_physics = functools.partial(pb.stepSimulation, physicsClientId=cid)
        self._reset_pose = functools.partial(pb.resetBasePositionAndOrientation, physicsClientId=cid)
        self._contacts = functools.partial(pb.getContactPoints, physicsClientId=cid)
        self._initial_state = c.saveState()
        self.rng: np.random.Generator = np.random.default_rng(0)
        #: Draws the sensors' noise (lidar, camera, radar, GNSS, IMU, odometry, friction estimate). ``reset``
        #: makes it the episode's generator; an observation that reads many sensors (``perceived``) gives
        #: it a stream of its own after the reset, so that its readings leave the traffic's draws alone.
        self.sensor_rng: np.random.Generator = self.rng
        self.time_s = 0.0
        self.steps = 0
        self.collided_with: str | None = None
        self._ego: VehicleState | None = None
        self._frenet: EgoFrenet | None = None
        self.start_s_m = 0.0
        self._seg_hint: int | None = None
        self._ego_lane = -1  # the ego car's lane in a junction's lane graph (-1: none / open road)
        self._lamps_shown: tuple[int, ...] | None = None  # the signal states the lamps show

    # ------------------------------------------------------------------ construction helpers
    def _create_traffic_bodies(self, n: int) -> list[int]:
        c = self.client
        half = shared_args([VEHICLE_LENGTH_M / 2, VEHICLE_WIDTH_M / 2, 0.75])  # PyBullet keeps what it is given
        col = c.createCollisionShape(pb.GEOM_BOX, halfExtents=half)
        ids = []
        for i in range(n):
            colour = _TRAFFIC_COLOURS[i % len(_TRAFFIC_COLOURS)]
            vis = c.createVisualShapeArray(
                shapeTypes=shared_args([pb.GEOM_BOX, pb.GEOM_BOX]),
                halfExtents=shared_args([[VEHICLE_LENGTH_M / 2, VEHICLE_WIDTH_M / 2, 0.4], [1.1, 0.8, 0.3]]),
                visualFramePositions=shared_args([[0.0, 0.0, -0.3], [-0.3, 0.0, 0.4]]),
                rgbaColors=shared_args([list(colour), [0.15, 0.2, 0.3, 1.0]]),
            )
            # Parked far below the ground until reset places them.
            ids.append(static_body(c, col, vis, (0.0, 0.0, -50.0 - 5 * i)))
        return ids

    def _segmentation_lookup(self) -> np.ndarray:
        lookup = np.zeros(self.client.getNumBodies() + 1, dtype=np.uint8)
        lookup[self.ground_id] = SEG_CLASSES["ground"]
        for name in ("road", "ground", "marking", "barrier", "signal"):
            for b in getattr(self.scenery, name):
                lookup[b] = SEG_CLASSES[name]
        for head in self.scenery.heads:
            lookup[list(head.lamps)] = SEG_CLASSES["signal"]
        lookup[self.vehicle.body_id] = SEG_CLASSES["ego"]
        for b in self.traffic_ids:
            lookup[b] = SEG_CLASSES["vehicle"]
        return lookup

    # ------------------------------------------------------------------ conditions
    def set_friction(self, friction: float) -> None:
        """Set the tyre-road friction coefficient (applies from the next physics step)."""
        require(0.0 < friction <= 2.0, "friction", f"must be in (0, 2], got {friction}")
        self.friction = float(friction)
        self.client.changeDynamics(self.ground_id, -1, lateralFriction=self.friction)

    # ------------------------------------------------------------------ episode
    def reset(self, rng: np.random.Generator) -> None:
        """Start a new episode: ego and traffic re-placed from ``rng``; no bodies are created."""
        self.client.restoreState(self._initial_state)
        self.set_friction(self.weather.reset().friction)
        self.rng = rng
        self.sensor_rng = rng
        cfg = self.cfg
        lanes = self.road.forward_lanes()
        lane = int(rng.choice(lanes)) if cfg.ego.lane < 0 else cfg.ego.lane
        s0 = cfg.ego.s_m + float(rng.uniform(0.0, cfg.ego.s_jitter_m))
        speed = float(rng.uniform(cfg.ego.speed_min_mps, cfg.ego.speed_max_mps))
        d0 = self.road.lane_offsets_m[lane]
        xy, heading = self.road.centreline.to_world(np.array([s0]), np.array([d0]))
        self.vehicle.place(float(xy[0, 0]), float(xy[0, 1]), float(heading[0]), speed)
        self._ego_lane = -1
        if isinstance(self.traffic, NetworkTraffic):
            on_graph = self._ego_on_graph(self.vehicle.read_state())
            self._ego_lane = on_graph.lane
            self.traffic.reset(rng, on_graph)
        else:
            self.traffic.reset(rng, s0, d0)
        self.place_traffic()
        self.time_s = 0.0
        self.steps = 0
        self.collided_with = None
        self.start_s_m = s0
        self._seg_hint = None
        self._lamps_shown = None
        self._show_signals()
        self._refresh()
        self._prev_ego = self.ego
        sc = cfg.sensors
        self._gnss_bias.reset(rng)
        self._imu_bias = rng.normal(0.0, [sc.imu.accel_bias_std_mps2, sc.imu.accel_bias_std_mps2, sc.imu.gyro_bias_std_rps])
        self._friction_bias = float(rng.normal(0.0, sc.friction_estimator.bias_std))
        self._last = {}

    def step(self, control: Control) -> None:
        """Advance one control period.

        Traffic moves first (from the ego state at the start of the period) and its bodies are
        placed before the physics, so the ego car collides with, and after the step the lidar
        sees, the bodies exactly where the traffic model has them. (PyBullet refreshes the
        broad-phase boxes of moved static bodies only in ``stepSimulation``.)
        """
        ego_on_road = self.begin_period()
        if ego_on_road is not None:
            self.traffic.step(self.cfg.control_period_s, *ego_on_road)
        self.end_period(control)

    def begin_period(self) -> tuple[float, float, float] | None:
        """The first part of ``step``: the weather and the traffic window.

        Returns the ego car's (arc length, lateral offset, speed along the road) for an open
        road's ``Traffic.step``, which the caller makes (the batched vector env steps many worlds'
        traffic in one call), or None where the lane-graph traffic has stepped here already.
        ``end_period`` finishes the period.
        """
        ego, fr = self.ego, self.frenet
        self._prev_ego = ego
        cond = self.weather.update(self.time_s, fr.s_m - self.start_s_m)
        if cond.friction != self.friction:
            self.set_friction(cond.friction)
        if isinstance(self.traffic, NetworkTraffic):
            on_graph = self._ego_on_graph(ego)
            self._ego_lane = on_graph.lane
            if self.steps % 5 == 0:  # entries are checked twice a second
                self.traffic.recycle(self.rng, on_graph)
            self.traffic.step(self.cfg.control_period_s, on_graph)
            self._show_signals()
            return None
        if self.steps % 5 == 0:  # vehicles leave the window slowly: checking twice a second is enough
            self.traffic.recycle(self.rng, fr.s_m)
        return fr.s_m, fr.d_m, ego.speed_mps * math.cos(fr.heading_error_rad)

    def end_period(self, control: Control) -> None:
        """The rest of ``step``, after the traffic moved: its bodies placed, the physics, the collision check."""
        self._place_traffic()
        dt = self.cfg.physics_dt_s
        self.vehicle.begin_period(control, self.ego)
        for _ in range(self.cfg.substeps):
            self.vehicle.substep(dt)
            self._step_physics()
        self.steps += 1
        # Counted in steps, not summed, so scheduled times (faults, weather) land exactly.
        self.time_s = round(self.steps * self.cfg.control_period_s, 9)
        self._check_collision()
        self._refresh()

    def place_traffic(self) -> None:
        """Move the traffic bodies to the traffic model's state now (after editing it by hand)."""
        self._place_traffic()
        self.client.performCollisionDetection()

    def show_state(self, ego: VehicleState, traffic_xy: np.ndarray, traffic_yaw: np.ndarray, traffic_active: np.ndarray | None) -> None:
        """Put the ego car and the traffic bodies where a recorded state has them (episode playback).

        For views only: nothing is simulated, and ``ego``, ``frenet`` and ``traffic_state`` report
        the recorded state (traffic speeds are not restored).
        """
        self.vehicle.show(ego)
        active = np.ones(len(traffic_xy), bool) if traffic_active is None else np.asarray(traffic_active, bool)
        half = 0.5 * np.asarray(traffic_yaw, np.float64)
        z = np.where(active, 0.75, self._parked_z[: len(active)]).tolist()
        for body, (x, y), zz, qz, qw in zip(
            self.traffic_ids, np.asarray(traffic_xy).tolist(), z, np.sin(half).tolist(), np.cos(half).tolist(), strict=True
        ):
            self._reset_pose(body, (x, y, zz), (0.0, 0.0, qz, qw))
        self._refresh(ego)

    def _show_signals(self) -> None:
        """Light each head's lamp for its group's state (only the lamps whose state changed)."""
        heads = self.scenery.heads
        if not heads:
            return
        assert isinstance(self.traffic, NetworkTraffic)
        states = tuple(int(x) for x in self.traffic.signal_states())
        shown = self._lamps_shown
        if shown == states:
            return
        for head in heads:
            state = states[head.group]
            if shown is not None and shown[head.group] == state:
                continue
            lit = LAMP_OF_STATE[state]
            for i, body in enumerate(head.lamps):
                self.client.changeVisualShape(body, -1, rgbaColor=list(LAMP_LIT[i] if i == lit else LAMP_DARK[i]))
        self._lamps_shown = states

    def signal_ahead(self) -> str:
        """The signal at the end of the ego car's lane: "green", "amber", "red", or "" where none."""
        t = self.traffic
        if not isinstance(t, NetworkTraffic) or self._ego_lane < 0 or self.network is None:
            return ""
        group = int(self.network.signal_group[self._ego_lane])
        return "" if group < 0 else ("green", "amber", "red")[int(t.signal_states()[group])]

    @staticmethod
    def _route_lines(network: LaneGraph, lanes: tuple[int, ...]) -> list[tuple[float, int, bool]]:
        """(arc length on the ego road, signal group or -1, give-way) of each line ending a route lane."""
        out, acc = [], 0.0
        for lane in lanes:
            acc += network.lanes[lane].length_m
            group, gives_way = int(network.signal_group[lane]), bool(network.yield_m[lane] > 0)
            if group >= 0 or gives_way:
                out.append((acc, group, gives_way))
        return out

    @property
    def route_lines_s(self) -> tuple[float, ...]:
        """Arc lengths on the ego road of the route's stop and give-way lines (the map's, no state); () on open roads."""
        return tuple(line_s for line_s, _, _ in self._lines)

    @property
    def route_give_way_s(self) -> tuple[float, ...]:
        """Arc lengths on the ego road of the route's give-way lines (those without a signal); () on open roads."""
        return tuple(line_s for line_s, group, gives_way in self._lines if group < 0 and gives_way)

    def stop_line_ahead(self) -> tuple[str, float]:
        """The next stop or give-way line on the ego car's route and its distance along the road.

        Returns:
            (kind, distance [m]): kind is "green", "amber" or "red" for a signal, "yield" for a
            give-way line, "" (distance inf) when no line lies ahead.
        """
        s = self.frenet.s_m
        for line_s, group, gives_way in self._lines:
            if line_s > s - 0.5:
                if group >= 0:
                    assert isinstance(self.traffic, NetworkTraffic)
                    return ("green", "amber", "red")[int(self.traffic.signal_states()[group])], line_s - s
                if gives_way:
                    return "yield", line_s - s
        return "", math.inf

    def traffic_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions (N, 2), headings (N,) and speeds (N,) of the traffic vehicles on the road now."""
        t = self.traffic
        if t.count == 0:
            return np.zeros((0, 2)), np.zeros(0), np.zeros(0)
        xy, yaw = t.poses()
        on = np.asarray(t.active, dtype=bool)
        return xy[on], yaw[on], np.asarray(t.v, dtype=np.float64)[on]

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The ego state and every traffic vehicle now, as new arrays (what an episode log keeps per step; ``show_state`` poses it back).

        Keys: ``ego`` (``VEHICLE_STATE_FIELDS`` in order), ``traffic_xy`` (N, 2), ``traffic_yaw``,
        ``traffic_v`` and ``traffic_active`` (N,), parked vehicles included.
        """
        e, t = self.ego, self.traffic
        out = {"ego": np.array([float(getattr(e, k)) for k in VEHICLE_STATE_FIELDS])}
        if t.count:
            xy, yaw = t.poses()
            out.update(
                traffic_xy=np.array(xy, np.float64),
                traffic_yaw=np.array(yaw, np.float64),
                traffic_v=np.array(t.v, np.float64),
                traffic_active=np.array(t.active, bool),
            )
        else:
            out.update(traffic_xy=np.zeros((0, 2)), traffic_yaw=np.zeros(0), traffic_v=np.zeros(0), traffic_active=np.zeros(0, bool))
        return out

    def place_ego(self, x_m: float, y_m: float, yaw_rad: float, speed_mps: float) -> None:
        """Put the ego car at a pose with a forward speed (tests, scripted manoeuvres)."""
        self.vehicle.place(x_m, y_m, yaw_rad, speed_mps)
        self._refresh()

    def _ego_on_graph(self, ego: VehicleState) -> EgoOnGraph:
        """The ego car as lane-graph traffic sees it."""
        assert self.network is not None
        lane, s, _ = self.network.locate(ego.x_m, ego.y_m, ego.yaw_rad, self._ego_lanes)
        return EgoOnGraph(lane, s, self._ego_route, ego.x_m, ego.y_m, ego.yaw_rad, ego.speed_mps)

    def _refresh(self, ego: VehicleState | None = None) -> None:
        ego = self.vehicle.read_state() if ego is None else ego
        s, d, ref, self._seg_hint = self.road.centreline.locate(ego.x_m, ego.y_m, self._seg_hint)
        he = (ego.yaw_rad - ref + math.pi) % (2 * math.pi) - math.pi
        if self.network is not None:
            # Any lane of the junction is road: off road means beyond every lane's edge plus the shoulder.
            off = self.network.distance_to_lanes(ego.x_m, ego.y_m) > self.road.lane_width_m / 2 + self.road.shoulder_m
        else:
            off = d < self.road.edge_right_m or d > self.road.edge_left_m
        offsets = self.road.lane_offsets_m
        lane = min(range(len(offsets)), key=lambda i: abs(d - offsets[i]))
        self._ego = ego
        self._frenet = EgoFrenet(s, d, he, lane, off)

    def _check_collision(self) -> None:
        if self.collided_with is not None:
            return
        for cp in self._contacts(bodyA=self.vehicle.body_id):
            other = cp[2]
            if other in self._traffic_set:
                self.collided_with = "vehicle"
                return
            if other in self._barrier_set:
                self.collided_with = "static"
                return

    def _place_traffic(self) -> None:
        t = self.traffic
        if t.count == 0:
            return
        xy, yaw = t.poses()
        half = 0.5 * yaw
        reset = self._reset_pose
        # Plain floats: indexing numpy scalars inside this loop cost as much as the PyBullet calls.
        z = np.where(t.active, 0.75, self._parked_z).tolist()
        for body, x, y, zz, qz, qw in zip(
            self.traffic_ids, xy[:, 0].tolist(), xy[:, 1].tolist(), z, np.sin(half).tolist(), np.cos(half).tolist(), strict=True
        ):
            reset(body, (x, y, zz), (0.0, 0.0, qz, qw))

    # ------------------------------------------------------------------ readings
    @property
    def ego(self) -> VehicleState:
        """Ego state at the end of the last reset/step."""
        assert self._ego is not None, "call reset() before reading the world"
        return self._ego

    @property
    def frenet(self) -> EgoFrenet:
        """Ego position relative to the road at the end of the last reset/step."""
        assert self._frenet is not None, "call reset() before reading the world"
        return self._frenet

    def read_lidar(self) -> LidarReading:
        """One lidar sweep from the ego pose, through weather and the fault schedule."""
        cfg = self.lidar.cfg

        def missing() -> LidarReading:
            n = cfg.beams
            return LidarReading(np.full(n, cfg.range_m, np.float32), np.full(n, -1, np.int32), self.lidar.angles_rad, valid=False)

        def noisy(r: LidarReading, std: float) -> LidarReading:
            ranges = np.clip(r.ranges_m + self.sensor_rng.normal(0.0, std, len(r.ranges_m)), 0.0, cfg.range_m)
            return LidarReading(ranges.astype(np.float32), r.hit_ids, r.angles_rad)

        return self._with_fault("lidar", self._sweep, missing, noisy)

    def _sweep(self) -> LidarReading:
        e = self.ego
        reading = self.lidar.read(e.x_m, e.y_m, e.yaw_rad, self.sensor_rng)
        cond = self.weather.current
        if cond.foggy or cond.rain > 0:
            cfg = self.lidar.cfg
            ranges, kept = lidar_effects(reading.ranges_m, reading.hit_ids >= 0, cfg.range_m, cfg.noise_std_m, cond, self.sensor_rng)
            reading = LidarReading(ranges, np.where(kept, reading.hit_ids, -1).astype(np.int32), reading.angles_rad)
        return reading

    def capture_camera(self) -> CameraFrame:
        """The ego camera image for the current pose, through weather and the fault schedule."""
        cc = self.cfg.camera

        def missing() -> CameraFrame:
            return CameraFrame(rgb=np.zeros((cc.height, cc.width, 3), np.uint8), valid=False)

        def noisy(f: CameraFrame, std: float) -> CameraFrame:
            rgb = np.clip(f.rgb + self.sensor_rng.normal(0.0, std, f.rgb.shape), 0, 255).astype(np.uint8)
            return CameraFrame(rgb, f.depth_m, f.segmentation)

        return self._with_fault("camera", self._render_camera, missing, noisy)

    def _render_camera(self) -> CameraFrame:
        cc = self.cfg.camera
        return self.render_camera(self.camera, self._headlight, self.sensor_rng, depth=cc.depth, segmentation=cc.segmentation)

    def render_camera(
        self, camera: Camera, headlight: np.ndarray, rng: np.random.Generator, *, depth: bool, segmentation: bool
    ) -> CameraFrame:
        """A frame of ``camera`` on the ego car now, through the weather (no sensor faults).

        The ego camera's reading uses it; so does dataset collection, with cameras of other sizes
        (``headlight`` is the beam pattern at the camera's size, ``rng`` draws the rain streaks).
        Depth and segmentation are the renderer's, untouched by the weather.
        """
        e = self.ego
        cond = self.weather.current
        effects = cond.foggy or cond.night > 0 or cond.rain > 0
        # Lit signal lamps shine at night: their pixels (found from the body ids) are not darkened.
        glow = cond.night > 0 and bool(self.scenery.heads)
        rgb, depth_m, body = camera.render(e.x_m, e.y_m, e.yaw_rad, depth=depth or effects, bodies=segmentation or glow)
        if effects:
            assert depth_m is not None
            lit = np.isin(body, self._lit_lamps()) if glow and body is not None else None
            rgb = camera_effects(rgb, depth_m, cond, headlight, rng, glow=lit)
        return CameraFrame(
            rgb=rgb,
            depth_m=depth_m if depth else None,
            segmentation=camera.classes(body) if segmentation and body is not None else None,
        )

    def _lit_lamps(self) -> list[int]:
        """Body ids of the signal lamps lit now."""
        shown = self._lamps_shown or ()
        return [h.lamps[LAMP_OF_STATE[shown[h.group]]] for h in self.scenery.heads if shown]

    def _with_fault(self, name: str, read: Callable[[], Any], missing: Callable[[], Any], noisy: Callable[[Any, float], Any]) -> Any:
        """One reading of sensor ``name`` through its fault schedule.

        A dropout gives ``missing()`` (flagged invalid), a frozen sensor repeats its last reading
        (unflagged), a noise fault passes the reading through ``noisy(value, std)``.
        """
        fault = active_fault(self.cfg.sensors.faults, name, self.time_s)
        kind = fault.kind if fault is not None else None
        if kind == "dropout":
            return missing()
        if kind == "frozen" and name in self._last:
            return self._last[name]
        value = read()
        if fault is not None and kind == "noise":
            value = noisy(value, fault.noise_scale)
        self._last[name] = value
        return value

    def sensor_valid(self) -> dict[str, bool]:
        """Sensor name -> False while a dropout fault is active (known without reading)."""
        faults = self.cfg.sensors.faults
        if not faults:  # the common case, on the step path: no schedule to consult
            return dict.fromkeys(SENSOR_NAMES, True)
        t = self.time_s
        out = {}
        for name in SENSOR_NAMES:
            f = active_fault(faults, name, t)
            out[name] = not (f is not None and f.kind == "dropout")
        return out

    def estimate_friction(self) -> float:
        """The friction estimator's output: true coefficient + episode bias + noise, clipped to [0.05, 1.5]."""
        est = self.friction + self._friction_bias + self.sensor_rng.normal(0.0, self.cfg.sensors.friction_estimator.noise_std)
        return float(min(max(est, 0.05), 1.5))

    def read_sensors(self) -> SensorReadings:
        """Radar, GNSS, IMU and odometry for this control step, with noise and faults applied.

        Call at most once per control step: GNSS fixes and the drifting bias advance on fix steps.
        """
        sc, rng, e, dt = self.cfg.sensors, self.sensor_rng, self.ego, self.cfg.control_period_s

        def radar() -> tuple[np.ndarray, np.ndarray]:
            assert self.radar is not None
            ranges, ids = self.radar.cast(e.x_m, e.y_m, e.yaw_rad)
            rates = self._range_rates(ids, e)
            hit = ids >= 0
            ranges = np.where(hit, ranges + rng.normal(0.0, sc.radar.range_noise_std_m, len(ranges)), sc.radar.range_m)
            return ranges, np.where(hit, rates + rng.normal(0.0, sc.radar.rate_noise_std_mps, len(rates)), 0.0)

        def gnss() -> np.ndarray:
            if self.steps % self._gnss_every == 0 or "gnss" not in self._last:
                bias = self._gnss_bias.advance(dt * self._gnss_every, rng)
                self._gnss_fix = np.array([e.x_m, e.y_m]) + bias + rng.normal(0.0, sc.gnss.noise_std_m, 2)
            return self._gnss_fix.copy()

        def imu() -> np.ndarray:
            p = self._prev_ego
            ax = (e.vx_mps - p.vx_mps) / dt - e.vy_mps * e.yaw_rate_rps
            ay = (e.vy_mps - p.vy_mps) / dt + e.vx_mps * e.yaw_rate_rps
            noise = rng.normal(0.0, [sc.imu.accel_noise_std_mps2, sc.imu.accel_noise_std_mps2, sc.imu.gyro_noise_std_rps])
            return np.array([ax, ay, e.yaw_rate_rps]) + self._imu_bias + noise

        def odometry() -> float:
            return self.vehicle.wheel_speed_mps() + float(rng.normal(0.0, sc.odometry.noise_std_mps))

        readers = {"radar": (self.radar is not None, radar), "gnss": (sc.gnss.enabled, gnss), "imu": (sc.imu.enabled, imu)}
        readers["odometry"] = (sc.odometry.enabled, odometry)
        out = {
            name: self._with_fault(name, read, lambda: None, lambda v, std: _add_noise(v, std, rng))
            for name, (enabled, read) in readers.items()
            if enabled
        }
        radar = out.get("radar")
        return SensorReadings(
            radar_ranges_m=None if radar is None else radar[0],  # type: ignore[index]
            radar_range_rates_mps=None if radar is None else radar[1],  # type: ignore[index]
            gnss_xy_m=out.get("gnss"),  # type: ignore[arg-type]
            imu=out.get("imu"),  # type: ignore[arg-type]
            odometry_speed_mps=out.get("odometry"),  # type: ignore[arg-type]
            valid=self.sensor_valid(),
        )

    def _range_rates(self, ids: np.ndarray, e: VehicleState) -> np.ndarray:
        """Range rate [m/s] of each radar beam's hit (negative = closing); 0 for no hit.

        A vehicle moves at its speed along its body heading (``poses``, which turns a lane change
        into the heading): the same for road and lane-graph traffic.
        """
        c, s = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
        ego_v = np.array([c * e.vx_mps - s * e.vy_mps, s * e.vx_mps + c * e.vy_mps])
        rates = np.zeros(len(ids))
        assert self.radar is not None
        if not (ids >= 0).any():
            return rates
        index = {b: i for i, b in enumerate(self.traffic_ids)}
        t = self.traffic
        heading = t.poses()[1] if t.count else np.zeros(0)
        speed = np.asarray(t.v, dtype=np.float64) if t.count else np.zeros(0)
        for k, body in enumerate(ids.tolist()):
            if body < 0:
                continue
            target_v = np.zeros(2)
            if body in index:
                i = index[body]
                target_v = speed[i] * np.array([math.cos(heading[i]), math.sin(heading[i])])
            a = e.yaw_rad + float(self.radar.angles_rad[k])
            rates[k] = float(np.dot(target_v - ego_v, [math.cos(a), math.sin(a)]))
        return rates

    @property
    def conditions(self) -> Conditions:
        """The weather now."""
        return self.weather.current

    def num_bodies(self) -> int:
        """Number of PyBullet bodies in this world (constant after construction)."""
        return int(self.client.getNumBodies())

    def close(self) -> None:
        """Disconnect the physics client. Safe to call twice."""
        if getattr(self, "client", None) is not None:
            try:
                self.client.disconnect()
            except Exception:  # noqa: BLE001 - already disconnected
                pass
            self.client = None


def _add_noise(value: object, scale: float, rng: np.random.Generator) -> object:
    """``value`` (a float, an array or a tuple of arrays) plus Gaussian noise of std ``scale``."""
    if isinstance(value, tuple):
        return tuple(_add_noise(v, scale, rng) for v in value)
    if isinstance(value, np.ndarray):
        return value + rng.normal(0.0, scale, value.shape)
    return float(value) + float(rng.normal(0.0, scale))  # type: ignore[arg-type]
