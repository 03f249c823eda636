"""PPO, DQN and SAC models as agents: the network built from perception's encoders, the model file and ``SB3Agent``.

What this module adds to stable-baselines3 (training a model lives in ``agents.training.sb3_train``):

- ``PolicyConfig`` and ``policy_kwargs``: the algorithm's policy with the project's extractors
  (``perception.encoders``); ``check_hyperparams``: a config's hyperparameters checked against the
  algorithm's own keyword arguments (an unknown key is an error that names it, not a silent ``**kwargs``).
- A model file that loads without unpickling. SB3's ``.zip`` stores some entries (spaces, the
  policy class, schedules) with cloudpickle, and ``BaseAlgorithm.load`` unpickles them: loading an
  untrusted file runs its code. ``save_model`` adds ``drive_sim.json`` to the zip (algorithm, env id,
  observation and action types, spaces, policy settings, hyperparameters, observation-normalisation
  statistics), and ``load_model`` rebuilds every pickled entry from it and passes them to SB3 as
  ``custom_objects``, so nothing is unpickled; a file with a pickled entry it cannot rebuild is
  refused. Weights are read with ``torch.load(weights_only=True)`` by SB3 itself.
- ``SB3Agent``: the Agent protocol over a model (observation normalisation applied in ``act``).
"""

from __future__ import annotations

import inspect
import io
import json
import math
import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from agents.policies.base import space_from_json, space_to_json
from drive_sim.config import ConfigError, build, require
from drive_sim.files import atomic_write, decode_text, loads_json

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
        cnn: camera extractor: "nature" (``CameraCNN``, ``cnn_channels`` are its three convolutions)
            or "perception" (``PerceptionCNN``, the perception net's encoder; ``cnn_channels`` are its
            stages, (16, 32, 64, 64) to take the perception net's or a pre-training run's weights).
        cnn_weights: a perception net file or pre-training ``encoder.pt`` whose encoder starts the
            ``perception`` CNN; "" for random initial weights.
        shift_pad: random-shift augmentation of the camera frames in the updates, in pixels (0: none).
    """

    net_arch: tuple[int, ...] = (256, 256)
    encoder_hidden: tuple[int, ...] = (256,)
    cnn_channels: tuple[int, ...] = (32, 64, 64)
    cnn_features_dim: int = 256
    activation: Literal["tanh", "relu"] = "tanh"
    log_std_init: float | None = None
    cnn: Literal["nature", "perception"] = "nature"
    cnn_weights: str = ""
    shift_pad: int = 0

    def __post_init__(self) -> None:
        for name in ("net_arch", "encoder_hidden", "cnn_channels"):
            sizes = getattr(self, name)
            require(all(int(n) >= 1 for n in sizes), f"policy.{name}", f"layer sizes must be positive, got {list(sizes)}")
        require(len(self.encoder_hidden) >= 1, "policy.encoder_hidden", "needs at least one layer")
        require(self.cnn_features_dim >= 1, "policy.cnn_features_dim", f"must be positive, got {self.cnn_features_dim}")
        require(self.cnn in ("nature", "perception"), "policy.cnn", f"must be nature or perception, got {self.cnn!r}")
        require(self.shift_pad >= 0, "policy.shift_pad", f"must be 0 or more pixels, got {self.shift_pad}")
        require(
            self.cnn == "perception" or not (self.cnn_weights or self.shift_pad),
            "policy.cnn",
            "cnn_weights and shift_pad need cnn: perception",
        )


def policy_kwargs(policy: PolicyConfig, observation_space: spaces.Space, algo: str) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for the project's extractor of ``observation_space`` (channel-first images).

    The optimiser is SB3's Adam with its defaults (eps 1e-5 for the actor-critic algorithms), in
    torch's fused CPU implementation: 0.82 ms instead of 1.67 ms per step for the lidar PPO policy
    on this machine class (median of 5, one thread), the same update.
    """
    from torch import nn

    from perception.encoders import CameraCNN, MultiEncoder, PerceptionCNN, extractor_for

    cls = extractor_for(observation_space)
    if cls is CameraCNN and policy.cnn == "perception":
        cls = PerceptionCNN
        fk: dict[str, Any] = {"features_dim": policy.cnn_features_dim, "channels": list(policy.cnn_channels), "shift_pad": policy.shift_pad}
    elif policy.cnn == "perception":
        raise ConfigError("policy.cnn: perception takes a camera observation (obs: camera)")
    elif cls is CameraCNN:
        fk = {"features_dim": policy.cnn_features_dim, "channels": list(policy.cnn_channels)}
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


# ---------------------------------------------------------------------------------------------- model files
def save_model(model: Any, path: str | Path, meta: Mapping[str, Any], normalisation_state: Mapping[str, Any] | None = None) -> None:
    """Write ``model`` to ``path`` (a .zip) with ``drive_sim.json`` inside; not atomic (see drive_sim.files.atomic_write)."""
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


#: The most a model file may unpack to: a zip bomb of a few MB must not become gigabytes in memory.
MAX_MODEL_BYTES = 512 * 1024 * 1024
#: ``drive_sim.json``'s required entries and their JSON types.
_META_FIELDS = {
    "algo": str,
    "env_id": str,
    "obs_type": str,
    "action_type": str,
    "policy": dict,
    "hyperparams": dict,
    "observation_space": dict,
    "action_space": dict,
}


