"""The ``perceived`` observation: the kinematics layout from perception and fusion (envs/perceived.py)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from drive_sim.config import ConfigError

NO_TRAFFIC = {"scenario": {"world": {"traffic": {"count": 0}}}}


def _run(env, actions):
    obs, _ = env.reset(seed=3)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return np.stack(out)


def test_same_seed_same_observations_and_the_same_traffic_as_kinematics():
    actions = [np.array([0.02 * math.sin(0.1 * k), 0.2], np.float32) for k in range(40)]
    a = gym.make("DriveSim/Highway-v0", obs_type="perceived", action_type="continuous")
    b = gym.make("DriveSim/Highway-v0", obs_type="perceived", action_type="continuous")
    k = gym.make("DriveSim/Highway-v0", obs_type="kinematics", action_type="continuous")
    try:
        oa, ob = _run(a, actions), _run(b, actions)
        np.testing.assert_array_equal(oa, ob)
        _run(k, actions)
        # The sensors draw from a stream of their own: the traffic is the kinematics episode's.
        np.testing.assert_array_equal(a.unwrapped.world.traffic_state()[0], k.unwrapped.world.traffic_state()[0])
        assert oa.shape[1] == k.observation_space.shape[0] and a.unwrapped.observation_names == k.unwrapped.observation_names
    finally:
        for e in (a, b, k):
            e.close()


def test_the_estimates_follow_the_truth_and_only_info_has_the_truth():
    env = gym.make("DriveSim/Highway-v0", obs_type="perceived", action_type="continuous")
    try:
        env.reset(seed=5)
        w = env.unwrapped.world
        lateral, along = [], []
        for _ in range(100):
            _, _, term, trunc, info = env.step(np.array([0.0, 0.1], np.float32))
            p = info["perceived"]
            lateral.append(p["y_m"] - w.ego.y_m)  # the highway runs along x
            along.append(p["x_m"] - w.ego.x_m)
            assert not (term or trunc)
        assert float(np.sqrt(np.mean(np.square(lateral)))) < 0.3
        assert float(np.sqrt(np.mean(np.square(along)))) < 5.0  # the GNSS bias along the road stays (docs/fusion.md)
        assert info["perceived"]["tracks"] >= 1
        assert "lane_offset_m" in info and "route_completion" in info
    finally:
        env.close()


def test_the_expert_drives_on_perceived():
    from agents.evaluation.episodes import run_episode
    from agents.policies.loader import load_agent

    env = gym.make("DriveSim/Highway-v0", obs_type="perceived", action_type="continuous")
    try:
        s = run_episode(env, load_agent("expert", env), seed=0, max_steps=150)
        assert not s.collided and not s.off_road and s.route_completion > 0.05
    finally:
        env.close()


def test_spec_at_perceived_puts_a_kinematics_agent_on_perceived():
    from agents.policies.loader import check_agent, resolve_agent

    agent, target = resolve_agent("expert@perceived", "highway")
    assert target.obs_type == "perceived" and target.action_type == "continuous"
    check_agent("expert@perceived")
    _, plain = resolve_agent("expert", "highway")
    assert plain.obs_type == "kinematics"
    # The bench builds the expert on a kinematics probe of the scenario; driven on perceived, it reads
    # the stack's estimate (its caution) of the env it drives, and on the truth none.
    from agents.evaluation.episodes import run_episode

    env = target.make()
    try:
        run_episode(env, agent, seed=0, max_steps=2)
        assert agent.estimate_source is not None and agent.estimate_source() is env.unwrapped.perceived_estimate
    finally:
        env.close()
    truth = plain.make()
    try:
        run_episode(truth, agent, seed=0, max_steps=2)
        assert agent.estimate_source is None
    finally:
        truth.close()


def test_a_disabled_sensor_the_filter_needs_is_named():
    cfg = {"scenario": {"world": {"sensors": {"gnss": {"enabled": False}}}}}
    with pytest.raises(ConfigError, match=r"sensors\.gnss is disabled.*sensors\.gnss\.enabled: true"):
        gym.make("DriveSim/Highway-v0", obs_type="perceived", cfg=cfg)


def test_a_missing_or_foreign_perception_model_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="observation.perception_model: .*does not exist"):
        gym.make("DriveSim/Highway-v0", obs_type="perceived", cfg={"observation": {"perception_model": str(tmp_path / "none.onnx")}})
    bad = tmp_path / "net.onnx"
    bad.write_bytes(b"not a protobuf")
    (tmp_path / "net.heads.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(ConfigError, match="observation.perception_model: .*not a readable ONNX perception net"):
        gym.make("DriveSim/Highway-v0", obs_type="perceived", cfg={"observation": {"perception_model": str(bad)}})


def test_meta_actions_plan_from_the_perceived_vector():
    env = gym.make("DriveSim/Highway-v0", obs_type="perceived", action_type="meta", cfg=NO_TRAFFIC)
    try:
        obs, _ = env.reset(seed=1)
        act = env.unwrapped._act
        assert act._view is None and act._seen is obs
        for _ in range(5):
            obs, *_ = env.step(0)
            assert act._seen is obs
    finally:
        env.close()


def test_the_fusion_figures_of_a_short_episode(tmp_path):
    from agents.evaluation.fusion_eval import fusion_episode, summarise
    from agents.reports.fusion_page import fusion_table

    e = fusion_episode("DriveSim/Highway-v0", 7, max_steps=80)
    assert len(e.time_s) == 81 and np.isfinite(e.nees).all()
    s = summarise([e])
    assert s["position_rmse_m"] < s["gnss_rmse_m"] and s["lateral_rmse_m"] < 0.3
    assert 0.0 <= s["nees_share_inside"] <= 1.0 and s["objects"] > 0 and s["all_objects"] >= s["objects"]
    assert "`DriveSim/Highway-v0`" in fusion_table({"DriveSim/Highway-v0": s})


def test_tracks_on_vehicles_beyond_the_range_or_hidden_are_neither_hits_nor_false_positives():
    from agents.evaluation.fusion_eval import match_period

    rel = np.array([[20.0, 0.0], [51.0, 0.0], [-30.0, 3.5], [10.0, -3.5]])  # the second beyond 50 m
    ids = np.array([1, 2, 3, 4])
    reached = np.array([True, True, False, True])  # no beam reaches the third
    hyp = np.array([[10, 20.5, 0.0], [11, 49.8, 0.0], [12, -30.5, 3.5], [13, 35.0, 0.0]])
    (all_gt, all_hyp, all_d), (gt, hy, d) = match_period(rel, ids, reached, hyp)
    # Track 11 sits within 2 m of vehicle 2 only, which is out of range: left out of both.
    assert all_gt == [1, 3, 4] and all_hyp == [10, 12, 13]
    assert np.isfinite(all_d[0, 0]) and np.isfinite(all_d[1, 1]) and np.isnan(all_d[:, 2]).all()
    # Only reached vehicles are scored there, and track 12 on the hidden vehicle is left out too.
    assert gt == [1, 4] and hy == [10, 13] and d.shape == (2, 2)
    # Track 13 matches nothing: a false positive in both; vehicle 4 has no track: a miss in both.
    assert np.isnan(d[1]).all() and np.isnan(d[:, 1]).all()


def test_the_fusion_command_writes_a_partial_report(tmp_path):
    from agents.cli import main

    assert main(["fusion", "--scenarios", "highway", "--episodes", "1", "--workers", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "Partial run: 1 episode(s)" in (tmp_path / "fusion.md").read_text()
    assert (tmp_path / "fusion.png").stat().st_size > 0 and (tmp_path / "fusion.json").is_file()
    assert main(["fusion", "--scenarios", "highway", "--episodes", "0", "--out", str(tmp_path)]) == 2


def test_the_tunnel_grows_the_uncertainty_and_the_exit_fix_shrinks_it():
    """Highway-Tunnel-v0 loses GNSS from 15 s to 25 s: the filter's position std grows through it and falls at the first fix after."""
    env = gym.make("DriveSim/Highway-Tunnel-v0", obs_type="perceived", action_type="continuous", cfg=NO_TRAFFIC)
    try:
        env.reset(seed=2)
        w = env.unwrapped.world
        std, err = {}, {}
        for _ in range(270):
            _, _, term, trunc, info = env.step(np.array([0.0, 0.05], np.float32))
            t = round(w.time_s, 1)
            std[t] = info["perceived"]["position_std_m"]
            err[t] = math.hypot(info["perceived"]["x_m"] - w.ego.x_m, info["perceived"]["y_m"] - w.ego.y_m)
            assert not (term or trunc)
        assert env.unwrapped._obs.estimate.gnss is not None  # fixes are back
        assert std[24.9] > 1.1 * std[15.0]  # dead reckoning along the road (the fixes' bias, 2 m, was the larger part already)
        assert std[26.0] < std[24.9]
        assert max(err[t] for t in err if 15.0 <= t < 25.0) < err[15.0] + 3.0  # the outage costs under 3 m
    finally:
        env.close()


