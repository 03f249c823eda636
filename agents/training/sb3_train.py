"""What training an SB3 model needs beyond the model itself: the model built for a run, its vector env, normalisation, replay buffers.

- ``build_model``: a new PPO, DQN or SAC on a vector env with the project's policy
  (``agents.policies.sb3.policy_kwargs``) and a config's checked hyperparameters.
- ``make_vec_env``: the training vector env, subprocess workers for ``n_envs > 1`` (each pinned to a
  core); camera frames are transposed to channel-first by an explicit ``VecTransposeImage`` (the
  extractors state that they take (C, H, W)); optional ``VecNormalize``.
- ``VecNormalize`` statistics as JSON and replay buffers as ``.npz`` (SB3 pickles both), so a
  checkpoint resumes without unpickling.
- ``configure_torch``: torch set up for small-batch RL on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.policies.sb3 import PolicyConfig, algo_class, check_hyperparams, policy_kwargs
from agents.training.workers import _pin_worker, ignore_stop_signals_in_workers
from drive_sim.config import ConfigError


def configure_torch(threads: int) -> None:
    """Torch set up for small-batch RL on the CPU, process-wide.

    ``threads`` intra-op threads (the networks are small, and extra threads spin against the env
    workers for the same cores: measured 50 % system time and a third of the throughput with the
    default), and no argument checks in ``torch.distributions``: SB3 builds a fresh Normal or
    Categorical for every action and every minibatch, and the checks were a sixth of the trainer's
    per-step time (cProfile of PPO on the lidar policy; the values are produced by the policy
    itself, never by a user).
    """
    import torch

    torch.set_num_threads(threads)
    torch.distributions.Distribution.set_default_validate_args(False)


def build_model(algo: str, venv: Any, hyperparams: Mapping[str, Any], policy: PolicyConfig, seed: int, tensorboard_log: str | None) -> Any:
    """A new SB3 model on ``venv`` (already transposed and normalised as wanted)."""
    cls = algo_class(algo)
    hp = check_hyperparams(algo, hyperparams)
    if algo == "sac" and not isinstance(venv.action_space, spaces.Box):
        raise ConfigError("action: sac needs continuous actions (--action continuous)")
    if algo == "dqn" and not isinstance(venv.action_space, spaces.Discrete):
        raise ConfigError("action: dqn needs a discrete action space (--action discrete or meta)")
    policy_name = "MultiInputPolicy" if isinstance(venv.observation_space, spaces.Dict) else "MlpPolicy"
    try:
        model = cls(
            policy_name,
            venv,
            policy_kwargs=policy_kwargs(policy, venv.observation_space, algo),
            seed=seed,
            device="cpu",
            verbose=0,
            tensorboard_log=tensorboard_log,
            **hp,
        )
    except (AssertionError, ValueError, TypeError, RuntimeError) as err:
        # SB3 checks its arguments with asserts (a batch size of -1) and torch with its own errors (a layer of 0).
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"hyperparams: {cls.__name__} refuses them ({why})") from None
    if policy.cnn_weights:
        from perception import read_net_file
        from perception.encoders import load_encoder_weights

        try:
            state = read_net_file(Path(policy.cnn_weights))["state_dict"]
        except ValueError as err:
            raise ConfigError(f"policy.cnn_weights: {str(err).removeprefix('model: ')}") from None
        try:
            load_encoder_weights(model.policy.features_extractor, state, policy.cnn_weights)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    return model


# ---------------------------------------------------------------------------------------------- vector envs
def make_env_fn(env_id: str, env_kwargs: Mapping[str, Any], seed: int, rank: int, monitor_path: str | None) -> Callable[[], gym.Env]:
    """Thunk for one (Monitor-wrapped) training env; seeded at its first reset with ``seed + rank``."""
    kwargs = dict(env_kwargs)

    def thunk() -> gym.Env:
        from stable_baselines3.common.monitor import Monitor

        import envs  # noqa: F401  (registers the ids inside spawned workers)

        ignore_stop_signals_in_workers()
        _pin_worker(rank)
        env = gym.make(env_id, **kwargs)
        env.reset(seed=seed + rank)
        path = None if monitor_path is None else f"{monitor_path}/{rank}"
        return Monitor(env, path, info_keywords=("is_success", "route_completion", "collided", "off_road"), override_existing=False)

    return thunk


def make_vec_env(
    env_id: str,
    env_kwargs: Mapping[str, Any],
    n_envs: int,
    seed: int,
    *,
    monitor_dir: str | None = None,
    normalisation: Normalisation | None = None,
    vec_env: str = "subproc",
    workers: int = 0,
) -> Any:
    """Training vector env: ``SubprocVecEnv`` when ``n_envs > 1`` (or the batched worlds), images transposed, optionally normalised.

    Env ``i`` is seeded ``seed + i`` at its first reset (SB3 vector envs are seeded through
    ``VecEnv.seed``, which applies at the next reset; the thunk resets once itself, so the seed holds
    however the vec env resets). ``vec_env="batched"``: ``n_envs`` worlds over ``workers``
    processes (0: one per core), each a batched ``DrivingVectorEnv`` (``agents.training.batched_vec``),
    with the same episodes as the subprocess envs.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecTransposeImage
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    if monitor_dir is not None:
        Path(monitor_dir).mkdir(parents=True, exist_ok=True)
    vec: VecEnv
    if vec_env == "batched":
        import os

        from agents.training.batched_vec import BatchedVecEnv

        if monitor_dir is not None:
            raise ConfigError("train.vec_env: batched writes no Monitor files; use subproc for monitor_dir")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        vec = BatchedVecEnv(env_id, env_kwargs, n_envs, seed, workers=workers or min(cores, n_envs))
    else:
        fns = [make_env_fn(env_id, env_kwargs, seed, i, monitor_dir) for i in range(n_envs)]
        vec = SubprocVecEnv(fns, start_method="spawn") if n_envs > 1 else DummyVecEnv(fns)
        vec.seed(seed)
    if _has_image(vec.observation_space):
        vec = VecTransposeImage(vec)  # the extractors take (C, H, W); done here, not by SB3's _wrap_env
    if normalisation is not None:
        vec = normalisation.wrap(vec)
    return vec


