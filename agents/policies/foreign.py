"""Policies trained elsewhere: standard SB3 zips, rl-zoo3 run folders, and any Python object with ``act(obs)``.

SB3's own ``.zip`` stores spaces, the policy class and schedules with cloudpickle, and rl-zoo3 keeps
its observation statistics in a pickled ``vecnormalize.pkl``: loading either runs code stored in the
file. drive-sim loads them only when asked to (``allow_pickle=True``, ``--allow-pickle``), with a
one-line warning; without it the refusal names the opt-in. drive-sim's own zips (with
``drive_sim.json``) never need it.

- ``load_sb3_zip``: any algorithm SB3 or sb3-contrib can rebuild, found from the policy class the
  zip names (its ``data`` entry is JSON, read without unpickling).
- ``load_zoo3_folder``: an rl-zoo3 run folder (``logs/ALGO/ENV_N``): its env id and env kwargs
  (``args.yml``), frame stacking and normalisation (``config.yml``, ``vecnormalize.pkl``) applied as
  rl-zoo3's own evaluation applies them (normalise, then stack, then channel-first for images).
- ``load_object``: ``module:attr`` or ``path/to/file.py:attr``, an object with ``act(obs)`` (or a
  class or factory that makes one); its ``obs_type`` and ``action_type`` attributes, when it has
  them, say what it drives.

Every one of them is an ``ExternalAgent``: the Agent protocol with ``meta`` saying the env it drives
where that is known.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from drive_sim.files import decode_text, loads_json, loads_yaml, read_text

#: The opt-in, as the command line spells it (named in every refusal).
OPT_IN = "--allow-pickle"

#: SB3 / sb3-contrib algorithm by the module of the policy class a zip names. PPO and A2C share
#: their policies (so do TD3 and DDPG): either class rebuilds and runs the same network.
_ALGO_BY_POLICY_MODULE = {
    "stable_baselines3.common.policies": ("stable_baselines3", "PPO"),
    "stable_baselines3.ppo.policies": ("stable_baselines3", "PPO"),
    "stable_baselines3.a2c.policies": ("stable_baselines3", "A2C"),
    "stable_baselines3.dqn.policies": ("stable_baselines3", "DQN"),
    "stable_baselines3.sac.policies": ("stable_baselines3", "SAC"),
    "stable_baselines3.td3.policies": ("stable_baselines3", "TD3"),
    "sb3_contrib.qrdqn.policies": ("sb3_contrib", "QRDQN"),
    "sb3_contrib.tqc.policies": ("sb3_contrib", "TQC"),
    "sb3_contrib.trpo.policies": ("sb3_contrib", "TRPO"),
    "sb3_contrib.common.policies": ("sb3_contrib", "TRPO"),
    "sb3_contrib.ars.policies": ("sb3_contrib", "ARS"),
}
#: rl-zoo3 algorithm names (the folder under the log folder) -> class.
_ALGO_BY_NAME = {
    "ppo": ("stable_baselines3", "PPO"),
    "a2c": ("stable_baselines3", "A2C"),
    "dqn": ("stable_baselines3", "DQN"),
    "sac": ("stable_baselines3", "SAC"),
    "td3": ("stable_baselines3", "TD3"),
    "ddpg": ("stable_baselines3", "DDPG"),
    "qrdqn": ("sb3_contrib", "QRDQN"),
    "tqc": ("sb3_contrib", "TQC"),
    "trpo": ("sb3_contrib", "TRPO"),
    "ars": ("sb3_contrib", "ARS"),
}


class PickleRefused(ValueError):
    """A file that only loads by running code stored in it, without the opt-in."""


class ExternalAgent:
    """The Agent protocol over a model or object trained elsewhere.

    Args:
        predict: ``obs -> action`` for the model's own observations.
        meta: the env it drives where known (``env_id``, ``obs_type``, ``action_type``, ``env_cfg``).
        normalise: rl-zoo3's observation statistics (``mean``, ``var``, ``epsilon``, ``clip_obs``), or None.
        stack: frames stacked (rl-zoo3's ``frame_stack``), 1 for none.
        channel_first: images are transposed to (C, H, W) before the model sees them.
        model_space: the observation space the model takes (for the frame stack's layout).
        on_reset: called at the start of every episode (an object's own ``reset``).
    """

    def __init__(
        self,
        predict: Any,
        meta: Mapping[str, Any] | None = None,
        *,
        normalise: Mapping[str, Any] | None = None,
        stack: int = 1,
        channel_first: bool = False,
        model_space: spaces.Space | None = None,
        on_reset: Any = None,
        model: Any = None,
    ) -> None:
        self._predict = predict
        self.model = model
        self.meta = dict(meta or {})
        self._normalise = normalise
        self._stack_n = int(stack)
        self._channel_first = channel_first
        self._model_space = model_space
        self._on_reset = on_reset
        self._stack: Any = None

    def kinds_for(self, env_id: str) -> dict[str, str]:
        """The observation and action types it drives on ``env_id``.

        Its own where it says (an object's attributes, an rl-zoo3 run's env kwargs), else those whose
        spaces its model takes, else the kinematics observation with continuous actions.
        """
        if self.meta.get("obs_type") and self.meta.get("action_type"):
            return {"obs_type": self.meta["obs_type"], "action_type": self.meta["action_type"]}
        if self.model is not None:
            return kinds_from_spaces(self.model, env_id, self._stack_n)
        return {"obs_type": "kinematics", "action_type": "continuous"}

    def reset(self) -> None:
        """Start of an episode: the frame stack starts empty (as VecFrameStack's does at a reset)."""
        self._stack = None
        if self._on_reset is not None:
            self._on_reset()

    def act(self, obs: Any, deterministic: bool = True) -> Any:
        """The model's action for one env observation, through the transforms it was trained behind."""
        x = obs
        if self._normalise is not None:
            n = self._normalise
            x = np.clip((np.asarray(x, np.float64) - n["mean"]) / np.sqrt(n["var"] + n["epsilon"]), -n["clip_obs"], n["clip_obs"])
            x = x.astype(np.float32)
        if self._stack_n > 1:
            x = self._stacked(x)
        if self._channel_first and isinstance(x, np.ndarray) and x.ndim == 3:
            x = np.transpose(x, (2, 0, 1))
        return self._predict(x, deterministic)

    def _stacked(self, x: np.ndarray) -> np.ndarray:
        """SB3's own StackedObservations (what VecFrameStack uses), so a stack is built exactly as in training."""
        from stable_baselines3.common.vec_env.stacked_observations import StackedObservations

        batch = np.asarray(x)[None]
        if self._stack is None:
            single = spaces.Box(-np.inf, np.inf, batch.shape[1:], batch.dtype) if self._model_space is None else self._base_space()
            self._stack = StackedObservations(1, self._stack_n, single)
            return self._stack.reset(batch)[0]
        stacked, _ = self._stack.update(batch, np.zeros(1, bool), [{}])
        return stacked[0]

    def _base_space(self) -> spaces.Box:
        """The observation space before stacking (the model's, with its stacked axis divided)."""
        s = self._model_space
        assert isinstance(s, spaces.Box)
        shape = list(s.shape)
        shape[-1] //= self._stack_n
        return spaces.Box(-np.inf, np.inf, tuple(shape), s.dtype)

    def save(self, path: str | Path) -> None:
        """Foreign policies stay in their own files."""
        raise ValueError("agent: a policy trained elsewhere is saved by the tool that trained it")

    @classmethod
    def load(cls, path: str | Path) -> ExternalAgent:
        """See ``load_sb3_zip``, ``load_zoo3_folder`` and ``load_object``."""
        raise ValueError("agent: load a policy trained elsewhere through agents.policies.loader.load_agent")


_QUIET: list[bool] = []


def warn_pickle(path: Path) -> None:
    """The one-line warning an opted-in pickle load gives, on stderr (not inside ``quiet_pickle_warnings``)."""
    if not _QUIET:
        print(f"drive-sim: warning: loading {path} runs code stored in it (pickle); do this only with files you trust", file=sys.stderr)


@contextlib.contextmanager
def quiet_pickle_warnings() -> Iterator[None]:
    """No warning from loads inside (benchmark workers: the command warned once, before the grid)."""
    _QUIET.append(True)
    try:
        yield
    finally:
        _QUIET.pop()


def _refuse(path: Path, what: str) -> PickleRefused:
    return PickleRefused(
        f"model: {path} is {what}, which runs code stored in the file when loaded; pass {OPT_IN} (allow_pickle=True) if you trust it"
    )


# ---------------------------------------------------------------------------------------------- SB3 zips
def sb3_class(path: Path, algo: str | None = None) -> type:
    """The SB3 / sb3-contrib class that rebuilds the model in ``path``: from ``algo`` (rl-zoo3's name) or the policy class the zip names."""
    if algo is not None:
        if algo.lower() not in _ALGO_BY_NAME:
            raise ValueError(f"model: {path}: algorithm {algo!r} is not one drive-sim runs; known: {', '.join(_ALGO_BY_NAME)}")
        package, name = _ALGO_BY_NAME[algo.lower()]
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                if "data" not in archive.namelist():
                    raise ValueError(f"model: {path} is not an SB3 model file (no data entry)")
                data = loads_json(decode_text(archive.read("data"), f"{path}: data", "model"), f"{path}: data", "model")
        except zipfile.BadZipFile:
            raise ValueError(f"model: {path} is not a complete model file (truncated, or not a .zip)") from None
        module = data.get("policy_class", {}).get("__module__", "") if isinstance(data, dict) else ""
        if "recurrent" in module:
            raise ValueError(f"model: {path} holds a recurrent policy ({module}); drive-sim runs feed-forward policies")
        if module not in _ALGO_BY_POLICY_MODULE:
            raise ValueError(f"model: {path}: its policy class comes from {module or 'nowhere'!r}; drive-sim knows SB3's and sb3-contrib's")
        package, name = _ALGO_BY_POLICY_MODULE[module]
    try:
        return getattr(importlib.import_module(package), name)
    except ImportError:
        raise ValueError(f"model: {path} needs {package} ({name}); pip install {package.replace('_', '-')}") from None


def load_sb3_zip(path: Path, *, allow_pickle: bool, algo: str | None = None) -> Any:
    """An SB3 model from SB3's own format (the opt-in is required: SB3 unpickles its spaces and classes)."""
    from agents.policies.sb3 import MAX_MODEL_BYTES

    if not allow_pickle:
        raise _refuse(path, "a standard SB3 model file (not written by drive-sim)")
    cls = sb3_class(path, algo)
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(i.file_size for i in archive.infolist())
    if unpacked > MAX_MODEL_BYTES:
        raise ValueError(
            f"model: {path} unpacks to {unpacked / 2**20:,.0f} MiB, more than the {MAX_MODEL_BYTES / 2**20:,.0f} MiB a model may"
        )
    warn_pickle(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SB3's notes about the saved Python and library versions
            return cls.load(path, device="cpu")
    except Exception as err:  # SB3 and torch raise many kinds on a damaged or mismatched file
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"model: {path} does not load as {cls.__name__} ({why})") from None


def sb3_agent(model: Any, meta: Mapping[str, Any], **transforms: Any) -> ExternalAgent:
    """An ExternalAgent over an SB3 model (images transposed where the model takes them channel-first)."""
    space = model.observation_space
    first = isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3 and space.shape[0] in (1, 3, 4, 6, 12)

    def predict(obs: Any, deterministic: bool) -> Any:
        action, _ = model.predict(obs, deterministic=deterministic)
        return action

    return ExternalAgent(predict, meta, channel_first=first, model_space=space, model=model, **transforms)


def kinds_from_spaces(model: Any, env_id: str, stack: int = 1) -> dict[str, str]:
    """The observation and action types of ``env_id`` whose spaces the model takes (frame stacking and channel order allowed for)."""
    import envs
    from agents.policies.base import AgentEnv

    act = model.action_space
    if isinstance(act, spaces.Box) and act.shape == (2,):
        action_types = ["continuous"]
    elif isinstance(act, spaces.Discrete):
        action_types = ["meta", "discrete"]
    else:
        raise ValueError(f"model: its action space {act} is not one of drive-sim's (Box(2) steer and acceleration, or Discrete)")
    want = model.observation_space
    for obs_type in envs.OBS_TYPES:
        for action_type in action_types:
            env = AgentEnv(env_id, obs_type, action_type).make()
            try:
                if _fits(want, env.observation_space, stack) and env.action_space == act:
                    return {"obs_type": obs_type, "action_type": action_type}
            finally:
                env.close()
    raise ValueError(
        f"model: no observation type of {env_id} gives the model's observations {want} (pass --scenario for another env, "
        "or train on a drive-sim observation)"
    )


def _fits(model_space: spaces.Space, env_space: spaces.Space, stack: int) -> bool:
    if isinstance(env_space, spaces.Dict) or isinstance(model_space, spaces.Dict):
        return isinstance(env_space, spaces.Dict) and isinstance(model_space, spaces.Dict) and set(env_space) == set(model_space)
    shape = list(env_space.shape)
    shape[-1] *= stack
    if tuple(shape) == model_space.shape:
        return True
    return len(shape) == 3 and (shape[2], shape[0], shape[1]) == model_space.shape  # SB3 transposed the frames


# ---------------------------------------------------------------------------------------------- rl-zoo3
def is_zoo3_folder(path: Path) -> bool:
    """An rl-zoo3 run folder: ``ENV_NAME_N/`` holding ``ENV_NAME/args.yml`` (and a model zip)."""
    return path.is_dir() and any((p / "args.yml").is_file() for p in path.iterdir() if p.is_dir())


def _zoo3_yaml(path: Path) -> Any:
    """rl-zoo3's YAML: ``yaml.dump`` of OrderedDicts (``!!python/object/apply:collections.OrderedDict``), read without running code."""
    return loads_yaml(read_text(path, "model"), path, "model", ordered_dicts=True)


def load_zoo3_folder(path: Path, *, allow_pickle: bool, best: bool = False) -> ExternalAgent:
    """The policy of an rl-zoo3 run folder with the transforms it was trained behind (see the module docstring)."""
    params = next((p for p in sorted(path.iterdir()) if p.is_dir() and (p / "args.yml").is_file()), None)
    if params is None:
        raise ValueError(f"model: {path} is not an rl-zoo3 run folder (no ENV/args.yml inside)")
    args = _zoo3_yaml(params / "args.yml")
    config = _zoo3_yaml(params / "config.yml") if (params / "config.yml").is_file() else {}
    if not isinstance(args, dict) or not isinstance(config, dict):
        raise ValueError(f"model: {params}: args.yml and config.yml must hold mappings")
    env_id = str(args.get("env", ""))
    env_id = env_id.split(":", 1)[1] if ":" in env_id else env_id  # a module-prefixed id: "drive_sim:DriveSim/Highway-v0"
    algo = str(args.get("algo", path.parent.name))
    model_path = path / ("best_model.zip" if best else f"{params.name}.zip")
    if not model_path.is_file():
        raise ValueError(f"model: {path} has no {model_path.name} (the run did not finish?)")
    model = load_sb3_zip(model_path, allow_pickle=allow_pickle, algo=algo)
    env_kwargs = dict(args.get("env_kwargs") or config.get("env_kwargs") or {})
    stack = int(config.get("frame_stack") or 1)
    normalise = None
    stats = params / "vecnormalize.pkl"
    if stats.is_file():
        normalise = _vecnormalize_stats(stats)
    meta = {"env_id": env_id, "algo": algo, **_env_kwargs_meta(env_id, env_kwargs, params / "args.yml")}
    return sb3_agent(model, meta, normalise=normalise, stack=stack)


def _env_kwargs_meta(env_id: str, env_kwargs: dict[str, Any], where: Path) -> dict[str, Any]:
    """``obs_type``, ``action_type`` and ``env_cfg`` of the env an rl-zoo3 run's ``env_kwargs`` made (highway-env's ``config`` too)."""
    from drive_sim.config import ConfigError
    from drive_sim.registration import ENV_IDS
    from envs.config import make_config
    from envs.highway_compat import as_cfg

    allowed = ("obs_type", "action_type", "cfg", "config")
    extra = sorted(set(env_kwargs) - set(allowed))
    if extra:
        raise ValueError(f"model: {where}: env_kwargs {extra} are not drive-sim env arguments ({', '.join(allowed)})")
    cfg = env_kwargs.get("cfg") or {}
    scenario = ENV_IDS.get(env_id, "highway")
    try:
        if env_kwargs.get("config") is not None:
            cfg = as_cfg(env_kwargs["config"], scenario, cfg)
        built = make_config(scenario, env_kwargs.get("obs_type"), env_kwargs.get("action_type"), cfg)
    except ConfigError as err:
        raise ValueError(f"model: {where}: env_kwargs: {err}") from None
    return {"obs_type": built.observation.type, "action_type": built.action.type, "env_cfg": cfg}


def _vecnormalize_stats(path: Path) -> dict[str, Any] | None:
    """The observation statistics of a pickled VecNormalize (the caller has the opt-in: this unpickles)."""
    import pickle

    with open(path, "rb") as fh:
        vec = pickle.load(fh)  # only after allow_pickle (load_sb3_zip has refused or warned)
    if not getattr(vec, "norm_obs", False):
        return None
    rms = vec.obs_rms
    return {
        "mean": np.asarray(rms.mean, np.float64),
        "var": np.asarray(rms.var, np.float64),
        "epsilon": float(vec.epsilon),
        "clip_obs": float(vec.clip_obs),
    }


# ---------------------------------------------------------------------------------------------- Python objects
def is_object_spec(spec: str) -> bool:
    """``module:attr`` or ``path/to/file.py:attr`` (not ``zoo:NAME``)."""
    if spec.startswith("zoo:") or spec.count(":") != 1:
        return False
    where, attr = spec.split(":")
    return bool(attr.isidentifier()) and (where.endswith(".py") or all(part.isidentifier() for part in where.split(".")))


def load_object(spec: str) -> ExternalAgent:
    """The object named by ``module:attr`` or ``file.py:attr``: one with ``act(obs)``, or a class or factory that makes one."""
    where, attr = spec.split(":")
    try:
        if where.endswith(".py"):
            file = Path(where)
            if not file.is_file():
                raise ValueError(f"agent: {file} does not exist")
            module_spec = importlib.util.spec_from_file_location(f"drive_sim_user_agent_{file.stem}", file)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as err:
        raise ValueError(f"agent: {spec}: cannot import {where} ({err})") from None
    if not hasattr(module, attr):
        raise ValueError(f"agent: {spec}: {where} has no {attr}")
    obj = getattr(module, attr)
    if inspect.isclass(obj) or (not hasattr(obj, "act") and callable(obj)):
        try:
            obj = obj()  # a class or a factory, called without arguments
        except TypeError as err:
            raise ValueError(f"agent: {spec}: cannot make it without arguments ({err})") from None
    if not callable(getattr(obj, "act", None)):
        raise ValueError(f"agent: {spec} has no act(obs) method")
    meta = {k: getattr(obj, k) for k in ("env_id", "obs_type", "action_type", "env_cfg") if isinstance(getattr(obj, k, None), (str, dict))}
    try:
        takes_flag = "deterministic" in inspect.signature(obj.act).parameters
    except (TypeError, ValueError):
        takes_flag = False

    def predict(obs: Any, deterministic: bool) -> Any:
        return obj.act(obs, deterministic=deterministic) if takes_flag else obj.act(obs)

    return ExternalAgent(predict, meta, on_reset=getattr(obj, "reset", None))


def describe(meta: Mapping[str, Any]) -> str:
    """Short text of what an external agent drives (for messages)."""
    return json.dumps({k: meta[k] for k in ("env_id", "obs_type", "action_type") if k in meta})
