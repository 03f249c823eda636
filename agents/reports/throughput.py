"""Training throughput: PPO timesteps per second, drive-sim beside highway-env, measured in one run.

Both sides train the same PPO (stable-baselines3, the hyperparameters of
``agents/training/configs/highway-ppo-lidar.yaml``, 2 subprocess envs, one torch thread) for a fixed number of
timesteps after a warm-up that fills the first rollout; the figure is timesteps over wall seconds,
updates included, median of the repeats. drive-sim also trains on its batched vector env
(``train.vec_env: batched``): ``batched_worlds`` worlds over the same number of processes, with
the rollout per world shortened so that an update sees as many samples as the subprocess row's.
drive-sim trains on ``DriveSim/Highway-v0`` (lidar, continuous actions, 20 vehicles); highway-env on
``highway-fast-v0`` (the variant its docs train on; its default kinematics observation and meta
actions) when the ``bench`` extra is installed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from drive_sim.config import require


@dataclass(frozen=True)
class ThroughputConfig:
    """Sizes of the measurement.

    Attributes:
        steps: timed timesteps per repeat for drive-sim.
        highway_env_steps: timed timesteps per repeat for highway-env (it is much slower).
        repeats: repeats (the median is reported).
        n_envs: subprocess envs on each side.
        n_steps: PPO rollout length per env (smaller than training's so a repeat holds several updates).
        highway_env_ids: highway-env ids to measure (highway-v0 runs at a few steps/s: minutes per repeat).
        batched_worlds: worlds of the batched row, over ``n_envs`` processes (0: no batched row).
    """

    steps: int = 8192
    highway_env_steps: int = 1024
    repeats: int = 5
    n_envs: int = 2
    n_steps: int = 512
    highway_env_ids: tuple[str, ...] = ("highway-fast-v0",)
    batched_worlds: int = 16

    def __post_init__(self) -> None:
        for name in ("steps", "highway_env_steps", "repeats", "n_envs", "n_steps"):
            require(getattr(self, name) >= 1, name, f"must be at least 1, got {getattr(self, name)}")
        require(
            self.batched_worlds == 0 or self.batched_worlds >= self.n_envs,
            "batched_worlds",
            f"must be 0 or at least n_envs ({self.n_envs}), got {self.batched_worlds}",
        )


@dataclass
class ThroughputResult:
    """Timesteps per second by env: the median and every repeat."""

    rates: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)


def _ppo_rate(make_vec: Any, policy: str, policy_kwargs: dict[str, Any] | None, steps: int, repeats: int, n_steps: int) -> list[float]:
    from stable_baselines3 import PPO

    vec = make_vec()
    try:
        hp = {"n_steps": n_steps, "batch_size": 256, "n_epochs": 10, "learning_rate": 3e-4, "gamma": 0.99}
        model = PPO(policy, vec, policy_kwargs=policy_kwargs, device="cpu", seed=0, verbose=0, **hp)
        model.learn(n_steps * vec.num_envs)  # warm-up: workers started, first rollout and update done
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            rates.append(steps / (time.perf_counter() - t0))
        return rates
    finally:
        vec.close()


def measure_training_throughput(cfg: ThroughputConfig, *, progress: bool = True) -> ThroughputResult:
    """PPO timesteps/s on drive-sim Highway-v0 (lidar) and, if installed, highway-env's ``highway_env_ids``."""
    from tqdm import tqdm

    from agents.policies.sb3 import PolicyConfig, policy_kwargs
    from agents.training.sb3_train import configure_torch, make_vec_env

    configure_torch(1)
    res = ThroughputResult()
    tasks: list[tuple[str, Any]] = []

    def drive_sim() -> list[float]:
        def make() -> Any:
            return make_vec_env("DriveSim/Highway-v0", {"obs_type": "lidar", "action_type": "continuous"}, cfg.n_envs, 1000)

        probe = make()
        kwargs = policy_kwargs(PolicyConfig(), probe.observation_space, "ppo")
        probe.close()
        return _ppo_rate(make, "MlpPolicy", kwargs, cfg.steps, cfg.repeats, cfg.n_steps)

    tasks.append(("drive-sim Highway-v0 lidar", drive_sim))
    if cfg.batched_worlds:

        def batched() -> list[float]:
            def make() -> Any:
                return make_vec_env(
                    "DriveSim/Highway-v0",
                    {"obs_type": "lidar", "action_type": "continuous"},
                    cfg.batched_worlds,
                    1000,
                    vec_env="batched",
                    workers=cfg.n_envs,
                )

            probe = make()
            kwargs = policy_kwargs(PolicyConfig(), probe.observation_space, "ppo")
            probe.close()
            n_steps = max(1, cfg.n_steps * cfg.n_envs // cfg.batched_worlds)  # the same samples per update
            return _ppo_rate(make, "MlpPolicy", kwargs, cfg.steps, cfg.repeats, n_steps)

        tasks.append((f"drive-sim Highway-v0 lidar, batched: {cfg.batched_worlds} worlds in {cfg.n_envs} processes", batched))
    try:
        import highway_env  # noqa: F401

        for hid in cfg.highway_env_ids:

            def highway(hid: str = hid) -> list[float]:
                from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
                from stable_baselines3.common.vec_env import SubprocVecEnv

                def make() -> Any:
                    return sb3_make_vec_env(f"highway_env:{hid}", n_envs=cfg.n_envs, seed=0, vec_env_cls=SubprocVecEnv)

                return _ppo_rate(make, "MlpPolicy", {"net_arch": [256, 256]}, cfg.highway_env_steps, cfg.repeats, cfg.n_steps)

            tasks.append((f"highway-env {hid}", highway))
    except ImportError:
        pass
    for name, fn in tqdm(tasks, desc="PPO throughput", disable=not progress):
        res.samples[name] = fn()
        res.rates[name] = statistics.median(res.samples[name])
    return res