def _has_image(space: spaces.Space) -> bool:
    subs = space.spaces.values() if isinstance(space, spaces.Dict) else [space]
    return any(isinstance(s, spaces.Box) and s.dtype == np.uint8 and len(s.shape) == 3 for s in subs)


# ---------------------------------------------------------------------------------------------- normalisation
@dataclass(frozen=True)
class Normalisation:
    """``VecNormalize`` settings (vector observations only; images are scaled inside the CNN).

    Attributes:
        obs: normalise observations by running mean and variance.
        reward: scale rewards by the running standard deviation of the discounted return.
        clip_obs: clip normalised observations to +-this.
        gamma: discount of the return used for reward scaling (the algorithm's gamma).
    """

    obs: bool = False
    reward: bool = False
    clip_obs: float = 10.0
    gamma: float = 0.99

    @property
    def active(self) -> bool:
        """Whether anything is normalised."""
        return self.obs or self.reward

    def wrap(self, vec: Any) -> Any:
        """``vec`` wrapped in VecNormalize (or returned as is when nothing is normalised)."""
        from stable_baselines3.common.vec_env import VecNormalize

        if not self.active:
            return vec
        if self.obs and not isinstance(vec.observation_space, spaces.Box):
            raise ConfigError("train.normalize_obs: only vector observations (lidar, kinematics) are normalised; set it false")
        return VecNormalize(vec, norm_obs=self.obs, norm_reward=self.reward, clip_obs=self.clip_obs, gamma=self.gamma)


