"""Training from a config.

One call builds the vector env, trains (PPO and DQN with stable-baselines3, tabular Q-learning
with ``agents.q_learning``), evaluates on held-out seeds and writes one run folder.

Run folder: ``config.yaml`` (with the seed), ``versions.json``, the model (``model.zip`` and
``tb/`` TensorBoard logs for SB3; ``model.npz`` and ``episodes.csv``, one row per training
episode, for Q-learning), ``eval.csv`` (one row per evaluation episode) and ``eval.json`` (summary).
Training env seeds start at 1000; evaluation seeds are 0, 1, 2, ... (disjoint, as in MetaDrive's
generalisation split).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs
from agents.runs import atomic_write, new_run_dir, versions, write_json, write_yaml
from drive_sim.config import ConfigError, require, to_dict

ALGOS = ("ppo", "dqn", "q")
TRAIN_SEED_BASE = 1000


@dataclass(frozen=True)
class TrainConfig:
    """What to train.

    Attributes:
        scenario: scenario name (``highway``, ``lanekeep``) or a registered DriveSim id.
        algo: ``ppo``, ``dqn`` or ``q`` (tabular Q-learning, ``agents.q_learning``); dqn and q
            need ``action: discrete`` (or ``meta``), q a vector observation (``lidar``, ``kinematics``).
        obs: observation type (``lidar``, ``camera``, ``multi``).
        action: action type (``continuous``, ``discrete``).
        total_steps: environment steps to train for.
        n_envs: parallel environments (subprocesses when more than one).
        seed: run seed; training env ``i`` is seeded ``1000 + 100 * seed + i``.
        eval_episodes: evaluation episodes on seeds 0, 1, ... after training.
        out_dir: where run folders are created.
        name: run folder name (default ``<scenario>-<algo>-<obs>-s<seed>``).
    """

    scenario: str = "highway"
    algo: str = "ppo"
    obs: str = "lidar"
    action: str = "continuous"
    total_steps: int = 20_000
    n_envs: int = 1
    seed: int = 0
    eval_episodes: int = 5
    out_dir: str = "runs"
    name: str | None = None

    def __post_init__(self) -> None:
        require(self.algo in ALGOS, "algo", f"{self.algo!r} is not allowed; allowed: {', '.join(ALGOS)}")
        require(self.obs in envs.OBS_TYPES, "obs", f"{self.obs!r} is not allowed; allowed: {', '.join(envs.OBS_TYPES)}")
        require(self.action in envs.ACTION_TYPES, "action", f"{self.action!r} is not allowed; allowed: {', '.join(envs.ACTION_TYPES)}")
        needs_discrete = self.algo in ("dqn", "q")
        require(not needs_discrete or self.action in ("discrete", "meta"), "action", f"{self.algo} needs --action discrete or meta")
        require(self.algo != "q" or self.obs in ("lidar", "kinematics"), "obs", "q needs a vector observation: --obs lidar or kinematics")
        require(self.total_steps >= 1, "total_steps", f"must be at least 1, got {self.total_steps}")
        require(1 <= self.n_envs <= 64, "n_envs", f"must be between 1 and 64, got {self.n_envs}")
        require(self.seed >= 0, "seed", f"must be non-negative, got {self.seed}")
        require(self.eval_episodes >= 0, "eval_episodes", f"must be non-negative, got {self.eval_episodes}")
        env_id(self.scenario)

    @property
    def run_name(self) -> str:
        """Folder name of the run."""
        return self.name or f"{self.scenario}-{self.algo}-{self.obs}-s{self.seed}"


def env_id(scenario: str) -> str:
    """Registered id for a scenario library name or a registered id."""
    if scenario in envs.ENV_IDS:
        return scenario
    by_name = {name: i for i, name in envs.ENV_IDS.items() if i != "DriveSim/Custom-v0"}
    if scenario in by_name:
        return by_name[scenario]
    raise ConfigError(f"scenario: {scenario!r} is not known; known: {', '.join(sorted(by_name))} (or a DriveSim/* id)")


def _policy_name(obs: str) -> str:
    return {"lidar": "MlpPolicy", "camera": "CnnPolicy", "multi": "MultiInputPolicy"}[obs]


def make_vec_env(cfg: TrainConfig) -> Any:
    """The training vector env (Monitor-wrapped, seeded from ``TRAIN_SEED_BASE``)."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    return sb3_make_vec_env(
        # "envs:" makes gym.make import the registering module inside spawned workers.
        f"envs:{env_id(cfg.scenario)}",
        n_envs=cfg.n_envs,
        seed=TRAIN_SEED_BASE + 100 * cfg.seed,
        vec_env_cls=SubprocVecEnv if cfg.n_envs > 1 else DummyVecEnv,
        env_kwargs={"obs_type": cfg.obs, "action_type": cfg.action},
        monitor_kwargs={"info_keywords": ("is_success", "route_completion")},
    )


