"""PPO, DQN and SAC through stable-baselines3, with perception's feature extractors.

What this module adds to SB3:

- ``build_model``: the algorithm with the project's extractors (``perception.encoders``) and the
  hyperparameters of a config, checked against the algorithm's own keyword arguments (an unknown
  key is an error that names it, not a silent ``**kwargs``).
- ``make_vec_env``: the training vector env, subprocess workers for ``n_envs > 1``; camera frames
  are transposed to channel-first by an explicit ``VecTransposeImage`` (the extractors state that
  they take (C, H, W)); optional ``VecNormalize``.
- A model file that loads without unpickling. SB3's ``.zip`` stores some entries (spaces, the
  policy class, schedules) with cloudpickle, and ``BaseAlgorithm.load`` unpickles them: loading an
  untrusted file runs its code. ``save_model`` adds ``drive_sim.json`` to the zip (algorithm, env id,
  observation and action types, spaces, policy settings, hyperparameters, observation-normalisation
  statistics), and ``load_model`` rebuilds every pickled entry from it and passes them to SB3 as
  ``custom_objects``, so nothing is unpickled; a file with a pickled entry it cannot rebuild is
  refused. Weights are read with ``torch.load(weights_only=True)`` by SB3 itself.
- ``SB3Agent``: the Agent protocol over a model (observation normalisation applied in ``act``).
- Replay buffers and ``VecNormalize`` statistics saved as ``.npz``/JSON (SB3 pickles both).
"""

from __future__ import annotations

import inspect
import io
import json
import math
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from drive_sim.config import ConfigError, require

ALGOS = ("ppo", "dqn", "sac")
META_NAME = "drive_sim.json"
FORMAT_VERSION = 1
# Set by this module, never by a config.
_RESERVED = {"policy", "env", "seed", "device", "tensorboard_log", "policy_kwargs", "verbose", "_init_setup_model"}


def algo_class(algo: str) -> type:
    """The SB3 class of ``algo`` (``ppo``, ``dqn``, ``sac``)."""
    from stable_baselines3 import DQN, PPO, SAC

    classes = {"ppo": PPO, "dqn": DQN, "sac": SAC}
    if algo not in classes:
        raise ConfigError(f"algo: {algo!r} is not allowed; allowed: {', '.join(classes)}")
    return classes[algo]


@dataclass(frozen=True)
class PolicyConfig:
    """Network sizes.

    Attributes:
        net_arch: hidden layers of the policy/value (or Q) heads after the extractor.
        encoder_hidden: VectorEncoder layers for vector observations (the last is the feature size).
        cnn_channels: CameraCNN channels of its three convolutions.
        cnn_features_dim: CameraCNN output size.
        activation: activation of the heads.
        log_std_init: initial log standard deviation of PPO's/SAC's Gaussian actions (None: SB3's
            default 0, i.e. std 1 on actions in [-1, 1]; lower explores less wildly from pixels).
    """

    net_arch: tuple[int, ...] = (256, 256)
    encoder_hidden: tuple[int, ...] = (256,)
    cnn_channels: tuple[int, int, int] = (32, 64, 64)
    cnn_features_dim: int = 256
    activation: Literal["tanh", "relu"] = "tanh"
    log_std_init: float | None = None

    def __post_init__(self) -> None:
        for name in ("net_arch", "encoder_hidden", "cnn_channels"):
            sizes = getattr(self, name)
            require(all(int(n) >= 1 for n in sizes), f"policy.{name}", f"layer sizes must be positive, got {list(sizes)}")
        require(len(self.encoder_hidden) >= 1, "policy.encoder_hidden", "needs at least one layer")
        require(self.cnn_features_dim >= 1, "policy.cnn_features_dim", f"must be positive, got {self.cnn_features_dim}")


