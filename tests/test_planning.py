"""Route planning, the lattice planner and the controllers, without an environment."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest

from drive_sim.config import ConfigError
from drive_sim.planning.controllers import LATERAL, ControllerConfig, EgoPose, SpeedController
from drive_sim.planning.lattice import LatticePlanner, Obstacles, PlanRequest
from drive_sim.road import RoadConfig, make_network, make_road
from drive_sim.road.geometry import Centreline
from drive_sim.road.routing import RoutingGraph, road_routing_graph, routing_graph
from drive_sim.traffic import TrafficConfig
from drive_sim.world import EgoStartConfig, World, WorldConfig


def _line(*pts: tuple[float, float], step: float = 5.0) -> Centreline:
    out = [np.asarray(pts[0], float)]
    for a, b in itertools.pairwise(pts):
        a, b = np.asarray(a, float), np.asarray(b, float)
        n = max(int(np.hypot(*(b - a)) / step), 1)
        out += [a + (b - a) * k / n for k in range(1, n + 1)]
    return Centreline(np.array(out))


# ---------------------------------------------------------------------- routing
def test_route_on_a_small_lane_graph_is_the_shortest():
    # Lanes: 0 start, 1 short detour, 2 long detour, 3 goal; both detours join 0 to 3.
    lines = [
        _line((0, 0), (100, 0)),
        _line((100, 0), (150, 30), (200, 0)),
        _line((100, 0), (150, -120), (200, 0)),
        _line((200, 0), (300, 0)),
    ]
    g = RoutingGraph(lines, [(1, 2), (3,), (3,), ()], [(), (), (), ()], piece_m=30.0)
    start, goal = g.node_at(0, 0.0), g.node_at(3, 1e9)
    route = g.shortest_route(start, goal)
    assert route.lanes == (0, 1, 3)
    best = min(nx.path_weight(g.graph, p, "weight") for p in nx.all_simple_paths(g.graph, start, goal))
    first = g.pieces[start]
    assert route.length_m == pytest.approx(best + first.s1_m - first.s0_m)
    assert route.path.length_m == pytest.approx(sum(lines[i].length_m for i in route.lanes), rel=0.01)


def test_route_changes_lane_to_reach_a_goal_in_another_lane():
    road = make_road(RoadConfig(layout="highway", lanes=3, length_m=1000.0))
    g = road_routing_graph(road, piece_m=40.0, change_penalty_m=20.0)
    route = g.shortest_route(g.node_at(0, 0.0), g.node_at(2, 600.0))
    assert route.lane_changes == 2
    assert route.lanes == (0, 1, 2)
    # Staying in the lane is never dearer than changing: the same goal lane needs no change.
    assert g.shortest_route(g.node_at(1, 0.0), g.node_at(1, 600.0)).lane_changes == 0


@pytest.mark.parametrize("layout", ["merge", "intersection", "roundabout"])
def test_planned_routes_match_the_layouts_routes(layout):
    net = make_network(RoadConfig(layout=layout, lanes=2))
    g = routing_graph(net)
    for lanes in net.ego_routes.values():
        route = g.shortest_route(g.node_at(lanes[0], 0.0), g.node_at(lanes[-1], 1e9))
        assert route.lanes == lanes


def test_unreachable_goal_is_a_clear_error():
    lines = [_line((0, 0), (100, 0)), _line((0, 50), (100, 50))]
    g = RoutingGraph(lines, [(), ()], [(), ()])
    with pytest.raises(ConfigError, match="no route from lane 0 to lane 1"):
        g.shortest_route(g.node_at(0, 0.0), g.node_at(1, 50.0))


# ---------------------------------------------------------------------- lattice
PATH = _line((0.0, 0.0), (600.0, 0.0), step=2.0)


def _drive(obstacles: Obstacles, lanes=(0.0, 3.75), seconds: float = 12.0, stop_s=None):
    """Closed loop on the plan itself: replan every 0.1 s from the state the last plan reached."""
    planner = LatticePlanner()
    s, d, v, a, he = 20.0, 0.0, 20.0, 0.0, 0.0
    min_clear = math.inf
    for _ in range(int(seconds / 0.1)):
        req = PlanRequest(PATH, s, d, he, v, a, lanes, 30.0, 30.0, 0.9, 2.5, 6.0, obstacles, stop_s_m=stop_s)
        plan = planner.plan(req)
        assert plan.kind != "emergency"
        s, d, v, a = (float(np.interp(0.1, plan.t_s, x)) for x in (plan.s_m, plan.d_m, plan.v_mps, plan.a_mps2))
        s2, d2 = float(np.interp(0.2, plan.t_s, plan.s_m)), float(np.interp(0.2, plan.t_s, plan.d_m))
        he = math.atan2(d2 - d, s2 - s) if s2 - s > 1e-3 else 0.0
        for ox, oy in obstacles.xy:
            # bumper-to-bumper gap along the road for a car in the same lane
            if abs(d - oy) < 1.8:
                min_clear = min(min_clear, abs(ox - s) - 4.5)
    return s, d, v, min_clear


def test_lattice_changes_lane_around_a_stopped_vehicle_when_the_next_lane_is_free():
    stopped = Obstacles(np.array([[100.0, 0.0]]), np.zeros((1, 2)), np.zeros(1))
    s, d, v, clear = _drive(stopped)
    assert s > 150.0, "the car must get past the stopped vehicle"
    assert abs(d - 3.75) < 0.5, "it passes in the free left lane"
    assert v > 15.0
    assert clear > 0.0


def test_lattice_stops_behind_a_stopped_vehicle_when_the_next_lane_is_taken():
    blocked = Obstacles(np.array([[100.0, 0.0], [98.0, 3.75]]), np.zeros((2, 2)), np.zeros(2))
    s, d, v, clear = _drive(blocked)
    assert v < 0.2, "the car comes to a stop"
    assert abs(d) < 0.5, "in its own lane"
    assert 100.0 - 4.5 - 8.0 < s < 100.0 - 4.5, "close behind the stopped vehicle without touching it"
    assert clear > 0.5


def test_lattice_passes_a_parked_car_beside_its_lane_with_real_clearance():
    # Centres 2.6 m apart sideways: 0.8 m between the bodies. The footprint model must not
    # overstate the width so much that this reads as a collision (three circles per car did:
    # clearance 0.26 m < the 0.4 m margin, and the car stopped for good behind a junction).
    parked = Obstacles(np.array([[100.0, 2.6]]), np.zeros((1, 2)), np.zeros(1))
    s, d, v, _ = _drive(parked, lanes=(0.0,))
    assert s > 150.0 and v > 15.0 and abs(d) < 0.3


def test_lattice_stops_before_a_red_line():
    s, _, v, _ = _drive(Obstacles(), lanes=(0.0,), seconds=20.0, stop_s=120.0)
    assert v < 0.2
    assert 120.0 - 2.25 - 6.0 < s < 120.0 - 2.25


def _follow_a_braking_leader(lead_brake_mps2: float | None, lead_decel_mps2: float = 5.0) -> float:
    """Closed loop at 25 m/s behind a leader 40 m ahead at 17 m/s that brakes to a stop after 1 s; the smallest bumper gap."""
    planner = LatticePlanner()
    s, d, v, a, he = 20.0, 0.0, 25.0, 0.0, 0.0
    ls, lv = s + 40.0, 17.0
    min_gap = math.inf
    for k in range(150):
        obs = Obstacles(np.array([[ls, 0.0]]), np.array([[lv, 0.0]]), np.zeros(1))
        req = PlanRequest(PATH, s, d, he, v, a, (0.0,), 25.0, 25.0, 0.9, 2.5, 6.5, obs, lead_brake_mps2=lead_brake_mps2)
        plan = planner.plan(req)
        s, d, v, a = (float(np.interp(0.1, plan.t_s, x)) for x in (plan.s_m, plan.d_m, plan.v_mps, plan.a_mps2))
        if k >= 10:
            lv = max(lv - lead_decel_mps2 * 0.1, 0.0)
        ls += lv * 0.1
        min_gap = min(min_gap, ls - s - 4.5)
    return min_gap


def test_lattice_told_the_leader_may_brake_stops_behind_it_and_without_it_does_not():
    # The constant-velocity prediction is blind to a leader braking for a queue the car cannot see:
    # it runs into it. Told the leader may brake as hard as the car can (the perceived expert), the
    # car keeps the distance to stop behind it.
    assert _follow_a_braking_leader(None) < 0.0
    assert _follow_a_braking_leader(6.5) > 0.5
    from drive_sim.planning.lattice import rss_speed

    # From that speed, after the reaction time and braking at b, the car stops where the leader does.
    v = float(rss_speed(20.0, 10.0, 5.0, 6.0, 0.3))
    assert v * 0.3 + v * v / (2 * 5.0) == pytest.approx(20.0 + 10.0**2 / (2 * 6.0))


def test_lattice_slows_for_a_bend_beyond_its_horizon_on_ice():
    # A 60 m radius bend 250 m ahead: 25 m/s is far too fast for it on ice (mu 0.15), and the
    # car needs more than its 5 s horizon to slow down, so it must start braking now.
    ang = np.linspace(0.0, math.pi, 200)
    straight = np.stack([np.linspace(-270.0, 0.0, 136, endpoint=False), np.full(136, -60.0)], 1)
    bend = Centreline(np.concatenate([straight, np.stack([60 * np.sin(ang), -60 * np.cos(ang)], 1)]))
    planner = LatticePlanner()
    icy = planner.plan(PlanRequest(bend, 20.0, 0.0, 0.0, 25.0, 0.0, (0.0,), 25.0, 25.0, 0.15, 0.7, 1.0))
    dry = planner.plan(PlanRequest(bend, 20.0, 0.0, 0.0, 25.0, 0.0, (0.0,), 25.0, 25.0, 0.9, 2.5, 6.0))
    assert icy.kind != "emergency"
    assert icy.v_mps[-1] < 25.0 - 2.0, "on ice the car slows well before the bend"
    assert dry.v_mps[-1] > icy.v_mps[-1] + 2.0


# ---------------------------------------------------------------------- controllers
def _circle_run(lateral: str, radius: float = 50.0, speed: float = 15.0, seconds: float = 19.0) -> float:
    cfg = WorldConfig(
        road=RoadConfig(layout="highway", lanes=4, length_m=3000.0),
        traffic=TrafficConfig(count=0),
        ego=EgoStartConfig(s_m=50.0, s_jitter_m=0.0, lane=1, speed_min_mps=speed, speed_max_mps=speed),
        friction=0.9,
    )
    world = World(cfg)
    try:
        world.reset(np.random.default_rng(0))
        # Far off the road (the ground plane is endless), so no barrier is in the way.
        world.place_ego(0.0, -500.0, 0.0, speed)
        ang = np.linspace(-math.pi / 2, 1.5 * math.pi, 1200)
        cx, cy = 0.0, -500.0 + radius
        path = Centreline(np.stack([cx + radius * np.cos(ang), cy + radius * np.sin(ang)], 1))
        ctl = ControllerConfig(lateral=lateral)
        steer_ctl = LATERAL[lateral](ctl, cfg.vehicle)
        speed_ctl = SpeedController(ctl, cfg.vehicle)
        errors = []
        from drive_sim.types import Control

        while world.time_s < seconds:
            e = world.ego
            delta = steer_ctl.steer_rad(EgoPose(e.x_m, e.y_m, e.yaw_rad, e.vx_mps, e.yaw_rate_rps), path)
            throttle, brake, _ = speed_ctl.command(speed, 0.0, e.vx_mps, 0.9, cfg.control_period_s)
            world.step(Control(delta / cfg.vehicle.max_steer_rad, throttle, brake))
            errors.append(math.hypot(world.ego.x_m - cx, world.ego.y_m - cy) - radius)
        assert abs(world.ego.vx_mps - speed) < 1.0
        return float(np.sqrt(np.mean(np.square(errors))))
    finally:
        world.close()


def test_pure_pursuit_tracks_a_50m_circle_at_15mps():
    assert _circle_run("pure_pursuit") < 0.3


def test_stanley_tracks_a_50m_circle_at_15mps():
    assert _circle_run("stanley") < 0.3


def test_speed_controller_respects_the_grip():
    ctl = SpeedController(ControllerConfig(), WorldConfig().vehicle)
    decel_ice, accel_ice = ctl.accel_limits(20.0, 0.15)
    decel_dry, accel_dry = ctl.accel_limits(20.0, 0.9)
    assert decel_ice == pytest.approx(0.7 * 0.15 * 9.81)
    assert decel_dry > 4 * decel_ice and accel_dry > accel_ice
    _, brake, a = ctl.command(0.0, -10.0, 20.0, 0.15, 0.1)
    assert a == pytest.approx(-decel_ice)
    assert 0.0 < brake < 0.2, "light braking on ice: the wheels must not lock"