def evaluate(model: Any, cfg: TrainConfig, episodes: int) -> list[dict[str, Any]]:
    """Run ``episodes`` deterministic episodes on seeds 0, 1, ...; one dict per episode.

    ``model`` is an SB3 model (``predict``) or an Agent (``act``).
    """
    if hasattr(model, "predict"):

        def act(obs: Any) -> Any:
            return model.predict(obs, deterministic=True)[0]
    else:

        def act(obs: Any) -> Any:
            return model.act(obs, deterministic=True)

    rows = []
    env = gym.make(env_id(cfg.scenario), obs_type=cfg.obs, action_type=cfg.action)
    try:
        for seed in range(episodes):
            obs, info = env.reset(seed=seed)
            ret, steps, done = 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, info = env.step(act(obs))
                ret += float(reward)
                steps += 1
                done = terminated or truncated
            rows.append(
                {
                    "seed": seed,
                    "return": round(ret, 4),
                    "steps": steps,
                    "success": bool(info["is_success"]),
                    "collided": bool(info["collided"]),
                    "off_road": bool(info["off_road"]),
                    "route_completion": round(float(info["route_completion"]), 4),
                }
            )
    finally:
        env.close()
    return rows


def train(cfg: TrainConfig, *, progress: bool = True) -> Path:
    """Train, evaluate and write the run folder; returns its path."""
    run = new_run_dir(cfg.out_dir, cfg.run_name)
    write_yaml(run / "config.yaml", {"train": to_dict(cfg), "env_id": env_id(cfg.scenario)})
    write_json(run / "versions.json", versions())
    model: Any
    if cfg.algo == "q":
        model = _train_q(cfg, run, progress)
    else:
        model = _train_sb3(cfg, run, progress)
    _write_eval(run, cfg, evaluate(model, cfg, cfg.eval_episodes))
    return run


def _train_q(cfg: TrainConfig, run: Path, progress: bool) -> Any:
    """Tabular Q-learning; writes ``model.npz`` and ``episodes.csv`` (one row per training episode)."""
    from agents.q_learning import QLearningConfig, Schedule, train_q_learning

    eid = env_id(cfg.scenario)
    qcfg = QLearningConfig(
        learning_rate=Schedule(0.5, 0.1, cfg.total_steps), epsilon=Schedule(1.0, 0.05, max(1, int(0.6 * cfg.total_steps)))
    )

    def make_env() -> gym.Env:
        return gym.make(eid, obs_type=cfg.obs, action_type=cfg.action)

    result = train_q_learning(make_env, qcfg, cfg.total_steps, n_envs=cfg.n_envs, seed=TRAIN_SEED_BASE + 100 * cfg.seed, progress=progress)
    atomic_write(run / "model.npz", lambda p: result.agent.save(p))
    _write_csv(run / "episodes.csv", result.episodes)
    return result.agent


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda p: p.write_text(buf.getvalue(), encoding="utf-8"))


def _train_sb3(cfg: TrainConfig, run: Path, progress: bool) -> Any:
    """PPO or DQN through stable-baselines3; writes ``model.zip`` and ``tb/``."""
    from stable_baselines3 import DQN, PPO

    vec = make_vec_env(cfg)
    try:
        algo_cls = PPO if cfg.algo == "ppo" else DQN
        kwargs: dict[str, Any] = {"seed": cfg.seed, "verbose": 0, "device": "cpu", "tensorboard_log": str(run / "tb")}
        if cfg.algo == "ppo":
            kwargs.update(n_steps=max(64, 1024 // cfg.n_envs), batch_size=64)
        else:
            kwargs.update(learning_starts=min(1000, cfg.total_steps // 2), buffer_size=50_000)
        model = algo_cls(_policy_name(cfg.obs), vec, **kwargs)
        model.learn(total_timesteps=cfg.total_steps, progress_bar=progress, tb_log_name="train")
        atomic_write(run / "model.zip", lambda p: model.save(p))
    finally:
        vec.close()
    return model


def _write_eval(run: Path, cfg: TrainConfig, rows: list[dict[str, Any]]) -> None:
    _write_csv(run / "eval.csv", rows)
    summary = {
        "episodes": len(rows),
        "seeds": [r["seed"] for r in rows],
        "mean_return": float(np.mean([r["return"] for r in rows])) if rows else None,
        "success_rate": float(np.mean([r["success"] for r in rows])) if rows else None,
        "mean_route_completion": float(np.mean([r["route_completion"] for r in rows])) if rows else None,
        "total_steps": cfg.total_steps,
    }
    write_json(run / "eval.json", summary)
