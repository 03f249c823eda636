"""Benchmark metrics on constructed episodes: exact numbers for known collisions, off-road, red lights, TTC."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from agents.evaluation.metrics import aggregate, bootstrap_ci, run_scores, summarise_log
from envs.config import make_config
from envs.recording import EGO_FIELDS, INFO_FIELDS, STOP_LINE_CODES, EpisodeLog

ROUTE_M = 1000.0


def _episode(steps=20, speed=20.0, collide=None, off_road_last=False, red_run_at=None, traffic=None, completion=0.3):
    """A straight drive along +x at ``speed`` (0.1 s steps) with what the arguments add."""
    cfg = dataclasses.asdict(make_config("highway"))
    cfg["scenario"]["route_length_m"] = ROUTE_M
    meta = {
        "format_version": 1,
        "env_id": "DriveSim/Highway-v0",
        "config": json.loads(json.dumps(cfg)),
        "control_period_s": 0.1,
        "ego_fields": list(EGO_FIELDS),
        "info_fields": list(INFO_FIELDS),
        "events": [],
    }
    ego = np.zeros((steps + 1, len(EGO_FIELDS)))
    x = speed * 0.1 * np.arange(steps + 1)
    ego[:, EGO_FIELDS.index("x_m")] = x
    ego[:, EGO_FIELDS.index("speed_mps")] = speed
    ego[:, EGO_FIELDS.index("vx_mps")] = speed
    info = np.zeros((steps + 1, len(INFO_FIELDS)))
    col = {k: i for i, k in enumerate(INFO_FIELDS)}
    info[:, col["speed_mps"]] = speed
    info[:, col["speed_limit_mps"]] = 25.0
    info[:, col["route_completion"]] = np.linspace(0, completion, steps + 1)
    info[:, col["stop_line_m"]] = np.inf
    if collide:
        info[-1, col["collided"]] = 1.0
        meta["events"].append({"step": steps, "time_s": steps * 0.1, "kind": "collision", "value": collide})
    if off_road_last:
        info[-1, col["off_road"]] = 1.0
    if red_run_at is not None:
        # A red line 6 m ahead at red_run_at - 2, crossed between red_run_at - 1 and red_run_at.
        t = red_run_at
        info[t - 2 : t, col["stop_line_kind"]] = STOP_LINE_CODES["red"]
        info[t - 2 : t, col["stop_line_m"]] = [6.0, 4.0]
        info[t, col["stop_line_m"]] = 2.0 - speed * 0.1  # the line is behind now
    info[-1, col["is_success"]] = float(not collide and not off_road_last)
    n_traffic = 0 if traffic is None else 1
    txy = np.zeros((steps + 1, n_traffic, 2))
    tv = np.zeros((steps + 1, n_traffic))
    if traffic is not None:
        gap0, v_other = traffic
        txy[:, 0, 0] = gap0 + v_other * 0.1 * np.arange(steps + 1)
        tv[:, 0] = v_other
    arrays = {
        "actions": np.zeros((steps, 2), np.float32),
        "rewards": np.full(steps, 0.5),
        "reward_terms": np.zeros((steps, 6)),
        "ego": ego,
        "traffic_xy": txy,
        "traffic_yaw": np.zeros((steps + 1, n_traffic)),
        "traffic_v": tv,
        "traffic_active": np.ones((steps + 1, n_traffic), bool),
        "info": info,
        "sensor_valid": np.ones((steps + 1, 0), bool),
    }
    return EpisodeLog(meta, arrays)


def _metrics(log: EpisodeLog) -> dict:
    """The summary as the benchmark's row (its column names)."""
    return summarise_log(log).row()


def test_clean_episode():
    m = _metrics(_episode())
    assert m["success"] and not m["collided"] and not m["off_road"] and m["red_lights_run"] == 0
    assert m["driving_score"] == pytest.approx(0.3) and m["infraction_penalty"] == 1.0
    assert m["distance_km"] == pytest.approx(0.04) and m["infractions_per_km"] == 0.0
    assert m["speed_ratio"] == pytest.approx(0.8) and m["return"] == pytest.approx(10.0)
    assert m["min_ttc_s"] == np.inf and m["rms_lat_accel_mps2"] == 0.0


def test_collisions_scale_the_driving_score_like_the_carla_leaderboard():
    vehicle = _metrics(_episode(collide="vehicle"))
    static = _metrics(_episode(collide="static"))
    assert vehicle["collided"] and vehicle["collision_kind"] == "vehicle" and not vehicle["success"]
    assert vehicle["driving_score"] == pytest.approx(0.3 * 0.60)
    assert static["driving_score"] == pytest.approx(0.3 * 0.65)
    assert vehicle["infractions_per_km"] == pytest.approx(1 / 0.04)


