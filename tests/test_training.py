"""Training infrastructure: extractors, model files, agents, configs, resume after a signal, learning."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from gymnasium import spaces

import envs  # noqa: F401
from agents.policies.base import Agent, AgentEnv
from agents.policies.loader import load_agent
from agents.policies.random_agent import RandomAgent
from agents.policies.sb3 import PolicyConfig, SB3Agent, load_model, model_meta, save_model
from agents.training.config import RunConfig, TrainConfig, resolve_config
from agents.training.sb3_train import build_model, make_vec_env
from drive_sim.config import ConfigError
from perception.encoders import CameraCNN, MultiEncoder, VectorEncoder, extractor_for

SMALL = PolicyConfig(net_arch=(32,), encoder_hidden=(32,), cnn_channels=(8, 16, 16), cnn_features_dim=32)
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- extractors
def test_camera_cnn_takes_channel_first_uint8_and_scales_inside():
    space = spaces.Box(0, 255, (3, 84, 84), np.uint8)
    cnn = CameraCNN(space, features_dim=64)
    frames = torch.randint(0, 256, (2, 3, 84, 84), dtype=torch.uint8)
    out = cnn(frames)
    assert out.shape == (2, 64)
    # dividing by 255 happens inside: white frames in bytes and in floats give the same features
    assert torch.allclose(cnn(frames), cnn(frames.float()))
    with pytest.raises(ValueError, match="channel-last"):
        CameraCNN(spaces.Box(0, 255, (84, 84, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8 image"):
        CameraCNN(spaces.Box(-1, 1, (3, 84, 84), np.float32))


def test_multi_and_vector_encoders():
    space = spaces.Dict(
        {
            "camera": spaces.Box(0, 255, (3, 64, 64), np.uint8),
            "lidar": spaces.Box(0, 1, (16,), np.float32),
            "state": spaces.Box(-1, 1, (5,)),
        }
    )
    enc = MultiEncoder(space, cnn_features_dim=16, channels=(8, 8, 8), hidden=(12,))
    batch = {k: torch.as_tensor(np.stack([s.sample() for _ in range(3)])) for k, s in space.spaces.items()}
    assert enc(batch).shape == (3, 28) and enc.features_dim == 28
    assert extractor_for(space) is MultiEncoder
    assert extractor_for(spaces.Box(-1, 1, (7,))) is VectorEncoder
    with pytest.raises(ValueError, match="1-D Box"):
        VectorEncoder(spaces.Box(0, 255, (3, 64, 64), np.uint8))


# ---------------------------------------------------------------------------------------------- model files
def _model(algo: str, obs: str, action: str, tmp_path: Path):
    vec = make_vec_env("DriveSim/LaneKeep-v0", {"obs_type": obs, "action_type": action}, 1, 1000)
    hp = {
        "ppo": {"n_steps": 32, "batch_size": 16},
        "dqn": {"learning_starts": 10, "buffer_size": 200},
        "sac": {"learning_starts": 10, "buffer_size": 200},
    }
    model = build_model(algo, vec, hp[algo], SMALL, seed=0, tensorboard_log=None)
    model.learn(64)
    meta = model_meta(algo, "DriveSim/LaneKeep-v0", obs, action, SMALL, hp[algo])
    return model, meta, vec


@pytest.mark.parametrize(
    ("algo", "obs", "action"),
    [("ppo", "lidar", "continuous"), ("dqn", "lidar", "discrete"), ("sac", "lidar", "continuous"), ("ppo", "camera", "continuous")],
)
def test_sb3_save_load_round_trip_gives_identical_actions(algo, obs, action, tmp_path):
    model, meta, vec = _model(algo, obs, action, tmp_path)
    try:
        agent = SB3Agent(model, meta)
        path = tmp_path / "m.zip"
        agent.save(path)
        loaded = load_agent(str(path))
        assert isinstance(loaded, Agent) and loaded.algo == algo
        env = gym.make("DriveSim/LaneKeep-v0", obs_type=obs, action_type=action)
        obs_, _ = env.reset(seed=3)
        for _ in range(10):
            a, b = agent.act(obs_), loaded.act(obs_)
            np.testing.assert_array_equal(a, b)
            obs_, *_ = env.step(a)
        env.close()
    finally:
        vec.close()


def test_model_files_load_without_unpickling_and_bad_files_fail_in_one_line(tmp_path):
    model, meta, vec = _model("ppo", "lidar", "continuous", tmp_path)
    vec.close()
    good = tmp_path / "ppo.zip"
    save_model(model, good, meta)
    # A pickled entry drive-sim does not rebuild is refused, not unpickled.
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "data":
                d = json.loads(data)
                d["payload"] = {":type:": "<class 'function'>", ":serialized:": "gAR9lC4="}
                data = json.dumps(d).encode()
            dst.writestr(item, data)
    with pytest.raises(ValueError, match="refusing to unpickle"):
        load_model(evil)
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    plain = tmp_path / "plain.zip"
    model.save(plain)  # SB3's own file: no drive_sim.json
    for path, algo, expect in [
        (tmp_path / "missing.zip", None, "does not exist"),
        (truncated, None, "not a complete model file"),
        (plain, None, "not written by drive-sim"),
        (good, "dqn", "holds a ppo model, not dqn"),
    ]:
        with pytest.raises(ValueError, match=expect) as err:
            load_model(path, algo=algo)
        assert "\n" not in str(err.value)


def test_random_and_expert_agents_round_trip(tmp_path):
    env = gym.make("DriveSim/Highway-v0", obs_type="kinematics", action_type="continuous")
    obs, _ = env.reset(seed=0)
    rnd = RandomAgent(env.action_space, seed=5)
    rnd.save(tmp_path / "random.json")
    again = load_agent(str(tmp_path / "random.json"))
    np.testing.assert_array_equal([rnd.act(obs) for _ in range(5)], [again.act(obs) for _ in range(5)])
    expert = load_agent("expert", env)
    expert.save(tmp_path / "expert.json")
    copy = load_agent(str(tmp_path / "expert.json"))
    expert.reset()
    copy.reset()
    np.testing.assert_array_equal(expert.act(obs), copy.act(obs))
    env.close()
    with pytest.raises(ValueError, match="allowed: zoo:NAME"):
        load_agent("gpt")


# ---------------------------------------------------------------------------------------------- configs
def test_every_shipped_config_is_valid():
    names = sorted(p.stem for p in (ROOT / "agents" / "training" / "configs").glob("*.yaml"))
    assert {"highway-ppo-lidar", "highway-dqn-kinematics", "lanekeep-ppo-camera", "lanekeep-q-lidar"} <= set(names)
    for name in names:
        scenario, algo, obs = name.split("-", 2)
        cfg, source = resolve_config({"scenario": scenario, "algo": algo, "obs": obs})
        assert source == f"shipped:{name}" and cfg.train.algo == algo and cfg.train.obs == obs


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, expect in [
        ("train: {algo: ppo}\nhyperparams: {n_stepz: 5}\n", "hyperparams.n_stepz: not a PPO argument"),
        ("train: {algo: ppo, totl_steps: 5}\n", "unknown config key 'train.totl_steps'"),
        ("train: {algo: ppo}\npolicy: {net_arch: [0]}\n", "policy.net_arch"),
        ("train: {algo: q, action: discrete}\nhyperparams: {discretiser: {bins: [3]}}\n", "q_learning.bins"),
        ("train: {algo: ppo}\nenv: {action: {steer_binz: 3}}\n", "action.steer_binz"),
        ("trian: {}\n", "unknown section 'trian'"),
        ("train: {algo: ppo, vec_env: ray}\n", "vec_env: 'ray' is not allowed; allowed: subproc, batched"),
        ("train: {algo: ppo, n_envs: 2, vec_env: batched, workers: 3}\n", "workers: must be between 0"),
        ("train: [\n", "not valid YAML"),
    ]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=expect.replace(".", r"\.").replace("[", r"\[")):
            resolve_config({}, bad)
    assert RunConfig().train.algo == "ppo"


# ---------------------------------------------------------------------------------------------- resume
def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _worker_signal_handlers(queue) -> None:
    import signal as sig

    from agents.training.sb3_train import ignore_stop_signals_in_workers

    ignore_stop_signals_in_workers()
    queue.put((sig.getsignal(sig.SIGINT) == sig.SIG_IGN, sig.getsignal(sig.SIGTERM) == sig.SIG_IGN))


def test_env_workers_ignore_ctrl_c_and_sigterm_sent_to_the_group_and_the_trainer_does_not():
    """A SIGTERM to the process group (timeout, kill -- -PGID) killed the workers: broken pipe, failed run, no checkpoint."""
    import multiprocessing

    from agents.training.sb3_train import ignore_stop_signals_in_workers

    ctx = multiprocessing.get_context("spawn")  # as SubprocVecEnv starts them
    queue = ctx.Queue()
    child = ctx.Process(target=_worker_signal_handlers, args=(queue,))
    child.start()
    assert queue.get(timeout=60) == (True, True)
    child.join(timeout=60)
    before = signal.getsignal(signal.SIGTERM)
    ignore_stop_signals_in_workers()  # in the trainer's own process: nothing changes
    assert signal.getsignal(signal.SIGTERM) == before != signal.SIG_IGN


def test_interrupt_then_resume_continues_to_the_same_step_count(tmp_path):
    """Train 2N steps, SIGINT the process group after step N, resume: 2N steps, and the optimiser went on."""
    n_steps, n = 64, 512
    cfg = {
        "train": {
            "scenario": "lanekeep",
            "algo": "ppo",
            "obs": "lidar",
            "total_steps": 2 * n,
            "n_envs": 2,
            "eval_episodes": 1,
            "checkpoint_every_steps": n,
            "eval_every_steps": n,
            "val_episodes": 1,
            "normalize_obs": True,
            "normalize_reward": True,
        },
        "hyperparams": {"n_steps": n_steps, "batch_size": 64, "n_epochs": 2},
        "policy": {"net_arch": [32], "encoder_hidden": [32]},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "agents.cli", "train", "--config", str(path), "--out-dir", str(tmp_path / "runs"), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    run = tmp_path / "runs" / "lanekeep-ppo-lidar-s0"
    deadline = time.monotonic() + 240
    while not (run / "checkpoints" / f"step_{n:09d}.zip").is_file():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the trainer and its env workers
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and len(err.strip().splitlines()) == 1
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and n <= status["steps"] < 2 * n and status["steps"] % (2 * n_steps) == 0
    interrupted, _ = load_model(run / status["checkpoint"])
    assert interrupted.num_timesteps == status["steps"]

    proc = subprocess.run(
        [sys.executable, "-m", "agents.cli", "train", "--resume", str(run), "--no-progress"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    final, meta = load_model(run / "model.zip")
    assert final.num_timesteps == 2 * n
    # Not a restart: the update count and Adam's step count cover all 2N steps.
    updates = (2 * n) // (2 * n_steps)
    assert final._n_updates == updates * 2
    adam_steps = {int(s["step"]) for s in final.policy.optimizer.state_dict()["state"].values()}
    assert adam_steps == {updates * 2 * (2 * n_steps // 64)}
    assert meta["normalisation"]["obs_count"] > 2 * n  # the statistics carried on too
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    # TensorBoard has the env's metrics and the validation scores; validation rounds at N and 2N.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in (run / "tb").rglob("events.out.tfevents*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert {"env/success", "env/collided", "env/route_completion", "env/speed_ratio", "eval/success_rate"} <= tags, tags
    evals = (run / "evaluations.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in evals[1:]] == [str(n), str(2 * n)]
    assert (run / "best_model.zip").is_file() and (run / "learning_curve.png").is_file()
    assert json.loads((run / "eval.json").read_text())["model"] == "best_model.zip"
    # Bad resumes change nothing in the folder.
    before = _tree_digest(run)
    for args, expect in [
        (["--resume", str(run)], "has finished"),
        (["--resume", str(tmp_path)], "not a run folder"),
        (["--resume", str(run), "--seed", "2"], "drop --seed"),
    ]:
        bad = subprocess.run([sys.executable, "-m", "agents.cli", "train", *args], capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and expect in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert _tree_digest(run) == before


def test_training_envs_start_from_their_seed():
    vec = make_vec_env("DriveSim/LaneKeep-v0", {"obs_type": "lidar", "action_type": "continuous"}, 2, 1000)
    first = vec.reset()
    vec.close()
    env = gym.make("DriveSim/LaneKeep-v0", obs_type="lidar")
    for i in range(2):
        np.testing.assert_array_equal(first[i], env.reset(seed=1000 + i)[0])
    env.close()


def test_subprocess_workers_are_pinned_one_core_each_and_the_trainer_is_not():
    import concurrent.futures
    import multiprocessing

    from agents.training.sb3_train import _pin_worker

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        pytest.skip("pinning applies to Linux machines with at least 2 allowed cores")
    before = os.sched_getaffinity(0)
    assert _pin_worker(0) is None and os.sched_getaffinity(0) == before  # the trainer stays free
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx, max_tasks_per_child=1) as pool:  # a fresh worker each
        pinned = [pool.submit(_pin_worker, rank).result() for rank in range(3)]
    assert pinned == [{cores[0]}, {cores[1 % len(cores)]}, {cores[2 % len(cores)]}]


@pytest.mark.parametrize(("obs_on", "reward_on"), [(True, False), (False, True)])
def test_normalisation_state_round_trips(obs_on, reward_on):
    from agents.training.sb3_train import Normalisation, restore_vecnormalize, vecnormalize_state

    norm = Normalisation(obs=obs_on, reward=reward_on)
    vec = make_vec_env("DriveSim/LaneKeep-v0", {"obs_type": "lidar", "action_type": "continuous"}, 1, 1000, normalisation=norm)
    vec.reset()
    for _ in range(5):
        vec.step(np.zeros((1, 2), np.float32))
    state = vecnormalize_state(vec)
    assert ("obs_mean" in state) == obs_on and state["norm_reward"] == reward_on
    other = make_vec_env("DriveSim/LaneKeep-v0", {"obs_type": "lidar", "action_type": "continuous"}, 1, 1000, normalisation=norm)
    restore_vecnormalize(other, state)
    assert vecnormalize_state(other) == state
    vec.close()
    other.close()


def test_ppo_learns_to_follow_the_lane_within_a_minute():
    """A fast learning check: PPO on LaneKeep (15 s episodes) drives clearly further after 6k steps."""
    from agents.evaluation.episodes import evaluate_agent
    from agents.evaluation.metrics import aggregate

    short = {"scenario": {"time_limit_s": 15.0}}
    kwargs = {"obs_type": "lidar", "action_type": "continuous", "cfg": short}
    vec = make_vec_env("DriveSim/LaneKeep-v0", kwargs, 1, 1000)
    try:
        policy = PolicyConfig(net_arch=(64,), encoder_hidden=(64,))
        hp = {"n_steps": 512, "batch_size": 64, "n_epochs": 5, "learning_rate": 1e-3}
        model = build_model("ppo", vec, hp, policy, seed=0, tensorboard_log=None)
        meta = model_meta("ppo", "DriveSim/LaneKeep-v0", "lidar", "continuous", policy, hp, short)

        def score() -> float:
            episodes = evaluate_agent(SB3Agent(model, meta), AgentEnv("DriveSim/LaneKeep-v0", "lidar", "continuous", short), range(4))
            return aggregate(episodes)["route_completion"]

        before = score()
        model.learn(6144)
        after = score()
    finally:
        vec.close()
    print(f"route completion before {before:.3f}, after {after:.3f}")
    assert after > before + 0.1 and after > 1.5 * before, (before, after)


def test_a_run_trains_on_the_batched_vec_env(tmp_path):
    """train.vec_env: batched: 4 worlds in 2 worker processes; the run writes its model, episodes and test like any other."""
    from agents.training.trainer import train

    cfg = RunConfig(
        train=TrainConfig(
            scenario="lanekeep", algo="ppo", obs="lidar", total_steps=512, n_envs=4, vec_env="batched", workers=2,
            eval_episodes=1, out_dir=str(tmp_path), name="batched",
        ),
        hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
        policy={"net_arch": [32], "encoder_hidden": [32]},
        env={},
    )  # fmt: skip
    run = train(cfg, progress=False)
    rows = (run / "train_episodes.csv").read_text().splitlines()
    assert (run / "model.zip").is_file() and len(rows) > 1, rows[:3]
    assert {r.split(",")[1] for r in rows[1:]} <= {"0", "1", "2", "3"}  # the env column: the four worlds
