from __future__ import annotations

import json
import subprocess
import sys

import yaml

from agents.cli import main
from drive_sim.scenarios import scenario_names


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True, timeout=600)


def test_train_writes_a_complete_run_folder(tmp_path):
    rc = main(
        ["train", "--total-steps", "128", "--eval-episodes", "1", "--out-dir", str(tmp_path), "--no-progress", "--scenario", "lanekeep"]
    )
    assert rc == 0
    run = tmp_path / "lanekeep-ppo-lidar-s0"
    for name in ("config.yaml", "versions.json", "model.zip", "eval.csv", "eval.json"):
        assert (run / name).is_file(), name
    assert list((run / "tb").rglob("events.out.tfevents*")), "TensorBoard logs"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["train"]["seed"] == 0 and cfg["env_id"] == "DriveSim/LaneKeep-v0"
    assert json.loads((run / "eval.json").read_text())["episodes"] == 1
    # A second run with the same name never overwrites the first.
    assert (
        main(
            ["train", "--total-steps", "64", "--eval-episodes", "0", "--out-dir", str(tmp_path), "--no-progress", "--scenario", "lanekeep"]
        )
        == 0
    )
    assert (tmp_path / "lanekeep-ppo-lidar-s0-1" / "model.zip").is_file()
    assert (run / "model.zip").is_file()


def test_train_q_learning_writes_its_table_and_learning_curve(tmp_path):
    args = ["train", "--algo", "q", "--action", "discrete", "--total-steps", "1500", "--eval-episodes", "1"]
    assert main([*args, "--out-dir", str(tmp_path), "--no-progress", "--scenario", "lanekeep"]) == 0
    run = tmp_path / "lanekeep-q-lidar-s0"
    for name in (
        "config.yaml",
        "versions.json",
        "status.json",
        "model.npz",
        "train_episodes.csv",
        "eval.csv",
        "eval.json",
        "learning_curve.png",
    ):
        assert (run / name).is_file(), name
    from agents.q_learning import QLearningAgent

    # the shipped lanekeep-q-lidar config: nine steering values with cruise control
    assert QLearningAgent.load(run / "model.npz").q.shape[1] == 9
    assert yaml.safe_load((run / "config.yaml").read_text())["source"] == "shipped:lanekeep-q-lidar"
    assert len((run / "train_episodes.csv").read_text().splitlines()) > 2


def test_bad_input_one_line_nonzero_exit(tmp_path):
    for args, expect in [
        (["train", "--algo", "td3"], "algo: 'td3' is not allowed; allowed: ppo, dqn, sac, q"),
        (["train", "--algo", "sac", "--action", "discrete"], "sac needs --action continuous"),
        (["train", "--config", "nowhere.yaml"], "config: nowhere.yaml does not exist"),
        (["train", "--resume", "nowhere"], "resume: nowhere is not a run folder"),
        (["train", "--algo", "q", "--action", "discrete", "--obs", "camera"], "q needs a vector observation"),
        (["train", "--obs", "radar"], "obs: 'radar' is not allowed"),
        (["train", "--algo", "dqn"], "dqn needs --action discrete"),
        (["train", "--scenario", "moon"], "scenario: 'moon' is not known"),
        (["train", "--total-steps", "many"], "argument --total-steps: invalid int value"),
        (["perf", "--repeats", "0", "--out", ""], "repeats: must be at least 1"),
        (["fly"], "invalid choice: 'fly'"),
    ]:
        proc = _run(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], (args, proc.stderr)
        assert proc.stdout == ""


def test_scenarios_lists_library():
    proc = _run("scenarios")
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == scenario_names() and {"highway", "lanekeep", "highway-ice"} <= set(names)
    assert all(len(line.split(None, 1)[1]) > 20 for line in proc.stdout.splitlines()), "a description for each"


def test_perf_quick_writes_report(tmp_path):
    out = tmp_path / "perf.md"
    proc = _run("perf", "--quick", "--no-progress", "--out", str(out), "--cpu", "-1")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.with_suffix(".json").read_text())
    for key in ("env_lidar", "env_camera", "env_multi", "raw_physics_control_period", "raw_lidar_reading", "raw_camera_frame"):
        assert data["rates"][key] > 0
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "camera_vs_raw_camera" in out.read_text()