def read_meta(path: str | Path) -> dict[str, Any]:
    """``drive_sim.json`` of a model file, every field checked.

    Raises:
        ValueError: one line naming the file (and the field): missing, truncated/not a zip, unpacking
            to more than ``MAX_MODEL_BYTES``, not a drive-sim model, written by a newer format, or a
            field that is missing or wrong.
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
                raise ValueError(
                    f"model: {path} was not written by drive-sim (no {META_NAME} inside); save it with agents.policies.sb3.save_model"
                )
            unpacked = sum(i.file_size for i in archive.infolist())  # before anything is decompressed
            if unpacked > MAX_MODEL_BYTES:
                raise ValueError(
                    f"model: {path} unpacks to {unpacked / 2**20:,.0f} MiB, more than the {MAX_MODEL_BYTES / 2**20:,.0f} MiB a model may"
                )
            bad = archive.testzip()
            if bad is not None:
                raise ValueError(f"model: {path} is damaged ({bad} fails its checksum)")
            inside = f"{path}: {META_NAME}"
            meta = loads_json(decode_text(archive.read(META_NAME), inside, "model"), inside, "model")
    except zipfile.BadZipFile:
        raise ValueError(f"model: {path} is not a complete model file (truncated, or not a .zip)") from None
    except OSError as err:
        raise ValueError(f"model: cannot read {path} ({err.strerror or err})") from None
    where = f"model: {path}: {META_NAME}"
    if not isinstance(meta, dict):
        raise ValueError(f"{where} is not a mapping of fields")
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"model: {path} has format {meta.get('format')!r}; this drive-sim reads format {FORMAT_VERSION}")
    for key, kind in _META_FIELDS.items():
        if key not in meta:
            raise ValueError(f"{where}: {key}: missing (required)")
        if not isinstance(meta[key], kind):
            raise ValueError(f"{where}: {key}: expected a {'string' if kind is str else 'mapping'}, got {type(meta[key]).__name__}")
    if meta["algo"] not in ALGOS:
        raise ValueError(f"{where}: algo: {meta['algo']!r} is not allowed; allowed: {', '.join(ALGOS)}")
    if not isinstance(meta.get("env_cfg") or {}, dict):
        raise ValueError(f"{where}: env_cfg: expected a mapping")
    steps = meta.get("num_timesteps", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"{where}: num_timesteps: expected a non-negative integer, got {steps!r}")
    try:
        obs_space = space_from_json(meta["observation_space"], "observation_space")
        space_from_json(meta["action_space"], "action_space")
        _check_normalisation(meta.get("normalisation"), obs_space)
        build(PolicyConfig, meta["policy"], path="policy")
        check_hyperparams(meta["algo"], meta["hyperparams"])
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return meta


def _check_normalisation(state: Any, obs_space: spaces.Space) -> None:
    """Observation-normalisation statistics that ``normalise_obs`` can apply to ``obs_space``'s observations."""
    if state is None:
        return
    if not isinstance(state, dict):
        raise ValueError("normalisation: expected a mapping or null")
    for key in ("norm_obs", "norm_reward"):
        if not isinstance(state.get(key), bool):
            raise ValueError(f"normalisation.{key}: expected true or false")
    for key in ("clip_obs", "epsilon"):
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"normalisation.{key}: expected a positive number, got {value!r}")
    if state["norm_obs"]:
        size = int(np.prod(obs_space.shape)) if isinstance(obs_space, spaces.Box) else -1
        for key in ("obs_mean", "obs_var"):
            values = state.get(key)
            ok = isinstance(values, list) and len(values) == size and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
            if not ok:
                raise ValueError(f"normalisation.{key}: expected {size} finite numbers (one per observation entry)")


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
    policy = build(PolicyConfig, meta["policy"], path="policy")
    hp = check_hyperparams(meta["algo"], meta["hyperparams"])
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
        data = loads_json(decode_text(archive.read("data"), f"{path}: data", "model"), f"{path}: data", "model")
    if not isinstance(data, dict):
        raise ValueError(f"model: {path}: data is not a mapping of SB3 attributes")
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
    except pickle.UnpicklingError:
        # torch.load(weights_only=True) refused an entry that is not plain tensors; its own advice (load it
        # with weights_only=False) would run the file's code, so it is not passed on.
        raise ValueError(
            f"model: {path} holds weights that are not plain tensors; drive-sim does not load them (no code from a model runs)"
        ) from None
    except Exception as err:  # SB3 and torch raise many kinds on a damaged or mismatched file
        raise ValueError(f"model: {path} does not load ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
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


def normalise_obs(obs: Any, state: Mapping[str, Any] | None) -> Any:
    """``obs`` normalised as the VecNormalize that produced ``state`` did (identity without one)."""
    if state is None or not state["norm_obs"]:
        return obs
    mean, var = np.asarray(state["obs_mean"]), np.asarray(state["obs_var"])
    out = (np.asarray(obs, np.float64) - mean) / np.sqrt(var + state["epsilon"])
    return np.clip(out, -state["clip_obs"], state["clip_obs"]).astype(np.float32)


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
        meta = {k: v for k, v in self.meta.items() if k in _META_KEYS}
        atomic_write(Path(path), lambda tmp: save_model(self.model, tmp, meta, self.normalisation_state))

    @classmethod
    def load(cls, path: str | Path, algo: str | None = None) -> SB3Agent:
        """Read a model file (no unpickling); ``algo`` checks what it holds."""
        model, meta = load_model(path, algo=algo)
        return cls(model, meta)


_META_KEYS = ("algo", "env_id", "obs_type", "action_type", "env_cfg", "policy", "hyperparams")