def policy_kwargs(policy: PolicyConfig, observation_space: spaces.Space, algo: str) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for the project's extractor of ``observation_space`` (channel-first images).

    The optimiser is SB3's Adam with its defaults (eps 1e-5 for the actor-critic algorithms), in
    torch's fused CPU implementation: 0.82 ms instead of 1.67 ms per step for the lidar PPO policy
    on this machine class (median of 5, one thread), the same update.
    """
    from torch import nn

    from perception.encoders import CameraCNN, MultiEncoder, extractor_for

    cls = extractor_for(observation_space)
    if cls is CameraCNN:
        fk: dict[str, Any] = {"features_dim": policy.cnn_features_dim, "channels": list(policy.cnn_channels)}
    elif cls is MultiEncoder:
        fk = {"cnn_features_dim": policy.cnn_features_dim, "channels": list(policy.cnn_channels), "hidden": list(policy.encoder_hidden)}
    else:
        fk = {"hidden": list(policy.encoder_hidden)}
    extra = {} if policy.log_std_init is None else {"log_std_init": policy.log_std_init}
    optimizer = {"fused": True, **({"eps": 1e-5} if algo == "ppo" else {})}
    return {
        **extra,
        "optimizer_kwargs": optimizer,
        "features_extractor_class": cls,
        "features_extractor_kwargs": fk,
        "net_arch": list(policy.net_arch),
        "activation_fn": {"tanh": nn.Tanh, "relu": nn.ReLU}[policy.activation],
        "normalize_images": False,  # the extractor divides by 255 itself
    }


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


# ---------------------------------------------------------------------------------------------- hyperparameters
def _schedule(value: Any, path: str) -> Any:
    """A number, or rl-zoo3's ``lin_<start>`` (linear decay to 0 over training)."""
    if isinstance(value, str):
        if not value.startswith("lin_"):
            raise ConfigError(f"{path}: {value!r} is not allowed; a number or 'lin_<start>' (linear decay to 0)")
        try:
            start = float(value[4:])
        except ValueError:
            raise ConfigError(f"{path}: {value!r} is not a linear schedule; write e.g. 'lin_3e-4'") from None
        return LinearSchedule(start)
    return value


@dataclass(frozen=True)
class LinearSchedule:
    """``start * progress_remaining`` (progress runs from 1 at the start of training to 0)."""

    start: float

    def __call__(self, progress_remaining: float) -> float:
        """The value at ``progress_remaining`` (1 at the start, 0 at the end)."""
        return self.start * progress_remaining


_SCHEDULED = ("learning_rate", "clip_range", "clip_range_vf")