def test_the_radar_fault_leaves_the_tracks_to_lidar_and_camera():
    env = gym.make("DriveSim/Highway-RadarFault-v0", obs_type="perceived", action_type="continuous")
    try:
        env.reset(seed=4)
        counts = []
        for _ in range(200):
            _, _, term, trunc, info = env.step(np.array([0.0, 0.1], np.float32))
            if env.unwrapped.world.time_s > 12.0:
                assert env.unwrapped.world.read_sensors().valid.get("radar") is False
                counts.append(info["perceived"]["tracks"])
            assert not (term or trunc)
        assert min(counts) >= 1  # the traffic around the car is still tracked without radar
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ["DriveSim/Merge-v0", "DriveSim/Intersection-v0"])
def test_returns_from_every_lane_of_a_junction_count_as_on_the_road(env_id):
    # The ego road of a junction layout is one route's lane; vehicles on the others are traffic too.
    env = gym.make(env_id, obs_type="perceived", action_type="continuous", cfg=NO_TRAFFIC)
    try:
        env.reset(seed=1)
        obs, w = env.unwrapped._obs, env.unwrapped.world
        e, graph = w.ego, w.network
        mask = obs._on_road((e.x_m, e.y_m, e.yaw_rad))
        route = set(w._ego_lanes)
        lanes = np.arange(len(graph.lanes))
        xy, heading = graph.poses(lanes, 0.5 * graph.length)
        c, s = math.cos(e.yaw_rad), math.sin(e.yaw_rad)

        def ego_frame(p):
            return np.stack([c * (p[:, 0] - e.x_m) + s * (p[:, 1] - e.y_m), -s * (p[:, 0] - e.x_m) + c * (p[:, 1] - e.y_m)], axis=1)

        others = np.array([i not in route for i in lanes.tolist()])
        assert mask(ego_frame(xy[others])).all()
        # 8 m right of the entry lanes' middles, beyond every lane: the verge, off the road.
        normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
        off = xy - 8.0 * normal
        far = np.array([graph.distance_to_lanes(x, y) > 5.0 for x, y in off])
        assert far.any() and not mask(ego_frame(off[far])).any()
    finally:
        env.close()


