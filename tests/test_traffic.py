from __future__ import annotations

import numpy as np

from drive_sim.road import RoadConfig, make_road
from drive_sim.traffic import VEHICLE_LENGTH_M, Traffic, TrafficConfig, cah_blend, idm_acceleration


def _traffic(n, **kw):
    road = make_road(RoadConfig(layout="highway", lanes=3, length_m=5000.0))
    return Traffic(road, TrafficConfig(count=n, **kw)), road


def test_idm_vehicle_stops_behind_stopped_vehicle_without_touching():
    traffic, road = _traffic(2, lane_changes=False)
    # Vehicle 0 at 30 m/s approaches vehicle 1, stopped 200 m ahead in the same lane.
    traffic.set_state(s=[100.0, 300.0], lane=[1, 1], v=[30.0, 0.0], v0=[30.0, 0.0])
    min_gap = np.inf
    for _ in range(600):
        traffic.step(0.1, ego_s=-1000.0, ego_d=0.0, ego_v=0.0)
        min_gap = min(min_gap, traffic.s[1] - traffic.s[0] - VEHICLE_LENGTH_M)
    assert traffic.v[0] < 0.05, "it came to a stop"
    assert traffic.s[1] == 300.0 and traffic.v[1] == 0.0, "the stopped vehicle stayed put"
    assert min_gap > 0.5, f"it touched or nearly touched: min gap {min_gap:.2f} m"
    assert min_gap < 10.0, "it stopped at a jam distance, not far away"


def test_idm_free_road_reaches_desired_speed():
    cfg = TrafficConfig()
    v = np.array([10.0])
    for _ in range(600):
        v = v + 0.1 * idm_acceleration(v, np.array([25.0]), np.array([np.inf]), np.array([0.0]), cfg)
    assert v[0] == np.clip(v[0], 24.0, 25.0)


def test_mobil_overtakes_slow_leader_when_next_lane_is_free():
    traffic, road = _traffic(2, decision_period_s=0.1, lane_change_cooldown_s=0.0)
    traffic.set_state(s=[100.0, 130.0], lane=[0, 0], v=[30.0, 15.0], v0=[30.0, 15.0])
    lanes_used = set()
    for _ in range(200):
        traffic.step(0.1, ego_s=-1000.0, ego_d=0.0, ego_v=0.0)
        lanes_used.add(int(traffic.lane[0]))
    assert 1 in lanes_used and traffic.lane_changes >= 1, "it pulled out to the left"
    assert traffic.s[0] > traffic.s[1] + 10, "it overtook"
    assert traffic.lane[0] == 0, "and kept right again afterwards"


def test_mobil_does_not_cut_in_front_of_close_fast_follower():
    traffic, road = _traffic(3, decision_period_s=0.1, lane_change_cooldown_s=0.0)
    # Vehicle 0 is blocked by a slow leader; lane 1 has a fast vehicle right beside/behind it.
    traffic.set_state(s=[100.0, 125.0, 96.0], lane=[0, 0, 1], v=[20.0, 12.0, 33.0], v0=[30.0, 12.0, 33.0])
    traffic.step(0.1, ego_s=-1000.0, ego_d=0.0, ego_v=0.0)
    assert traffic.lane[0] == 0, "unsafe lane change was made"


def test_traffic_reacts_to_ego():
    traffic, road = _traffic(1, lane_changes=False)
    lane_d = road.lane_offsets_m[1]
    traffic.set_state(s=[100.0], lane=[1], v=[30.0], v0=[30.0])
    for _ in range(300):
        traffic.step(0.1, ego_s=250.0, ego_d=lane_d, ego_v=0.0)  # ego stopped ahead
    assert traffic.s[0] < 250.0 - VEHICLE_LENGTH_M and traffic.v[0] < 0.1


def test_neighbour_tables_match_brute_force():
    traffic, road = _traffic(15)
    rng = np.random.default_rng(4)
    for _ in range(20):
        traffic.reset(rng, ego_s=500.0, ego_d=0.0)
        traffic.d = traffic.d + rng.uniform(-1.5, 1.5, traffic.count)  # some mid lane change
        all_s = np.append(traffic.s, 500.0)
        all_d = np.append(traffic.d, rng.uniform(-4, 4))
        lead, lead_gap, follow, follow_gap = traffic.neighbour_tables(all_s, all_d)
        occ = traffic._occupancy(all_d)
        for i in range(traffic.count):
            for lane in range(road.n_lanes):
                ahead = [(all_s[j] - all_s[i], j) for j in range(len(all_s)) if j != i and occ[j, lane] and all_s[j] >= all_s[i]]
                behind = [(all_s[i] - all_s[j], j) for j in range(len(all_s)) if j != i and occ[j, lane] and all_s[j] < all_s[i]]
                if ahead:
                    assert lead_gap[i, lane] == min(ahead)[0] - VEHICLE_LENGTH_M
                else:
                    assert lead[i, lane] == -1 and lead_gap[i, lane] == np.inf
                if behind:
                    assert follow_gap[i, lane] == min(behind)[0] - VEHICLE_LENGTH_M
                else:
                    assert follow[i, lane] == -1


