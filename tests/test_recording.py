"""Episode logs: record, load, re-simulate exactly, detect a mismatch, play states back, refuse bad logs."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from drive_sim.files import umask_mode
from envs.recording import FORMAT_VERSION, EpisodeLog, EpisodeLogError, RecordEpisodes, playback, resimulate

SHORT = {"scenario": {"time_limit_s": 5.0}}  # 50 steps: the episodes end by themselves
CASES = [
    ("DriveSim/Highway-v0", "lidar", "continuous"),
    ("DriveSim/Intersection-v0", "kinematics", "meta"),
    ("DriveSim/Highway-SensorFault-v0", "lidar", "discrete"),
]


def _record(tmp_path, env_id, obs, action, seed, policy_seed=0, episodes=1):
    env = RecordEpisodes(gym.make(env_id, obs_type=obs, action_type=action, cfg=SHORT), tmp_path / "episodes")
    env.action_space.seed(policy_seed)
    for k in range(episodes):
        env.reset(seed=seed if k == 0 else None)
        done = False
        while not done:
            a = env.action_space.sample()
            if action == "continuous":
                a = np.array([0.1 * a[0], 0.3 + 0.3 * a[1]], np.float32)  # stays on the road for a while
            _, _, term, trunc, _ = env.step(a)
            done = term or trunc
    env.close()
    return env.written


@pytest.mark.parametrize(("env_id", "obs", "action"), CASES)
def test_record_then_resimulate_gives_the_recorded_states(tmp_path, env_id, obs, action):
    (folder,) = _record(tmp_path, env_id, obs, action, seed=5)
    log = EpisodeLog.load(folder)
    assert log.env_id == env_id and log.meta["reset"]["seed"] == 5 and log.meta["format_version"] == FORMAT_VERSION
    assert log.steps == log.meta["steps"] > 0
    assert log.arrays["ego"].shape == (log.steps + 1, len(log.meta["ego_fields"]))
    assert log.arrays["traffic_xy"].shape[0] == log.steps + 1
    assert np.isclose(log.arrays["rewards"].sum(), log.meta["return"])
    assert folder.stat().st_mode & 0o777 == umask_mode(0o777) and (folder / "arrays.npz").stat().st_mode & 0o777 == umask_mode()
    report = resimulate(log)
    assert report.exact and report.steps == log.steps, report
    assert all(err == 0.0 for err in report.max_error.values())


def test_an_episode_without_a_seed_replays_from_its_generator_state(tmp_path):
    first, second = _record(tmp_path, "DriveSim/Highway-v0", "lidar", "continuous", seed=3, episodes=2)
    log = EpisodeLog.load(second)
    assert log.meta["reset"]["seed"] is None and "generator_state" in log.meta["reset"]
    assert resimulate(log).exact
    # Not the same episode as the first one (the generator moved on).
    assert not np.array_equal(EpisodeLog.load(first).arrays["ego"][0], log.arrays["ego"][0])


def test_a_changed_action_is_reported_with_step_and_magnitude(tmp_path):
    (folder,) = _record(tmp_path, "DriveSim/Highway-v0", "lidar", "continuous", seed=1)
    log = EpisodeLog.load(folder)
    assert log.steps > 20
    log.arrays["actions"][10] = np.array([1.0, -1.0], np.float32)  # what re-simulation will now do
    report = resimulate(log)
    assert not report.exact
    assert report.mismatch.step == 11 and report.mismatch.array == "ego" and report.mismatch.magnitude > 1e-4
    assert "step 11" in str(report.mismatch)


def test_playback_poses_the_world_as_recorded(tmp_path):
    (folder,) = _record(tmp_path, "DriveSim/Highway-v0", "lidar", "continuous", seed=2)
    log = EpisodeLog.load(folder)
    seen = 0
    for t, env in playback(log):
        w = env.unwrapped.world
        ego = log.ego(t)
        assert w.ego == ego
        pos, _ = w.client.getBasePositionAndOrientation(w.vehicle.body_id)
        np.testing.assert_allclose(pos[:2], [ego.x_m, ego.y_m], atol=1e-9)
        on = log.arrays["traffic_active"][t]
        for body, xy, active in zip(w.traffic_ids, log.arrays["traffic_xy"][t], on, strict=True):
            if active:
                np.testing.assert_allclose(w.client.getBasePositionAndOrientation(body)[0][:2], xy, atol=1e-9)
        seen += 1
    assert seen == log.steps + 1


def test_an_existing_log_is_never_overwritten(tmp_path):
    (folder,) = _record(tmp_path, "DriveSim/Highway-v0", "lidar", "continuous", seed=4)
    before = (folder / "arrays.npz").read_bytes()
    env = RecordEpisodes(gym.make("DriveSim/Highway-v0", cfg=SHORT), tmp_path / "episodes")
    with pytest.raises(FileExistsError, match="ep_0000 exists"):
        env.reset(seed=9)
    env.close()
    assert (folder / "arrays.npz").read_bytes() == before


def test_bad_logs_fail_in_one_line(tmp_path):
    (folder,) = _record(tmp_path, "DriveSim/Highway-v0", "lidar", "continuous", seed=6)
    cases = {}
    cases["missing"] = tmp_path / "nope"
    trunc = tmp_path / "truncated"
    trunc.mkdir()
    (trunc / "episode.json").write_bytes((folder / "episode.json").read_bytes())
    data = (folder / "arrays.npz").read_bytes()
    (trunc / "arrays.npz").write_bytes(data[: len(data) // 2])
    cases["truncated"] = trunc
    newer = tmp_path / "newer"
    newer.mkdir()
    meta = json.loads((folder / "episode.json").read_text())
    (newer / "episode.json").write_text(json.dumps({**meta, "format_version": FORMAT_VERSION + 1}))
    (newer / "arrays.npz").write_bytes(data)
    cases["newer"] = newer
    expected = {"missing": "does not exist", "truncated": "may be truncated", "newer": "newer than this drive-sim reads"}
    for name, path in cases.items():
        with pytest.raises(EpisodeLogError) as err:
            EpisodeLog.load(path)
        msg = str(err.value)
        assert expected[name] in msg and str(path) in msg and "\n" not in msg, msg
    unknown = EpisodeLog.load(folder)
    unknown.meta["env_id"] = "DriveSim/Moon-v0"
    with pytest.raises(EpisodeLogError, match="unknown scenario id 'DriveSim/Moon-v0'; known: DriveSim/"):
        unknown.make_env()
