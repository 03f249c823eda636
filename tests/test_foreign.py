"""Policies trained elsewhere (issue 17): a plain-SB3 zip, an rl-zoo3 run folder, a module:attr object.

Each is evaluated and benched by drive-sim and gives SB3's own ``evaluate_policy`` returns on the
same seeds (SB3 sums rewards in float32, hence the 1e-4); without ``--allow-pickle`` the pickled
formats are refused in one line that names the opt-in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import drive_sim  # noqa: F401  (registers the ids)
from agents.evaluation.bench import read_rows

SEEDS = (0, 1, 2)
SHORT = {"scenario": {"time_limit_s": 10.0}}


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args, "--no-progress"], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def _sb3_returns(model, make_venv) -> list[float]:
    from stable_baselines3.common.evaluation import evaluate_policy

    out = []
    for seed in SEEDS:
        venv = make_venv()
        venv.seed(seed)  # the next reset is the episode of this seed
        rewards, _ = evaluate_policy(model, venv, n_eval_episodes=1, deterministic=True, return_episode_rewards=True, warn=False)
        out.append(float(rewards[0]))
        venv.close()
    return out


@pytest.fixture(scope="module")
def plain_sb3(tmp_path_factory):
    from stable_baselines3 import PPO

    folder = tmp_path_factory.mktemp("sb3")
    env = gym.make("DriveSim/Highway-v0", cfg=SHORT)  # lidar, continuous: the ids' defaults
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=64, seed=0, device="cpu")  # SB3's default architecture
    model.learn(3072)  # a few thousand steps, as the issue asks
    model.save(folder / "ppo.zip")
    env.close()
    return folder, model


def test_a_plain_sb3_zip_needs_the_opt_in_then_matches_evaluate_policy(plain_sb3):
    from stable_baselines3.common.vec_env import DummyVecEnv

    folder, model = plain_sb3
    args = ("evaluate", "--agent", "ppo.zip", "--scenario", "highway", "--episodes", str(len(SEEDS)))
    refused = _cli(*args, cwd=folder)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1 and "--allow-pickle" in refused.stderr
    # The scenario's default time limit, as the file knows nothing of SHORT: the same env on both sides.
    r = _cli(*args, "--allow-pickle", "--out", "eval.json", cwd=folder)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("warning: loading") == 1 and "runs code stored in it" in r.stderr
    ours = [e["return"] for e in json.loads((folder / "eval.json").read_text())["episodes"]]
    theirs = _sb3_returns(model, lambda: DummyVecEnv([lambda: gym.make("DriveSim/Highway-v0")]))
    np.testing.assert_allclose(ours, theirs, atol=1e-3)  # eval.json rounds to 4 places
    assert "(lidar, continuous)" in r.stdout  # the types were found from the model's spaces
    # Benched beside a zoo policy: the same returns in the grid.
    bench = ("bench", "--agents", "ppo.zip,zoo:ppo-highway-lidar", "--scenarios", "highway", "--episodes", "3", "--workers", "1")
    b = _cli(*bench, "--out", "res", cwd=folder)
    assert b.returncode == 2 and "--allow-pickle" in b.stderr and not (folder / "res" / "episodes.csv").exists()
    b = _cli(*bench, "--out", "res", "--allow-pickle", cwd=folder)
    assert b.returncode == 0, b.stderr
    rows = read_rows(folder / "res" / "episodes.csv")
    mine = {int(r["seed"]): float(r["return"]) for r in rows if r["agent"] == "ppo.zip"}
    np.testing.assert_allclose([mine[s] for s in SEEDS], theirs, atol=1e-4)
    assert {r["agent"] for r in rows} == {"ppo.zip", "zoo:ppo-highway-lidar"}


@pytest.mark.slow  # about 25 s (an rl-zoo3 training run); its env_kwargs reading stays in the default run below
def test_an_rl_zoo3_run_folder_applies_its_env_kwargs_normalisation_and_frame_stack(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

    conf = tmp_path / "hp.yml"
    conf.write_text(
        textwrap.dedent(
            """\
            DriveSim/Highway-v0:
              n_envs: 1
              n_timesteps: 768
              policy: 'MlpPolicy'
              n_steps: 256
              batch_size: 64
              normalize: true
              frame_stack: 2
              env_kwargs: {obs_type: lidar, action_type: continuous, cfg: {scenario: {time_limit_s: 10.0}}}
            """
        )
    )
    train = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "DriveSim/Highway-v0", "--gym-packages", "drive_sim"]
    train += ["--conf-file", str(conf), "-f", "logs", "--seed", "0", "--eval-freq", "-1"]
    done = subprocess.run(train, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "logs" / "ppo" / "DriveSim-Highway-v0_1"
    assert (run / "DriveSim-Highway-v0" / "vecnormalize.pkl").is_file()
    model = PPO.load(run / "DriveSim-Highway-v0.zip", device="cpu")

    def make_venv():
        venv = DummyVecEnv([lambda: gym.make("DriveSim/Highway-v0", obs_type="lidar", action_type="continuous", cfg=SHORT)])
        venv = VecNormalize.load(str(run / "DriveSim-Highway-v0" / "vecnormalize.pkl"), venv)
        venv.training, venv.norm_reward = False, False
        return VecFrameStack(venv, 2)  # rl-zoo3's order: normalise, then stack

    theirs = _sb3_returns(model, make_venv)
    refused = _cli("evaluate", "--agent", str(run), "--episodes", "3", cwd=tmp_path)
    assert refused.returncode == 2 and "--allow-pickle" in refused.stderr
    r = _cli("evaluate", "--agent", str(run), "--episodes", "3", "--allow-pickle", "--out", "eval.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ours = [e["return"] for e in json.loads((tmp_path / "eval.json").read_text())["episodes"]]
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    # The same in the benchmark grid, beside a zoo policy.
    b = _cli(
        "bench",
        "--agents",
        f"{run},random",
        "--scenarios",
        "highway",
        "--episodes",
        "3",
        "--workers",
        "2",
        "--out",
        "res",
        "--allow-pickle",
        cwd=tmp_path,
    )
    assert b.returncode == 0, b.stderr
    assert b.stderr.count("warning: loading") == 1  # once, by the command, not by every worker
    rows = {int(r["seed"]): float(r["return"]) for r in read_rows(tmp_path / "res" / "episodes.csv") if r["agent"] == str(run)}
    np.testing.assert_allclose([rows[s] for s in SEEDS], theirs, atol=1e-4)


def test_a_module_attr_agent_is_benched(tmp_path):
    (tmp_path / "mine.py").write_text(
        textwrap.dedent(
            """\
            import numpy as np


            class Cruise:
                obs_type = "kinematics"
                action_type = "continuous"

                def act(self, obs, deterministic=True):
                    return np.array([0.0, 0.3], np.float32)
            """
        )
    )
    b = _cli(
        "bench", "--agents", "mine.py:Cruise", "--scenarios", "lanekeep", "--episodes", "2", "--workers", "1", "--out", "res", cwd=tmp_path
    )
    assert b.returncode == 0, b.stderr
    rows = read_rows(tmp_path / "res" / "episodes.csv")
    assert [r["status"] for r in rows] == ["ok", "ok"] and all(float(r["steps"]) > 5 for r in rows)
    missing = _cli("evaluate", "--agent", "mine.py:Nope", "--scenario", "lanekeep", cwd=tmp_path)
    assert missing.returncode == 2 and "mine.py has no Nope" in missing.stderr
    # A module on the path works the same (module:attr).
    r = _cli("evaluate", "--agent", "mine:Cruise", "--scenario", "lanekeep", "--episodes", "1", cwd=tmp_path)
    assert r.returncode == 0 and "(kinematics, continuous)" in r.stdout, r.stderr


def test_a_plain_sb3_zip_replays_with_the_opt_in(plain_sb3):
    folder, _ = plain_sb3
    r = _cli("replay", "--agent", "ppo.zip", "--scenario", "highway", "--max-steps", "5", "--out", "v.mp4", "--allow-pickle", cwd=folder)
    assert r.returncode == 0 and Path(folder / "v.mp4").stat().st_size > 1000, r.stderr


def test_an_rl_zoo3_runs_env_kwargs_may_hold_highway_env_config(tmp_path):
    from agents.policies.foreign import _env_kwargs_meta

    hw = {
        "config": {"observation": {"type": "Kinematics"}, "action": {"type": "DiscreteMetaAction"}, "lanes_count": 3, "initial_lane_id": 0}
    }
    meta = _env_kwargs_meta("DriveSim/Highway-v0", hw, tmp_path / "args.yml")
    assert meta["obs_type"] == "kinematics" and meta["action_type"] == "meta"
    assert meta["env_cfg"]["scenario"]["world"]["road"]["lanes"] == 3 and meta["env_cfg"]["scenario"]["world"]["ego"]["lane"] == 2
    env = gym.make("DriveSim/Highway-v0", cfg=meta["env_cfg"], obs_type=meta["obs_type"], action_type=meta["action_type"])
    made = gym.make("DriveSim/Highway-v0", **hw)
    assert env.unwrapped.config == made.unwrapped.config  # the same env the run trained on
    env.close()
    made.close()
    plain = _env_kwargs_meta("DriveSim/Highway-v0", {}, tmp_path / "args.yml")
    assert (plain["obs_type"], plain["action_type"]) == (gym.make("DriveSim/Highway-v0").unwrapped.config.observation.type, "continuous")
    with pytest.raises(ValueError, match=r"args.yml: env_kwargs \['render'\] are not drive-sim env arguments"):
        _env_kwargs_meta("DriveSim/Highway-v0", {"render": True}, tmp_path / "args.yml")
    with pytest.raises(ValueError, match="env_kwargs: config.right_lane_reward"):
        _env_kwargs_meta("DriveSim/Highway-v0", {"config": {"right_lane_reward": 0.1}}, tmp_path / "args.yml")