def test_lines_come_from_the_map_and_the_nets_phantom_lines_are_dropped():
    # Merge-v0 is the net's held-out scenario: it reads give-way lines 8-25 m ahead all along the
    # ramp, where the map has none, and never reads the real one. The observation keeps the lines
    # the map has: none until the ramp's give-way line is in range, then that one, in its place.
    from agents.evaluation.episodes import run_episode
    from agents.policies.loader import load_agent

    env = gym.make("DriveSim/Merge-v0", obs_type="perceived", action_type="continuous")
    base = env.unwrapped
    w, names = base.world, base.observation_names
    phantoms, far, near = 0, [], []

    def on_step(_t, _info):
        nonlocal phantoms
        o = base._obs._buf
        kind, true_m = w.stop_line_ahead()
        seen = (float(o[names.index("stop_yield")]), float(o[names.index("stop_distance")]) * 100.0)
        if true_m > 110.0:  # beyond the map range (100 m) with room for the along-road error
            far.append(seen)
            cam = base._obs.estimate.camera
            phantoms += base._obs._light_read != "none" and abs(cam.get("stop_distance_m", math.inf) - true_m) > 20.0
        elif kind == "yield" and 10.0 < true_m < 95.0:
            near.append((seen, true_m))

    try:
        run_episode(env, load_agent("expert", env), seed=1020, on_step=on_step, max_steps=140)
    finally:
        env.close()
    assert phantoms >= 5  # the net did read lines that are not there
    assert far and all(y == 0.0 and d >= 99.9 for y, d in far), [f for f in far if f[0] != 0.0 or f[1] < 99.9]
    # Placed from the estimate: the along-road error on the ramp, where the net's lane readings are off, is up to 6 m.
    assert len(near) >= 10 and all(y == 1.0 and abs(d - true_m) < 8.0 for (y, d), true_m in near), [(d, t) for (_, d), t in near]


