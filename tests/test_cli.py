from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from agents.cli import main
from drive_sim.scenarios import scenario_names


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    if cwd is not None:
        cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


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
    from agents.policies.q_learning import QLearningAgent

    # the shipped lanekeep-q-lidar config: nine steering values with cruise control
    assert QLearningAgent.load(run / "model.npz").q.shape[1] == 9
    assert yaml.safe_load((run / "config.yaml").read_text())["source"] == "shipped:lanekeep-q-lidar"
    assert len((run / "train_episodes.csv").read_text().splitlines()) > 2
    # validated at the end (the budget is shorter than the validation interval): the best table is tested
    assert (run / "best_model.npz").is_file() and json.loads((run / "eval.json").read_text())["model"] == "best_model.npz"
    assert (run / "evaluations.csv").read_text().splitlines()[1].startswith("1500,")


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
    keys = ("env_lidar", "env_lidar_batched", "env_camera", "env_multi", "raw_physics_control_period", "raw_lidar_reading")
    keys += ("raw_camera_frame", "raw_camera_frame_large")  # the env's size and the dataset's larger one
    perception_keys = ("perception_b1", "perception_b1_seg", "perception_b64", "perception_int8_b1", "perception_torch_b1")
    for key in (*keys, *perception_keys):  # the shipped perception net (ONNX float32, int8, PyTorch) beside the camera env
        assert data["rates"][key] > 0
    assert out.with_suffix(".png").stat().st_size > 1000
    page = out.read_text()
    assert "camera_vs_raw_camera" in page
    # Issue 16: a quick run says so, and a ratio it could not measure says why instead of nan.
    assert "**Quick run**" in page and "not measurements" in page and f"drive-sim perf --quick --out {out.as_posix()}" in page
    assert "nan" not in page


def test_perf_without_out_writes_nothing(tmp_path, monkeypatch, capsys):
    """Without --out nothing is written (the committed docs/performance.md is touched only when asked).

    The measurements are replaced by one fast stand-in (the quick run above measures them all);
    what is under test is the command's choice of whether to write.
    """
    import agents.reports.perf as perf

    seen = []
    monkeypatch.setattr(perf, "_measure_raw", lambda cfg, res: seen.append(cfg.out))
    monkeypatch.setattr(perf, "measure_camera", lambda *a: ([1.0], [1.0], [1.0]))
    monkeypatch.setattr(perf, "measure_perception", lambda *a: {})
    monkeypatch.setattr(perf, "measure_video", lambda *a, **k: [1.0])
    monkeypatch.setattr(perf, "measure_planner", lambda *a: ([1.0], [1.0], [1.0]))
    monkeypatch.setattr(perf, "_rate", lambda fn, n, repeats: (1.0, [1.0]))
    monkeypatch.chdir(tmp_path)
    assert main(["perf", "--quick", "--no-progress", "--cpu", "-1"]) == 0
    assert seen == [""] and "report:" not in capsys.readouterr().out and list(tmp_path.iterdir()) == []


def test_evaluate_any_named_agent_and_bad_model_files_fail_in_one_line(tmp_path):
    from agents.policies.random_agent import RandomAgent
    from agents.policies.sb3 import PolicyConfig, SB3Agent, model_meta
    from agents.training.sb3_train import build_model, make_vec_env

    vec = make_vec_env("DriveSim/LaneKeep-v0", {"obs_type": "lidar", "action_type": "continuous"}, 1, 1000)
    policy = PolicyConfig(net_arch=(16,), encoder_hidden=(16,))
    model = build_model("ppo", vec, {"n_steps": 16, "batch_size": 16}, policy, 0, None)
    vec.close()
    good = tmp_path / "ppo.zip"
    SB3Agent(model, model_meta("ppo", "DriveSim/LaneKeep-v0", "lidar", "continuous", policy, {})).save(good)
    out = tmp_path / "result.json"
    proc = _run("evaluate", "--agent", str(good), "--episodes", "1", "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "DriveSim/LaneKeep-v0 (lidar, continuous)" in proc.stdout
    written = json.loads(out.read_text())
    assert written["summary"]["episodes"] == 1 and written["episodes"][0]["seed"] == 0
    before = out.read_bytes()

    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-200])
    wrong = tmp_path / "ppo_as_table.npz"
    wrong.write_bytes(good.read_bytes())
    rnd = tmp_path / "random.json"
    RandomAgent(gym_space(), 0).save(rnd)
    for args, expect in [
        (["--agent", str(tmp_path / "missing.zip")], "does not exist"),
        (["--agent", str(cut)], "not a complete model file"),
        (["--agent", str(wrong)], "not a drive-sim Q table"),
        (["--agent", "zoo:nope"], "zoo:nope is not in the zoo"),
        (["--agent", "expert"], "expert needs --scenario"),
        (["--agent", str(rnd), "--scenario", "lanekeep", "--episodes", "0"], "episodes: must be at least 1"),
        (["--agent", str(good), "--out", str(out)], "exists; drive-sim never overwrites"),
    ]:
        proc = _run("evaluate", *args, "--no-progress")
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], (args, proc.stderr)
    assert out.read_bytes() == before


def gym_space():
    from gymnasium import spaces

    return spaces.Box(-1.0, 1.0, (2,))


def test_train_config_errors_leave_existing_runs_alone(tmp_path):
    existing = tmp_path / "lanekeep-ppo-lidar-s0"
    existing.mkdir()
    (existing / "model.zip").write_bytes(b"precious")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {scenario: lanekeep}\nhyperparams: {n_stepz: 8}\n")
    proc = _run("train", "--config", str(bad), "--out-dir", str(tmp_path))
    assert proc.returncode == 2 and "hyperparams.n_stepz: not a PPO argument" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "lanekeep-ppo-lidar-s0"]
    assert (existing / "model.zip").read_bytes() == b"precious"