def vecnormalize_state(vec: Any) -> dict[str, Any] | None:
    """The statistics of the VecNormalize wrapper in ``vec`` as plain JSON (None if there is none)."""
    from stable_baselines3.common.vec_env import VecNormalize

    while vec is not None and not isinstance(vec, VecNormalize):
        vec = getattr(vec, "venv", None)
    if vec is None:
        return None
    state: dict[str, Any] = {
        "norm_obs": bool(vec.norm_obs),
        "norm_reward": bool(vec.norm_reward),
        "clip_obs": float(vec.clip_obs),
        "clip_reward": float(vec.clip_reward),
        "gamma": float(vec.gamma),
        "epsilon": float(vec.epsilon),
        "ret_mean": float(np.asarray(vec.ret_rms.mean)),
        "ret_var": float(np.asarray(vec.ret_rms.var)),
        "ret_count": float(vec.ret_rms.count),
    }
    if vec.norm_obs:  # SB3 keeps observation statistics only when it normalises observations
        state.update(
            obs_mean=np.asarray(vec.obs_rms.mean, np.float64).tolist(),
            obs_var=np.asarray(vec.obs_rms.var, np.float64).tolist(),
            obs_count=float(vec.obs_rms.count),
        )
    return state


def restore_vecnormalize(vec: Any, state: Mapping[str, Any]) -> None:
    """Put saved statistics back into the VecNormalize wrapper in ``vec``."""
    from stable_baselines3.common.vec_env import VecNormalize

    while vec is not None and not isinstance(vec, VecNormalize):
        vec = getattr(vec, "venv", None)
    if vec is None:
        raise ValueError("resume: the saved run normalised its observations or rewards but the new env has no VecNormalize")
    if state["norm_obs"] != vec.norm_obs or state["norm_reward"] != vec.norm_reward:
        raise ValueError("resume: the saved normalisation settings differ from the run's config")
    if vec.norm_obs:
        vec.obs_rms.mean = np.asarray(state["obs_mean"], np.float64)
        vec.obs_rms.var = np.asarray(state["obs_var"], np.float64)
        vec.obs_rms.count = float(state["obs_count"])
    vec.ret_rms.mean = np.asarray(state["ret_mean"], np.float64)
    vec.ret_rms.var = np.asarray(state["ret_var"], np.float64)
    vec.ret_rms.count = float(state["ret_count"])


# ---------------------------------------------------------------------------------------------- replay buffers
def save_replay_buffer(buffer: Any, path: str | Path) -> None:
    """The filled part of an SB3 (Dict)ReplayBuffer as ``.npz`` (SB3's own save pickles it)."""
    n = buffer.buffer_size if buffer.full else buffer.pos
    arrays: dict[str, np.ndarray] = {"pos": np.asarray(buffer.pos), "full": np.asarray(buffer.full), "size": np.asarray(n)}
    for name in ("observations", "next_observations"):
        value = getattr(buffer, name, None)
        if isinstance(value, dict):
            for k, v in value.items():
                arrays[f"{name}.{k}"] = v[:n]
        elif value is not None:
            arrays[name] = value[:n]
    for name in ("actions", "rewards", "dones", "timeouts"):
        arrays[name] = getattr(buffer, name)[:n]
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_replay_buffer(buffer: Any, path: str | Path) -> None:
    """Fill ``buffer`` (same spaces and size, empty) from ``save_replay_buffer``'s file."""
    with np.load(path, allow_pickle=False) as z:
        n = int(z["size"])
        if n > buffer.buffer_size:
            raise ValueError(f"resume: {path} holds {n} transitions, more than the buffer's {buffer.buffer_size}")
        for key in z.files:
            if key in ("pos", "full", "size"):
                continue
            name, _, sub = key.partition(".")
            target = getattr(buffer, name)
            (target[sub] if sub else target)[:n] = z[key]
        buffer.pos = int(z["pos"])
        buffer.full = bool(z["full"])