def test_off_road_scales_by_the_share_of_the_route_driven_off_it():
    m = _metrics(_episode(off_road_last=True))
    assert m["off_road"] and m["infraction_penalty"] == pytest.approx(1.0 - 2.0 / ROUTE_M)  # the last 2 m step
    assert m["driving_score"] == pytest.approx(0.3 * (1.0 - 2.0 / ROUTE_M))


def test_a_red_light_run_costs_0_70():
    m = _metrics(_episode(red_run_at=10))
    assert m["red_lights_run"] == 1 and m["driving_score"] == pytest.approx(0.3 * 0.70)


def test_time_to_collision_with_the_car_ahead():
    # 30 m ahead (centre to centre) at 10 m/s while the ego car does 20: gap 30 - 4.5 = 25.5 m closing at 10 m/s.
    m = _metrics(_episode(steps=10, traffic=(30.0, 10.0)))
    assert m["min_ttc_s"] == pytest.approx((30.0 - 10 * 0.1 * 10 - 4.5) / 10.0)  # least at the last step
    assert _metrics(_episode(steps=10, traffic=(30.0, 25.0)))["min_ttc_s"] == np.inf  # pulling away


def test_aggregate_rates_and_intervals_shrink_with_more_episodes():
    rows = [_metrics(_episode(collide="vehicle" if k % 4 == 0 else None)) for k in range(8)]
    agg = aggregate(rows)
    assert agg["episodes"] == 8 and agg["collided_rate"] == pytest.approx(0.25) and agg["success_rate"] == pytest.approx(0.75)
    lo, hi = agg["success_rate_ci"]
    assert lo <= 0.75 <= hi
    rng = np.random.default_rng(1)
    small, large = rng.random(20) < 0.7, rng.random(500) < 0.7
    w_small = np.subtract(*bootstrap_ci(small)[::-1])
    w_large = np.subtract(*bootstrap_ci(large)[::-1])
    assert w_large < w_small / 3  # ~1/sqrt(n): 5x narrower for 25x the episodes
    assert bootstrap_ci(small) == bootstrap_ci(small)  # seeded


def test_metrics_of_a_recorded_episode(tmp_path):
    import gymnasium as gym

    import envs  # noqa: F401
    from envs.recording import RecordEpisodes

    env = RecordEpisodes(gym.make("DriveSim/Highway-v0", cfg={"scenario": {"time_limit_s": 3.0}}), tmp_path)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(np.array([0.0, 0.5], np.float32))
        done = term or trunc
    env.close()
    log = EpisodeLog.load(env.written[0])
    m = _metrics(log)
    assert m["steps"] == log.steps and m["success"] == bool(log.info(log.steps)["is_success"])
    assert 0.0 < m["distance_km"] < 0.2 and 0.0 <= m["driving_score"] <= m["route_completion"] + 1e-12
    assert m["min_ttc_s"] > 0.0


def test_one_aggregate_for_summaries_rows_and_run_scores():
    episodes = [
        dataclasses.replace(summarise_log(_episode(collide="vehicle" if k == 0 else None)), seed=k, act_ms=2.0 + k) for k in range(4)
    ]
    agg = aggregate(episodes)
    # Summaries and their rows aggregate alike; the optional planner time only where every episode has it.
    assert {k: v for k, v in agg.items() if k != "act_ms"} == aggregate([e.row() for e in episodes])
    assert agg["act_ms"] == pytest.approx(3.5) and "act_ms" not in aggregate([dataclasses.replace(episodes[0], act_ms=None)])
    # A run's scores are the aggregate of its eval.csv rows under the names eval.json keeps.
    scores = run_scores([e.brief() for e in episodes])
    assert scores["seeds"] == [0, 1, 2, 3] and scores["episodes"] == 4
    assert scores["collision_rate"] == pytest.approx(0.25) and scores["success_rate"] == pytest.approx(0.75)
    assert scores["mean_route_completion"] == pytest.approx(agg["route_completion"], abs=1e-4)
    assert scores["mean_speed_ratio"] == pytest.approx(agg["speed_ratio"], abs=1e-4)
    assert scores["mean_return"] == pytest.approx(agg["return"], abs=1e-4)
    assert set(episodes[0].brief()) == {"seed", "return", "steps", "success", "collided", "off_road", "route_completion", "speed_ratio"}
    assert run_scores([]) == {"episodes": 0}