def test_the_net_runs_every_period_by_default_or_every_other_and_the_lane_share_holds_between():
    calls = {}
    for every in (1, 2):
        env = gym.make(
            "DriveSim/Highway-v0", obs_type="perceived", action_type="continuous", cfg={"observation": {"perception_every": every}}
        )
        try:
            env.reset(seed=4)
            obs = env.unwrapped._obs
            run = obs.net.__call__
            n = [0]

            def counted(*a, _run=run, _n=n, **k):
                _n[0] += 1
                return _run(*a, **k)

            obs.net = counted
            rates = []
            for _ in range(40):
                _, _, _, _, info = env.step(np.array([0.0, 0.1], np.float32))
                rates.append(obs.estimate.lane_rate)
                assert obs.estimate.camera  # the latest reading, held between the net's runs
            calls[every] = n[0]
            assert min(rates) > 0.9 and info["perceived"]["caution"] < 0.2  # a clear highway: no doubt from the skipped periods
        finally:
            env.close()
    assert calls == {1: 40, 2: 20}
    with pytest.raises(ConfigError, match="observation.perception_every"):
        gym.make("DriveSim/Highway-v0", obs_type="perceived", cfg={"observation": {"perception_every": 0}})


def test_logs_keep_the_estimates_beside_the_truth_and_the_map_draws_them(tmp_path):
    from drive_sim.render import FrameData, RoadSketch, draw_map
    from envs.recording import EpisodeLog, RecordEpisodes, log_frame_data, playback

    env = RecordEpisodes(gym.make("DriveSim/Highway-v0", obs_type="perceived", action_type="continuous"), tmp_path)
    env.reset(seed=3)
    for _ in range(20):
        env.step(np.array([0.0, 0.2], np.float32))
    env.close()
    log = EpisodeLog.load(env.written[0])
    est, truth = log.arrays["estimate"], log.arrays["ego"]
    assert est.shape == (21, 8) and log.arrays["tracks"].shape == (21, 16, 5)
    # Beside the truth, within the filter's reach of it, and the tracks' ids kept.
    assert np.all(np.hypot(est[1:, 0] - truth[1:, 0], est[1:, 1] - truth[1:, 1]) < 10.0)
    assert np.isfinite(log.arrays["tracks"][-1, :, 0]).sum() >= 1
    for t, posed in playback(log):
        if t == 20:
            data = log_frame_data(log, t, posed)
            assert data.estimate is not None and len(data.estimate.tracks) >= 1
            sketch = RoadSketch(posed.unwrapped.world)
            with_est = draw_map(sketch, data, (200, 200), 90.0)
            bare = draw_map(sketch, FrameData(**{**data.__dict__, "estimate": None}), (200, 200), 90.0)
            assert (with_est != bare).any(axis=2).sum() > 50  # the outlines and the ellipse are drawn
    # Other observations log no estimate.
    plain = RecordEpisodes(gym.make("DriveSim/Highway-v0", obs_type="kinematics"), None)
    plain.reset(seed=3)
    plain.step(plain.action_space.sample())
    assert "estimate" not in plain.episode_log().arrays
    plain.close()