def check_hyperparams(algo: str, hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """``hyperparams`` checked against ``algo``'s keyword arguments; ``lin_x`` strings become schedules.

    Raises:
        ConfigError: naming the unknown key and the allowed ones.
    """
    cls = algo_class(algo)
    allowed = sorted(set(inspect.signature(cls.__init__).parameters) - _RESERVED - {"self"})
    out: dict[str, Any] = {}
    for key, value in hyperparams.items():
        if key not in allowed:
            raise ConfigError(f"hyperparams.{key}: not a {cls.__name__} argument; allowed: {', '.join(allowed)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"hyperparams.{key}: must be finite, got {value}")
        out[key] = _schedule(value, f"hyperparams.{key}") if key in _SCHEDULED else value
        if key == "train_freq" and isinstance(value, list):
            out[key] = tuple(value)
    return out


def _jsonable_hyperparams(hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in hyperparams.items():
        out[k] = f"lin_{v.start!r}" if isinstance(v, LinearSchedule) else (list(v) if isinstance(v, tuple) else v)
    return out


def build_model(algo: str, venv: Any, hyperparams: Mapping[str, Any], policy: PolicyConfig, seed: int, tensorboard_log: str | None) -> Any:
    """A new SB3 model on ``venv`` (already transposed and normalised as wanted)."""
    cls = algo_class(algo)
    hp = check_hyperparams(algo, hyperparams)
    if algo == "sac" and not isinstance(venv.action_space, spaces.Box):
        raise ConfigError("action: sac needs continuous actions (--action continuous)")
    if algo == "dqn" and not isinstance(venv.action_space, spaces.Discrete):
        raise ConfigError("action: dqn needs a discrete action space (--action discrete or meta)")
    policy_name = "MultiInputPolicy" if isinstance(venv.observation_space, spaces.Dict) else "MlpPolicy"
    return cls(
        policy_name,
        venv,
        policy_kwargs=policy_kwargs(policy, venv.observation_space, algo),
        seed=seed,
        device="cpu",
        verbose=0,
        tensorboard_log=tensorboard_log,
        **hp,
    )


# ---------------------------------------------------------------------------------------------- vector envs
def _ignore_sigint_in_workers() -> None:
    """Ctrl-C is for the trainer: a subprocess worker ignores it, so the trainer can stop cleanly and save."""
    import multiprocessing
    import signal

    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pin_worker(rank: int) -> set[int] | None:
    """Pin subprocess worker ``rank`` to one of the allowed cores (round robin); Linux only.

    The workers step in lock step and idle between steps; left free, the scheduler moves them
    between cores and each step starts on a cold cache. Pinned, two Highway-v0 lidar workers on
    this 2-core machine went from 764-831 to 983-993 env steps/s with fixed actions (no learner).
    The trainer itself stays free to run on either core. Returns the cores the process now runs
    on, or None where nothing was pinned (the main process, one core, no affinity call).
    """
    import multiprocessing
    import os

    if multiprocessing.parent_process() is None or not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    os.sched_setaffinity(0, {cores[rank % len(cores)]})
    return os.sched_getaffinity(0)


def make_env_fn(env_id: str, env_kwargs: Mapping[str, Any], seed: int, rank: int, monitor_path: str | None) -> Callable[[], gym.Env]:
    """Thunk for one (Monitor-wrapped) training env; seeded at its first reset with ``seed + rank``."""
    kwargs = dict(env_kwargs)

    def thunk() -> gym.Env:
        from stable_baselines3.common.monitor import Monitor

        import envs  # noqa: F401  (registers the ids inside spawned workers)

        _ignore_sigint_in_workers()
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
) -> Any:
    """Training vector env: ``SubprocVecEnv`` when ``n_envs > 1``, images transposed, optionally normalised.

    Env ``i`` is seeded ``seed + i`` at its first reset (SB3 vector envs are seeded through
    ``VecEnv.seed``, which applies at the next reset; the thunk resets once itself, so the seed holds
    however the vec env resets).
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecTransposeImage
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    if monitor_dir is not None:
        Path(monitor_dir).mkdir(parents=True, exist_ok=True)
    fns = [make_env_fn(env_id, env_kwargs, seed, i, monitor_dir) for i in range(n_envs)]
    vec: VecEnv = SubprocVecEnv(fns, start_method="spawn") if n_envs > 1 else DummyVecEnv(fns)
    vec.seed(seed)
    if _has_image(vec.observation_space):
        vec = VecTransposeImage(vec)  # the extractors take (C, H, W); done here, not by SB3's _wrap_env
    if normalisation is not None:
        vec = normalisation.wrap(vec)
    return vec


def _has_image(space: spaces.Space) -> bool:
    subs = space.spaces.values() if isinstance(space, spaces.Dict) else [space]
    return any(isinstance(s, spaces.Box) and s.dtype == np.uint8 and len(s.shape) == 3 for s in subs)


def channel_first(space: spaces.Space) -> spaces.Space:
    """``space`` with image Boxes transposed to (C, H, W), as the policy sees it."""
    if isinstance(space, spaces.Dict):
        return spaces.Dict({k: channel_first(s) for k, s in space.spaces.items()})
    if isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3:
        h, w, c = space.shape
        return spaces.Box(0, 255, (c, h, w), np.uint8)
    return space


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


def normalise_obs(obs: Any, state: Mapping[str, Any] | None) -> Any:
    """``obs`` normalised as the VecNormalize that produced ``state`` did (identity without one)."""
    if state is None or not state["norm_obs"]:
        return obs
    mean, var = np.asarray(state["obs_mean"]), np.asarray(state["obs_var"])
    out = (np.asarray(obs, np.float64) - mean) / np.sqrt(var + state["epsilon"])
    return np.clip(out, -state["clip_obs"], state["clip_obs"]).astype(np.float32)


# ---------------------------------------------------------------------------------------------- spaces as JSON
def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A Box, Discrete or Dict space as plain JSON (uniform bounds stored once)."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):

        def bound(a: np.ndarray) -> Any:
            flat = a.reshape(-1)
            v = flat[0].item() if flat.size else 0
            return v if np.all(flat == flat[0]) else a.tolist()

        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype), "low": bound(space.low), "high": bound(space.high)}
    raise ValueError(f"model: cannot store a {type(space).__name__} space")


def space_from_json(d: Mapping[str, Any]) -> spaces.Space:
    """Inverse of ``space_to_json``."""
    kind = d.get("type")
    if kind == "Dict":
        return spaces.Dict({k: space_from_json(s) for k, s in d["spaces"].items()})
    if kind == "Discrete":
        return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
    if kind == "Box":
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(n) for n in d["shape"])

        def arr(v: Any) -> np.ndarray:
            return np.broadcast_to(np.asarray(v, dtype=np.float64), shape).astype(dtype)

        return spaces.Box(arr(d["low"]), arr(d["high"]), shape, dtype)
    raise ValueError(f"model: unknown space type {kind!r}")


# ---------------------------------------------------------------------------------------------- model files
def save_model(model: Any, path: str | Path, meta: Mapping[str, Any], normalisation_state: Mapping[str, Any] | None = None) -> None:
    """Write ``model`` to ``path`` (a .zip) with ``drive_sim.json`` inside; not atomic (see runs.atomic_write)."""
    path = Path(path)
    buf = io.BytesIO()
    # The last observation and episode buffers are run-time state SB3 would pickle; a loaded model
    # resets its env and starts fresh buffers without them.
    model.save(buf, exclude=["_last_obs", "_last_episode_starts", "_last_original_obs", "ep_info_buffer", "ep_success_buffer"])
    info = {
        "format": FORMAT_VERSION,
        **meta,
        "observation_space": space_to_json(model.observation_space),
        "action_space": space_to_json(model.action_space),
        "normalisation": dict(normalisation_state) if normalisation_state else None,
        "num_timesteps": int(model.num_timesteps),
    }
    # One archive with one central directory: a file cut short anywhere no longer opens as a zip.
    buf.seek(0)
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            # Deflate every entry: SB3 stores the torch .pth entries (themselves zips) as they are, and
            # a reader that meets their inner end-of-archive record in a cut file would open the inner zip.
            dst.writestr(item.filename, src.read(item.filename), compress_type=zipfile.ZIP_DEFLATED)
        dst.writestr(META_NAME, json.dumps(info, indent=1))


def read_meta(path: str | Path) -> dict[str, Any]:
    """``drive_sim.json`` of a model file.

    Raises:
        ValueError: one line naming the file: missing, truncated/not a zip, not a drive-sim model,
            or written by a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model: {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "data" not in names:  # every SB3 model has it; its absence means a cut or foreign file
                raise ValueError(f"model: {path} is not a complete model file (truncated, or not an SB3 .zip)")
            if META_NAME not in names:
                raise ValueError(f"model: {path} was not written by drive-sim (no {META_NAME} inside); save it with agents.sb3.save_model")
            bad = archive.testzip()
            if bad is not None:
                raise ValueError(f"model: {path} is damaged ({bad} fails its checksum)")
            meta = json.loads(archive.read(META_NAME))
    except zipfile.BadZipFile:
        raise ValueError(f"model: {path} is not a complete model file (truncated, or not a .zip)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"model: {path} has an unreadable {META_NAME}") from None
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"model: {path} has format {meta.get('format')!r}; this drive-sim reads format {FORMAT_VERSION}")
    return meta


def load_model(path: str | Path, *, algo: str | None = None, env: Any = None) -> tuple[Any, dict[str, Any]]:
    """Load a model written by ``save_model`` without unpickling anything; returns ``(model, meta)``.

    Args:
        path: the .zip.
        algo: if given, the file must hold this algorithm.
        env: a vector env to continue training on (its spaces must match).

    Raises:
        ValueError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    meta = read_meta(path)
    if algo is not None and meta.get("algo") != algo:
        raise ValueError(f"model: {path} holds a {meta.get('algo')} model, not {algo}")
    cls = algo_class(str(meta.get("algo")))
    obs_space = space_from_json(meta["observation_space"])
    act_space = space_from_json(meta["action_space"])
    policy = PolicyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["policy"].items()})
    hp = check_hyperparams(meta["algo"], meta.get("hyperparams", {}))
    policy_name = "MultiInputPolicy" if isinstance(obs_space, spaces.Dict) else "MlpPolicy"
    rebuilt: dict[str, Any] = {
        "policy_class": cls.policy_aliases[policy_name],
        "observation_space": obs_space,
        "action_space": act_space,
        "policy_kwargs": policy_kwargs(policy, obs_space, str(meta["algo"])),
        "lr_schedule": _constant(0.0),  # rebuilt from learning_rate by _setup_model
        "exploration_schedule": _constant(0.0),  # rebuilt by DQN._setup_model
        "rollout_buffer_class": None,  # chosen again by _setup_model
        "replay_buffer_class": None,
        "learning_rate": hp.get("learning_rate", inspect.signature(cls.__init__).parameters["learning_rate"].default),
    }
    for key in ("clip_range", "clip_range_vf", "train_freq"):
        if key in inspect.signature(cls.__init__).parameters:
            rebuilt[key] = hp.get(key, inspect.signature(cls.__init__).parameters[key].default)
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    pickled = [k for k, v in data.items() if isinstance(v, dict) and ":serialized:" in v]
    unknown = [k for k in pickled if k not in rebuilt]
    if unknown:
        raise ValueError(
            f"model: {path} holds pickled entries drive-sim does not rebuild ({', '.join(unknown)}); refusing to unpickle them"
        )
    custom = {k: rebuilt[k] for k in pickled}
    if "policy_kwargs" in data:
        custom["policy_kwargs"] = rebuilt["policy_kwargs"]
    try:
        model = cls.load(path, env=env, device="cpu", custom_objects=custom)
    except (ValueError, KeyError, RuntimeError) as err:
        raise ValueError(f"model: {path} does not load ({str(err).splitlines()[0]})") from None
    return model, meta


def _constant(value: float) -> Callable[[float], float]:
    from stable_baselines3.common.utils import ConstantSchedule

    return ConstantSchedule(value)


def model_meta(
    algo: str,
    env_id: str,
    obs: str,
    action: str,
    policy: PolicyConfig,
    hyperparams: Mapping[str, Any],
    env_cfg: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``drive_sim.json`` fields that describe how a model was built (and the env it acts in)."""
    return {
        "algo": algo,
        "env_id": env_id,
        "obs_type": obs,
        "action_type": action,
        "env_cfg": dict(env_cfg or {}),
        "policy": asdict(policy),
        "hyperparams": _jsonable_hyperparams(check_hyperparams(algo, hyperparams)),
    }


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


# ---------------------------------------------------------------------------------------------- Agent adapter
class SB3Agent:
    """The Agent protocol over an SB3 model (observations normalised as in training)."""

    def __init__(self, model: Any, meta: Mapping[str, Any], normalisation_state: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.meta = dict(meta)
        self.normalisation_state = normalisation_state if normalisation_state is not None else meta.get("normalisation")

    @property
    def algo(self) -> str:
        """``ppo``, ``dqn`` or ``sac``."""
        return str(self.meta["algo"])

    def act(self, obs: Any, deterministic: bool = True) -> Any:
        """The model's action for one observation."""
        action, _ = self.model.predict(normalise_obs(obs, self.normalisation_state), deterministic=deterministic)
        return action

    def reset(self) -> None:
        """Feed-forward policies keep no state."""

    def save(self, path: str | Path) -> None:
        """Write the model with its metadata and normalisation statistics."""
        save_model(self.model, path, {k: v for k, v in self.meta.items() if k in _META_KEYS}, self.normalisation_state)

    @classmethod
    def load(cls, path: str | Path, algo: str | None = None) -> SB3Agent:
        """Read a model file (no unpickling); ``algo`` checks what it holds."""
        model, meta = load_model(path, algo=algo)
        return cls(model, meta)


_META_KEYS = ("algo", "env_id", "obs_type", "action_type", "env_cfg", "policy", "hyperparams")
