"""Videos: mp4/GIF decode with the right frames, rate and size; the HUD shows the logged speed; RecordVideo works."""

from __future__ import annotations

import subprocess
import sys

import cv2
import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.evaluation.replay import film_agent, film_log
from drive_sim.files import umask_mode
from drive_sim.render import SPEED_BAR_FULL, VideoConfig, frame_layout, speed_bar_box
from envs.recording import EpisodeLog, RecordEpisodes

SHORT = {"scenario": {"time_limit_s": 4.0}}  # 40 steps


def _decode(path):
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    cap.release()
    return np.stack(frames), fps


@pytest.fixture(scope="module")
def short_log(tmp_path_factory):
    """A 40-step Highway episode with speed changes, recorded once for the module."""
    out = tmp_path_factory.mktemp("episodes")
    env = RecordEpisodes(gym.make("DriveSim/Highway-v0", obs_type="lidar", action_type="continuous", cfg=SHORT), out)
    env.reset(seed=11)
    done, t = False, 0
    while not done:
        accel = 0.8 if t < 20 else -0.6  # speeds up, then brakes: the HUD has something to follow
        _, _, term, trunc, _ = env.step(np.array([0.0, accel], np.float32))
        done, t = term or trunc, t + 1
    env.close()
    return EpisodeLog.load(env.written[0])


def _bar_speed(frame, cfg, limit_mps):
    """The speed the HUD's bar shows in a decoded frame [m/s]."""
    hx, hy, hw, hh = frame_layout(cfg)["hud"]
    bx, by, bw, bh = speed_bar_box((hw, hh))
    row = frame[hy + by + bh // 2, hx + bx : hx + bx + bw].astype(int)
    filled = (row[:, 1] > 130) | (row[:, 0] > 180)  # the green (or red) fill against the dark track
    return filled.sum() / bw * SPEED_BAR_FULL * limit_mps


def test_mp4_has_the_frames_rate_and_size_and_the_hud_shows_the_logged_speed(tmp_path, short_log):
    cfg = VideoConfig()
    res = film_log(short_log.path, tmp_path / "ep.mp4", video=cfg, mode="resimulate", progress=False)
    assert res.mode == "resimulate" and res.mismatch is None
    frames, fps = _decode(res.video)
    assert frames.shape == (short_log.steps + 1, 360, 640, 3) and res.frames == len(frames)
    assert fps == pytest.approx(10.0)
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:], strict=False)]
    assert min(diffs) > 0.05  # every frame moves on
    speeds = short_log.arrays["info"][:, short_log.meta["info_fields"].index("speed_mps")]
    limit = short_log.info(0)["speed_limit_mps"]
    for k in (1, 10, 20, 30, short_log.steps):
        # One pixel of the 410-pixel bar is 0.09 m/s at a 30 m/s limit; H.264 blurs the edge a little.
        assert _bar_speed(frames[k], cfg, limit) == pytest.approx(speeds[k], abs=0.5), k
    assert speeds.max() - speeds.min() > 3.0  # the check followed a changing speed


def test_playback_gif_and_panels(tmp_path, short_log):
    cfg = VideoConfig(width=320, height=180, panels=("chase", "hud"))
    res = film_log(short_log.path, tmp_path / "ep.gif", video=cfg, mode="playback", progress=False)
    assert res.mode == "playback"
    import imageio.v3 as iio

    frames = iio.imread(res.video)
    assert frames.shape[:3] == (short_log.steps + 1, 180, 320)
    # Without the right-hand panels the chase view spans the width.
    assert set(frame_layout(cfg)) == {"chase", "hud"} and frame_layout(cfg)["chase"][2] == 320


def test_film_agent_records_a_log_that_films_again(tmp_path):
    res = film_agent(
        "zoo:ppo-highway-lidar",
        tmp_path / "a.mp4",
        scenario="highway-ice",
        seed=7,
        record_dir=tmp_path / "eps",
        max_steps=25,
        progress=False,
    )
    assert res.frames == 26 and res.log is not None and res.log.name == "ep_0007"
    log = EpisodeLog.load(res.log)
    assert log.env_id == "DriveSim/Highway-Ice-v0" and log.steps == 25 and log.meta["agent"] == "zoo:ppo-highway-lidar"
    again = film_log(res.log, tmp_path / "b.mp4", progress=False)
    assert again.mode == "resimulate" and again.frames == 26
    a, _ = _decode(res.video)
    b, _ = _decode(again.video)
    # The same states drawn again: only the title line differs.
    hx, hy, hw, hh = frame_layout(VideoConfig())["chase"]
    assert np.abs(a[:, hy : hy + hh, hx : hx + hw].astype(int) - b[:, hy : hy + hh, hx : hx + hw].astype(int)).mean() < 1.0


def test_existing_videos_are_kept_and_missing_folders_made(tmp_path, short_log):
    out = tmp_path / "new" / "folder" / "ep.mp4"
    film_log(short_log.path, out, mode="playback", video=VideoConfig(width=320, height=180), progress=False)
    before = out.read_bytes()
    assert out.stat().st_mode & 0o777 == umask_mode()  # not the temporary file's 0600
    with pytest.raises(FileExistsError, match="exists; pass --force"):
        film_log(short_log.path, out, progress=False)
    assert out.read_bytes() == before
    film_log(short_log.path, out, force=True, video=VideoConfig(width=160, height=90), progress=False)
    assert out.read_bytes() != before and not list(out.parent.glob(".ep.*"))  # no temporary file left


def test_cli_replay_bad_input_one_line(tmp_path, short_log):
    good = str(short_log.path)
    cases = [
        ([str(tmp_path / "missing"), "--out", str(tmp_path / "x.mp4")], "does not exist"),
        ([good, "--out", str(tmp_path / "x.avi")], "allowed endings: .mp4, .gif"),
        ([good, "--out", str(tmp_path / "x.mp4"), "--panels", "chase,radar"], "video.panels"),
        ([good, "--out", str(tmp_path / "x.mp4"), "--agent", "expert"], "either an episode log folder or --agent"),
        (["--agent", "expert", "--scenario", "moon", "--out", str(tmp_path / "x.mp4")], "moon"),
    ]
    for args, expect in cases:
        r = subprocess.run(
            [sys.executable, "-m", "agents.cli", "replay", *args, "--no-progress"], capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 2 and expect in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.avi").exists()


def test_gymnasium_record_video_uses_the_same_frames(tmp_path):
    pytest.importorskip("moviepy", reason="Gymnasium's RecordVideo writes through moviepy (the test extra installs it)")
    env = gym.wrappers.RecordVideo(
        gym.make("DriveSim/Highway-v0", render_mode="rgb_array", cfg=SHORT), str(tmp_path / "videos"), episode_trigger=lambda _e: True
    )
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, term, trunc, _ = env.step(np.array([0.0, 0.3], np.float32))
        steps, done = steps + 1, term or trunc
    env.close()
    (video,) = (tmp_path / "videos").glob("*.mp4")
    frames, fps = _decode(video)
    assert frames.shape == (steps + 1, 360, 640, 3) and fps == pytest.approx(10.0)