def test_recycling_keeps_count_and_window():
    traffic, road = _traffic(20)
    rng = np.random.default_rng(0)
    ego_s = 200.0
    traffic.reset(rng, ego_s=ego_s, ego_d=0.0)
    for _ in range(600):  # ego drives at 35 m/s, faster than all traffic
        ego_s += 3.5
        traffic.step(0.1, ego_s=ego_s, ego_d=-3.75, ego_v=35.0)
        traffic.recycle(rng, ego_s)
    rel = traffic.s - ego_s
    assert traffic.count == 20
    assert np.all(rel > -traffic.cfg.spawn_behind_m - 5) and np.all(rel < traffic.cfg.spawn_ahead_m + 5)


def test_cautious_drivers_keep_longer_gaps_than_aggressive():
    gaps = {}
    for style in ("cautious", "aggressive"):
        traffic, road = _traffic(2, lane_changes=False)
        traffic.set_state(s=[100.0, 200.0], lane=[1, 1], v=[20.0, 20.0], v0=[30.0, 20.0])
        traffic.set_styles([style, "normal"])
        for _ in range(900):
            traffic.step(0.1, ego_s=-1000.0, ego_d=0.0, ego_v=0.0)
        gaps[style] = traffic.s[1] - traffic.s[0] - VEHICLE_LENGTH_M
    assert gaps["cautious"] > 1.8 * gaps["aggressive"] > 0.0, gaps


def test_behaviour_mix_draws_profiles_and_speeds():
    from drive_sim.traffic import BehaviourMix

    rng = np.random.default_rng(0)
    speeds = {}
    for name, mix in [("cautious", BehaviourMix(cautious=1, normal=0)), ("aggressive", BehaviourMix(aggressive=1, normal=0))]:
        traffic, _ = _traffic(40, mix=mix)
        traffic.reset(rng, ego_s=500.0, ego_d=0.0)
        assert set(traffic.style.tolist()) == {list(("cautious", "normal", "aggressive")).index(name)}
        speeds[name] = traffic.v0.mean()
    assert speeds["aggressive"] > 1.1 * speeds["cautious"]


def test_density_sets_the_vehicle_count():
    from drive_sim.world import WorldConfig

    cfg = WorldConfig(traffic=TrafficConfig(density_per_km_per_lane=10.0))
    assert cfg.traffic.count == round(10.0 * 4 * 0.370)


def test_cah_blend_tempers_cut_in_braking_but_not_a_real_emergency():
    v, b, a_max = np.array([24.0, 24.0, 20.0]), 3.0, 2.0
    v_lead = np.array([17.0, 30.0, 0.0])
    gap = np.array([29.5, 40.0, 30.0])
    idm = np.array([-8.0, 0.5, -8.0])
    out = cah_blend(idm, v, v_lead, np.zeros(3), gap, a_max, b)
    # A slower car merging in 30 m ahead: brake firmly, far less than IDM's limit.
    assert -4.0 < out[0] < -2.0
    # IDM not below the heuristic: unchanged.
    assert out[1] == idm[1]
    # A stopped car 30 m ahead at 20 m/s needs v^2 / 2s = 6.7 m/s^2: the blend keeps that.
    assert out[2] <= -(20.0**2) / (2 * 30.0)


def test_batched_traffic_step_equals_each_world_alone_bit_for_bit():
    """step_traffic over several worlds (the batched vector env) gives each world exactly what Traffic.step gives it."""
    from drive_sim.traffic import step_traffic

    def worlds():
        out = []
        for seed in range(4):
            t, _ = _traffic(24, decision_period_s=0.3, lane_change_cooldown_s=1.0, density_per_km_per_lane=40.0)
            t.reset(np.random.default_rng(seed), 400.0, 0.0)
            t._decision_clock = 0.1 * seed  # the worlds decide on different steps, as after resets at different times
            out.append(t)
        return out

    alone, batched = worlds(), worlds()
    for k in range(300):
        ego = [(400.0 + 25.0 * 0.1 * k + i, 0.0, 25.0 - i) for i in range(4)]
        for t, (s, d, v) in zip(alone, ego, strict=True):
            t.step(0.1, s, d, v)
        e = np.asarray(ego)
        step_traffic(batched, 0.1, e[:, 0], e[:, 1], e[:, 2])
    for a, b in zip(alone, batched, strict=True):
        for name in ("s", "d", "v", "lane", "d_rate", "accel", "cooldown"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert a.lane_changes == b.lane_changes and a._decision_clock == b._decision_clock
    assert sum(t.lane_changes for t in batched) > 10, "the worlds changed lanes (MOBIL ran batched)"
