"""Junction layouts: lane graphs, routes, and traffic through merges, intersections and roundabouts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drive_sim.config import ConfigError
from drive_sim.network_traffic import AMBER, GREEN, RED, EgoOnGraph, NetworkTraffic, footprint_overlaps
from drive_sim.road import RoadConfig, make_network
from drive_sim.scenarios import load_scenario
from drive_sim.traffic import VEHICLE_LENGTH_M, BehaviourMix, TrafficConfig
from drive_sim.world import EgoStartConfig, WorldConfig

JUNCTIONS = ("merge", "intersection", "roundabout")


def _traffic(layout: str, count: int) -> NetworkTraffic:
    rc = RoadConfig(layout=layout, lanes=2)
    graph = make_network(rc)
    assert graph is not None
    cfg = TrafficConfig(count=count, speed_min_mps=10.0, speed_max_mps=14.0, min_spawn_gap_m=8.0, mix=BehaviourMix(0.3, 0.4, 0.3))
    return NetworkTraffic(graph, cfg, rc.signals)


@pytest.mark.parametrize("layout", JUNCTIONS)
def test_routes_run_from_an_entry_to_an_exit_along_links(layout):
    graph = make_network(RoadConfig(layout=layout, lanes=2))
    assert graph is not None and graph.routes
    for route in graph.routes:
        assert route[0] in graph.entries and route[-1] in graph.exits
        for a, b in zip(route, route[1:], strict=False):
            assert b in graph.lanes[a].successors
            # Linked lanes meet: the end of one is the start of the next.
            assert np.hypot(*(graph.lanes[a].line.xy[-1] - graph.lanes[b].line.xy[0])) < 1e-6
    for name, route in graph.ego_routes.items():
        assert route in graph.routes, name
    # Every exit is reachable from every entry of another arm.
    assert {r[-1] for r in graph.routes} == set(graph.exits)


def test_layout_route_counts():
    assert len(make_network(RoadConfig(layout="intersection", lanes=2)).routes) == 12  # 4 arms x 3 turns
    assert len(make_network(RoadConfig(layout="roundabout", lanes=2)).routes) == 12
    merge = make_network(RoadConfig(layout="merge", lanes=3))
    assert set(merge.ego_routes) == {"main-main", "main1-main", "main2-main", "ramp-main"}


@pytest.mark.parametrize("layout", JUNCTIONS)
def test_locate_finds_the_lane_a_car_drives_in(layout):
    graph = make_network(RoadConfig(layout=layout, lanes=2))
    for i, lane in enumerate(graph.lanes):
        if lane.internal:
            continue
        s = 0.5 * lane.length_m
        xy, heading = graph.poses(np.array([i]), np.array([s]))
        found, s_found, dist = graph.locate(float(xy[0, 0]), float(xy[0, 1]), float(heading[0]))
        assert found == i and abs(s_found - s) <= 1.0 and dist < 0.6


@pytest.mark.parametrize("layout", JUNCTIONS)
def test_paved_area_holds_every_lane_and_patch_and_leaves_out_the_verge_and_island(layout):
    graph = make_network(RoadConfig(layout=layout, lanes=2))
    area = graph.paved(0.5)
    lanes = np.repeat(np.arange(len(graph.lanes)), 9)
    s = np.tile(np.linspace(0.05, 0.95, 9), len(graph.lanes)) * graph.length[lanes]
    xy, heading = graph.poses(lanes, s)
    normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
    # Centres and points 1.1 m across (a vehicle's side) are in on every lane; the inset is kept.
    assert area.contains(xy).all()
    assert area.contains(xy + 1.1 * normal).all() and area.contains(xy - 1.1 * normal).all()
    assert graph.paved(0.0).grid.sum() > area.grid.sum()
    # 6 m right of an entry lane (the verge beside the arm, beyond any other lane) is out.
    outer = [i for i, ln in enumerate(graph.lanes) if not ln.internal and (ln.arm or ln.name == "ramp")]
    pick = np.isin(lanes, outer) & (s > 20.0)
    off = xy[pick] - 6.0 * normal[pick]
    far = np.array([graph.distance_to_lanes(x, y) > graph.lane_width_m + 1.0 for x, y in off])
    assert far.any() and not area.contains(off[far]).any()
    for patch in graph.patches:
        if patch.hole is not None:  # the roundabout's island
            assert not area.contains(patch.hole.mean(axis=0, keepdims=True)).any()
    assert not area.contains(np.array([[1e5, 1e5], [-1e5, 0.0]])).any()  # beyond the raster


@pytest.mark.parametrize(("layout", "count"), [("intersection", 24), ("roundabout", 24), ("merge", 30)])
def test_traffic_only_ten_minutes_no_collision_and_every_exit_flows(layout, count):
    traffic = _traffic(layout, count)
    rng = np.random.default_rng(0)
    traffic.reset(rng)
    g = traffic.graph
    for step in range(6000):  # 10 simulated minutes at 0.1 s
        if step % 5 == 0:
            traffic.recycle(rng)
        traffic.step(0.1)
        xy, yaw = traffic.poses()
        on = np.flatnonzero(traffic.active)
        hits = footprint_overlaps(xy[on], yaw[on])
        assert not hits, (
            f"step {step}: vehicles {[(g.lanes[traffic.lane[on[a]]].name, g.lanes[traffic.lane[on[b]]].name) for a, b in hits]} overlap"
        )
        if g.signal_groups:
            states = traffic.signal_states()
            assert np.count_nonzero(states != RED) <= 1, "two approaches never have green or amber together"
            # Vehicles in the junction box all came from one approach.
            in_box = on[g.internal[traffic.lane[on]]]
            arms = {g.lanes[g.routes[traffic.route[i]][0]].arm for i in in_box}
            assert len(arms) <= 1, f"step {step}: box shared by {arms}"
    assert all(traffic.exited[e] > 0 for e in g.exits), {g.lanes[e].name: int(traffic.exited[e]) for e in g.exits}


def test_entering_vehicle_gives_way_to_the_ring_then_enters():
    traffic = _traffic("roundabout", 2)
    g = traffic.graph
    south_in = next(i for i, ln in enumerate(g.lanes) if ln.name == "south_in")
    route_s = next(r for r, route in enumerate(g.routes) if route[0] == south_in and g.lanes[route[-1]].name == "north_out")
    entry = g.routes[route_s][1]
    merge_lane = g.lanes[entry].successors[0]
    ring_prev = next(p for p in g.predecessors[merge_lane] if p != entry)
    ring_route = next(r for r, route in enumerate(g.routes) if ring_prev in route and merge_lane in route and entry not in route)
    traffic.reset(np.random.default_rng(0))
    traffic.active[:] = True
    # Vehicle 0 waits to enter, vehicle 1 circulates towards the entry.
    traffic.route[:] = [route_s, ring_route]
    traffic.k[:] = [1, list(g.routes[ring_route]).index(ring_prev)]
    traffic.lane[:] = [entry, ring_prev]
    traffic.s[:] = [g.length[entry] - 14.0, max(g.length[ring_prev] - 12.0, 0.0)]
    traffic.v[:] = [0.0, 7.0]
    traffic.v0[:] = [12.0, 12.0]
    traffic.committed[:] = False
    traffic._poses = None
    waited = entered_after = False
    for _ in range(200):
        traffic.step(0.1)
        if traffic.lane[1] == ring_prev and traffic.lane[0] == entry:
            assert not traffic.committed[0], "no gap while the ring car approaches"
            waited = True
        if traffic.lane[0] == merge_lane:
            entered_after = traffic.lane[1] != ring_prev
            break
    assert waited and entered_after


def test_signal_cycle_gives_each_approach_green_in_turn():
    traffic = _traffic("intersection", 0)
    seen_green = set()
    states_seen = set()
    for _ in range(1000):
        traffic.step(0.1)
        st = traffic.signal_states()
        states_seen |= set(st.tolist())
        seen_green |= set(np.flatnonzero(st == GREEN).tolist())
    assert seen_green == {0, 1, 2, 3} and {GREEN, AMBER, RED} <= states_seen


def test_traffic_stops_behind_a_stopped_ego_car():
    traffic = _traffic("intersection", 1)
    g = traffic.graph
    r = g.ego_routes["south-north"]
    route = g.route_index(r)
    traffic.reset(np.random.default_rng(1))
    traffic.active[:] = True
    traffic.route[0], traffic.k[0], traffic.lane[0], traffic.s[0], traffic.v[0], traffic.v0[0] = route, 0, r[0], 20.0, 12.0, 12.0
    traffic._poses = None
    xy, yaw = g.poses(np.array([r[0]]), np.array([100.0]))
    ego = EgoOnGraph(r[0], 100.0, route, float(xy[0, 0]), float(xy[0, 1]), float(yaw[0]), 0.0)
    for _ in range(300):
        traffic.step(0.1, ego)
    assert traffic.s[0] < 100.0 - VEHICLE_LENGTH_M and traffic.v[0] < 0.1


def test_bad_route_names_the_field_and_the_allowed_routes():
    with pytest.raises(ConfigError, match=r"ego\.route: 'north-north' is not a route of the intersection layout; allowed: .*south-west"):
        WorldConfig(
            road=RoadConfig(layout="intersection", lanes=2), traffic=TrafficConfig(count=0), ego=EgoStartConfig(route="north-north")
        )
    with pytest.raises(ConfigError, match=r"ego\.route: routes exist on the junction layouts"):
        WorldConfig(ego=EgoStartConfig(route="south-west"))
    with pytest.raises(ConfigError, match=r"road\.lanes: the roundabout layout has 2 lanes"):
        RoadConfig(layout="roundabout", lanes=3)


def test_speed_zones_set_the_limit_along_the_route():
    sc = load_scenario("roundabout")
    zone = sc.speed_zones[0]
    assert sc.speed_limit_at(zone.from_m - 1.0) == sc.speed_limit_mps
    assert sc.speed_limit_at(0.5 * (zone.from_m + zone.to_m)) == zone.limit_mps
    with pytest.raises(ConfigError, match=r"speed_zones\[1\]\.from_m"):
        type(sc).from_dict(
            {"speed_zones": [{"from_m": 0.0, "to_m": 100.0, "limit_mps": 10.0}, {"from_m": 50.0, "to_m": 200.0, "limit_mps": 10.0}]}
        )


def test_footprint_overlap_detects_touching_and_separated_cars():
    xy = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0], [20.0, 0.0]])
    yaw = np.array([0.0, 0.0, 0.0, math.pi / 2])
    assert footprint_overlaps(xy, yaw) == [(0, 1)]


def test_a_car_with_green_does_not_wait_at_a_merge_node_for_one_held_at_red():
    traffic = _traffic("intersection", 2)
    g = traffic.graph
    pairs = [
        (a, b)
        for a, ra in enumerate(g.routes)
        for b, rb in enumerate(g.routes)
        if ra[-1] == rb[-1] and ra[1] != rb[1] and 0 <= g.signal_group[ra[0]] != g.signal_group[rb[0]] >= 0
    ]
    assert pairs, "the intersection has two approaches that join the same exit"
    ra, rb = pairs[0]
    la, lb = g.routes[ra][0], g.routes[rb][0]
    traffic.reset(np.random.default_rng(0))
    traffic.active[:] = True
    traffic.route[:], traffic.k[:], traffic.lane[:] = [ra, rb], [0, 0], [la, lb]
    # A drives up to its green line; B stands at its red line, nearer to the shared node.
    traffic.s[:] = [g.length[la] - 40.0, g.length[lb] - 3.5]
    traffic.v[:], traffic.v0[:] = [10.0, 0.0], [12.0, 12.0]
    traffic.phase, traffic.stage, traffic.stage_t = int(g.signal_group[la]), GREEN, 0.0
    traffic._poses = None
    for _ in range(60):
        traffic.step(0.1)
    assert traffic.k[0] >= 1, "A crossed its green line"
    assert traffic.k[1] == 0 and traffic.v[1] < 0.1, "B still waits at red"


def test_main_road_car_brakes_gently_for_a_committed_merging_car_seen_early():
    traffic = _traffic("merge", 2)
    g = traffic.graph
    main = next(r for r, route in enumerate(g.routes) if len(route) == 2 and not g.yield_m[route[0]] >= 0)
    ramp = next(r for r, route in enumerate(g.routes) if g.yield_m[route[0]] >= 0)
    node = g.routes[ramp][1]
    assert node == g.routes[main][1]
    lm, lr = g.routes[main][0], g.routes[ramp][0]
    traffic.reset(np.random.default_rng(0))
    traffic.active[:] = True
    traffic.route[:], traffic.k[:], traffic.lane[:] = [main, ramp], [0, 0], [lm, lr]
    # The main-road car is 110 m from the node at 24 m/s; the merging car 76 m from it at 17 m/s.
    traffic.s[:] = [g.length[lm] - 110.0, g.length[lr] - 76.0]
    traffic.v[:], traffic.v0[:] = [24.0, 17.0], [24.0, 17.0]
    traffic.committed[:] = [False, True]
    traffic._poses = None
    lowest = 0.0
    for _ in range(100):
        traffic.step(0.1)
        lowest = min(lowest, float(traffic.accel[0]))
        assert not footprint_overlaps(*traffic.poses())
    assert lowest >= -traffic.cfg.safe_decel_mps2, f"braked at {lowest:.1f} m/s^2"
    assert traffic.k[0] == 1 and traffic.k[1] == 1 and traffic.s[0] < traffic.s[1], "both on the main road, the merged car ahead"


def test_a_right_turn_does_not_stop_for_the_ego_car_waiting_at_the_opposite_line():
    traffic = _traffic("intersection", 1)
    g = traffic.graph
    turn = g.route_index(g.ego_routes["west-south"])
    wait = g.ego_routes["south-north"]
    traffic.reset(np.random.default_rng(0))
    traffic.active[:] = True
    # Mid-way through the right turn; the ego car stands at the south stop line, just across the
    # centre line from the turn's exit lane (seed 47 of Intersection-v0 deadlocked like this).
    traffic.route[0], traffic.k[0], traffic.lane[0], traffic.s[0], traffic.v[0], traffic.v0[0] = turn, 1, g.routes[turn][1], 6.0, 2.0, 10.0
    traffic._poses = None
    s_line = g.length[wait[0]] - 4.5
    xy, yaw = g.poses(np.array([wait[0]]), np.array([s_line]))
    ego = EgoOnGraph(wait[0], s_line, g.route_index(wait), float(xy[0, 0]), float(xy[0, 1]), float(yaw[0]), 0.0)
    for _ in range(40):
        traffic.step(0.1, ego)
    assert traffic.k[0] == 2, "the turning car left the junction"
