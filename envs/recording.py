"""Episode logs: record what happened, load it back, re-simulate it exactly or play its states back.

    env = RecordEpisodes(gym.make("DriveSim/Highway-v0"), "runs/x/episodes")
    env.reset(seed=7)  # ... steps ...; the log is written when the episode ends
    log = EpisodeLog.load("runs/x/episodes/ep_0007")
    report = resimulate(log)          # same code: the recorded states again, or where they part

A log is a folder of two files, written together (to a temporary folder, then renamed):

- ``episode.json``: format version, env id, the complete ``EnvConfig`` (so the log needs no
  scenario file), the reset seed or generator state, code version, outcome, events (collision,
  leaving the road, sensor faults, signal changes), names of the array columns.
- ``arrays.npz``: compressed numpy arrays, read with ``allow_pickle=False``: actions and rewards
  per step; ego state, traffic state and the HUD's scalars per step and at the reset (T + 1 rows).

Nothing is pickled. States are kept in float64, so a re-simulation can be compared exactly: about
0.54 MB per 1,000 steps on Highway-v0 (20 vehicles), 1.0 MB on Highway-Dense-v0 (50), docs/replay.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import drive_sim
from drive_sim.config import ConfigError, build
from drive_sim.files import read_json, sync_file, sync_folder, umask_mode
from drive_sim.render import ESTIMATE_FIELDS, EstimateView
from drive_sim.types import VEHICLE_STATE_FIELDS, VehicleState
from envs.config import EnvConfig

#: Bumped when the layout of a log changes; a newer log is refused with a clear message.
FORMAT_VERSION = 1
#: The ego columns of a log (``World.state_arrays``).
EGO_FIELDS: tuple[str, ...] = VEHICLE_STATE_FIELDS
#: ``info`` entries kept per step (numbers and flags; the HUD and the benchmark read them).
INFO_FIELDS: tuple[str, ...] = (
    "time_s",
    "speed_mps",
    "speed_limit_mps",
    "route_completion",
    "lane",
    "lane_offset_m",
    "jerk_mps3",
    "friction",
    "visibility_m",
    "night",
    "rain",
    "action_clipped",
    "collided",
    "off_road",
    "is_success",
    "stop_line_m",
    "stop_line_kind",
)
#: ``info["stop_line"]`` as the number kept in the ``stop_line_kind`` column.
STOP_LINE_CODES = {"": 0, "green": 1, "amber": 2, "red": 3, "yield": 4}
_META = "episode.json"
_ARRAYS = "arrays.npz"


class EpisodeLogError(ValueError):
    """A log that cannot be used; the message is one line naming the file."""


@dataclass
class EpisodeLog:
    """One recorded episode.

    Attributes:
        meta: the JSON part (see the module docstring).
        arrays: name -> array (``actions``, ``rewards``, ``reward_terms``, ``ego``, ``traffic_xy``,
            ``traffic_yaw``, ``traffic_v``, ``traffic_active``, ``info``, ``sensor_valid``).
        path: the folder it was loaded from or saved to.
    """

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    path: Path | None = None

    @property
    def steps(self) -> int:
        """Number of env steps recorded."""
        return int(len(self.arrays["actions"]))

    @property
    def env_id(self) -> str:
        """The Gymnasium id the episode ran in."""
        return str(self.meta["env_id"])

    def ego(self, t: int) -> VehicleState:
        """Ego state after step ``t`` (0: at the reset)."""
        return VehicleState(*(float(v) for v in self.arrays["ego"][t]))

    def info(self, t: int) -> dict[str, float]:
        """The recorded ``info`` numbers after step ``t`` (0: at the reset)."""
        return dict(zip(self.meta["info_fields"], self.arrays["info"][t].tolist(), strict=True))

    def config(self) -> EnvConfig:
        """The episode's complete env configuration."""
        try:
            return build(EnvConfig, self.meta["config"])
        except ConfigError as err:
            raise EpisodeLogError(f"{self._where()}: the recorded config no longer builds ({err})") from None

    def make_env(self, render_mode: str | None = None) -> gym.Env:
        """A fresh env built like the recorded one (same id and configuration), not yet reset."""
        import envs  # noqa: F401  (registers the ids)

        if self.env_id not in gym.registry:
            raise EpisodeLogError(f"{self._where()}: unknown scenario id {self.env_id!r}; known: {', '.join(_drive_sim_ids())}")
        return gym.make(self.env_id, cfg=self.config(), render_mode=render_mode)

    def reset_env(self, env: gym.Env) -> tuple[Any, dict[str, Any]]:
        """Reset ``env`` exactly as the recorded episode began (its seed, or its generator state)."""
        start = self.meta["reset"]
        if start.get("seed") is not None:
            return env.reset(seed=int(start["seed"]))
        rng = np.random.default_rng(0)  # a PCG64 whose state is replaced by the recorded one
        rng.bit_generator.state = _state_from_json(start["generator_state"])
        env.unwrapped._np_random = rng  # what Env.reset(seed=None) goes on using
        return env.reset()

    # ------------------------------------------------------------------ files
    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the log to ``folder`` (created; an existing log is kept unless ``overwrite``)."""
        folder = Path(folder)
        if folder.exists() and not overwrite:
            raise FileExistsError(f"episode log: {folder} exists; choose another folder or pass overwrite")
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            (tmp / _META).write_text(json.dumps(self.meta, indent=1, allow_nan=True), encoding="utf-8")
            np.savez_compressed(tmp / _ARRAYS, **self.arrays)
            os.chmod(tmp, umask_mode(0o777))  # mkdtemp makes 0700
            for f in tmp.iterdir():
                sync_file(f)
                os.chmod(f, umask_mode())
            sync_folder(tmp)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
            sync_folder(folder.parent)
        except OSError as err:
            raise OSError(err.errno, err.strerror or str(err), str(folder)) from None  # named by the log, not its temporary folder
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        self.path = folder
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> EpisodeLog:
        """Read a log folder (or its ``episode.json``).

        Raises:
            EpisodeLogError: one line: missing, truncated, not a log, or written by a newer format.
        """
        folder = Path(folder)
        if folder.name == _META:
            folder = folder.parent
        meta_path, arrays_path = folder / _META, folder / _ARRAYS
        if not folder.exists():
            raise EpisodeLogError(f"episode log: {folder} does not exist")
        if not meta_path.is_file() or not arrays_path.is_file():
            missing = _META if not meta_path.is_file() else _ARRAYS
            raise EpisodeLogError(f"episode log: {folder} has no {missing}; a log folder holds {_META} and {_ARRAYS}")
        try:
            meta = read_json(meta_path, "episode log", max_bytes=MAX_LOG_BYTES)
        except ValueError as err:
            raise EpisodeLogError(f"{err}; the file may be truncated") from None
        if not isinstance(meta, dict) or "format_version" not in meta:
            raise EpisodeLogError(f"episode log: {meta_path} is not a drive-sim episode log (no format_version)")
        version = meta["format_version"]
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise EpisodeLogError(
                f"episode log: {meta_path} has format version {version}, newer than this drive-sim reads "
                f"({FORMAT_VERSION}); upgrade drive-sim"
            )
        _check_meta(meta, meta_path)
        try:
            with zipfile.ZipFile(arrays_path) as archive:  # an .npz is a zip: its sizes are known before anything is read
                unpacked = sum(i.file_size for i in archive.infolist())
            if unpacked > MAX_LOG_BYTES:
                raise EpisodeLogError(
                    f"episode log: {arrays_path} unpacks to {unpacked / 2**20:,.0f} MiB, "
                    f"more than the {MAX_LOG_BYTES / 2**20:,.0f} MiB a log may"
                )
            with np.load(arrays_path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise EpisodeLogError(
                f"episode log: {arrays_path} does not load ({str(err).splitlines()[0]}); the file may be truncated"
            ) from None
        missing_arrays = [k for k in ("actions", "rewards", "ego", "traffic_xy", "traffic_yaw", "info") if k not in arrays]
        if missing_arrays:
            raise EpisodeLogError(f"episode log: {arrays_path} lacks {', '.join(missing_arrays)}")
        if len(arrays["ego"]) != len(arrays["actions"]) + 1:
            raise EpisodeLogError(
                f"episode log: {arrays_path} is inconsistent ({len(arrays['actions'])} actions, {len(arrays['ego'])} states)"
            )
        _check_arrays(meta, arrays, arrays_path)
        return cls(meta, arrays, folder)

    def _where(self) -> str:
        return f"episode log {self.path}" if self.path is not None else "episode log"


#: The most an episode log may hold (a log is about 1 MB per 1,000 steps of dense traffic).
MAX_LOG_BYTES = 512 * 1024 * 1024
#: Tracks a ``perceived`` episode's log keeps per step (the nearest; NaN rows pad).
LOG_TRACKS = 16
#: ``episode.json``'s entries a log needs, and their JSON types.
_META_FIELDS: dict[str, type | tuple[type, ...]] = {
    "env_id": str,
    "config": dict,
    "reset": dict,
    "control_period_s": (int, float),
    "ego_fields": list,
    "info_fields": list,
    "reward_terms": list,
    "sensors": list,
    "events": list,
}


def _check_meta(meta: dict[str, Any], where: Path) -> None:
    """Every entry of ``episode.json`` that replay and the metrics read, present and of its type (one line naming it)."""
    for key, kind in _META_FIELDS.items():
        if key not in meta:
            raise EpisodeLogError(f"episode log: {where}: {key}: missing (required)")
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise EpisodeLogError(
                f"episode log: {where}: {key}: expected a {getattr(kind, '__name__', 'number')}, got {type(meta[key]).__name__}"
            )
    for key in ("ego_fields", "info_fields", "reward_terms", "sensors"):
        if not all(isinstance(v, str) for v in meta[key]):
            raise EpisodeLogError(f"episode log: {where}: {key}: expected a list of names")
    if list(meta["ego_fields"]) != list(EGO_FIELDS):
        raise EpisodeLogError(f"episode log: {where}: ego_fields: expected {', '.join(EGO_FIELDS)}")
    missing = [
        k for k in ("route_completion", "is_success", "collided", "off_road", "speed_limit_mps", "time_s") if k not in meta["info_fields"]
    ]
    if missing:
        raise EpisodeLogError(f"episode log: {where}: info_fields: lacks {', '.join(missing)}")
    if not (isinstance(meta["control_period_s"], (int, float)) and 0 < meta["control_period_s"] <= 1.0):
        raise EpisodeLogError(f"episode log: {where}: control_period_s: expected seconds in (0, 1]")
    seed = meta["reset"].get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise EpisodeLogError(f"episode log: {where}: reset.seed: expected a non-negative integer or null, got {seed!r}")
    if seed is None and not isinstance(meta["reset"].get("generator_state"), dict):
        raise EpisodeLogError(f"episode log: {where}: reset: needs a seed or a generator_state")
    for i, ev in enumerate(meta["events"]):
        if not (
            isinstance(ev, dict)
            and isinstance(ev.get("step"), int)
            and isinstance(ev.get("kind"), str)
            and isinstance(ev.get("value"), str)
        ):
            raise EpisodeLogError(f"episode log: {where}: events[{i}]: expected {{step, kind, value}}")


def _check_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray], where: Path) -> None:
    """Every array's shape against the episode's length, the traffic count and the meta's column names."""
    t = len(arrays["actions"])
    n = arrays["traffic_xy"].shape[1] if arrays["traffic_xy"].ndim == 3 else -1
    expected: dict[str, tuple[int, ...]] = {
        "rewards": (t,),
        "ego": (t + 1, len(meta["ego_fields"])),
        "info": (t + 1, len(meta["info_fields"])),
        "traffic_xy": (t + 1, max(n, 0), 2),
        "traffic_yaw": (t + 1, max(n, 0)),
        "traffic_v": (t + 1, max(n, 0)),
        "traffic_active": (t + 1, max(n, 0)),
        "reward_terms": (t, len(meta["reward_terms"])),
        "sensor_valid": (t + 1, len(meta["sensors"])),
        "estimate": (t + 1, len(ESTIMATE_FIELDS)),
        "tracks": (t + 1, LOG_TRACKS, 5),
    }
    for key, shape in expected.items():
        if key not in arrays:
            if key in ("traffic_v", "traffic_active", "reward_terms", "sensor_valid", "estimate", "tracks"):
                continue  # written by every version (the estimates on ``perceived`` only), but replay copes without them
            raise EpisodeLogError(f"episode log: {where}: {key}: missing")
        a = arrays[key]
        if a.shape != shape:
            raise EpisodeLogError(f"episode log: {where}: {key}: shape {a.shape}, expected {shape} ({t} steps, {max(n, 0)} vehicles)")
        if a.dtype.kind not in "fiub":
            raise EpisodeLogError(f"episode log: {where}: {key}: expected numbers, got {a.dtype}")


def _drive_sim_ids() -> list[str]:
    return sorted(k for k in gym.registry if k.startswith("DriveSim/"))


def _state_to_json(state: Mapping[str, Any]) -> dict[str, Any]:
    # PCG64 state integers exceed JSON's safe range for other readers: kept as strings.
    return json.loads(json.dumps(state, default=str), parse_int=str)


def _state_from_json(state: Any) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, str) and v.lstrip("-").isdigit():
            return int(v)
        return v

    return conv(state)


# ---------------------------------------------------------------------------------------------- recording
@dataclass
class _Episode:
    meta: dict[str, Any]
    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terms: list[list[float]] = field(default_factory=list)
    ego: list[list[float]] = field(default_factory=list)
    traffic_xy: list[np.ndarray] = field(default_factory=list)
    traffic_yaw: list[np.ndarray] = field(default_factory=list)
    traffic_v: list[np.ndarray] = field(default_factory=list)
    traffic_active: list[np.ndarray] = field(default_factory=list)
    info: list[list[float]] = field(default_factory=list)
    sensors: list[list[bool]] = field(default_factory=list)
    estimate: list[list[float]] = field(default_factory=list)
    tracks: list[np.ndarray] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)


class RecordEpisodes(gym.Wrapper):
    """Write an episode log (``out_dir/ep_NNNN``) for every episode of the wrapped DrivingEnv.

    With ``out_dir=None`` the logs are kept in memory instead, in ``logs`` (the benchmark computes
    its metrics from them without touching the disk).

    Episodes are numbered from ``first_index`` in the order they start; ``name`` can name them
    instead (called with the episode index and its reset seed, None when it had none). A log is
    written when its episode ends, or, marked unfinished, when the next reset or ``close`` cuts it
    short. An existing log is never overwritten: the episode fails with FileExistsError at its start.

    Args:
        env: a DrivingEnv, possibly wrapped.
        out_dir: folder for the logs (created).
        first_index: number of the first episode.
        name: ``(index, seed) -> folder name``.
        extra_meta: JSON-able entries added to every log's meta (the agent's name, say).
    """

    def __init__(
        self,
        env: gym.Env,
        out_dir: str | Path | None,
        *,
        first_index: int = 0,
        name: Callable[[int, int | None], str] | None = None,
        extra_meta: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(env)
        from envs.driving_env import DrivingEnv

        if not isinstance(env.unwrapped, DrivingEnv):
            raise TypeError(f"RecordEpisodes: wraps drive-sim envs only, got {type(env.unwrapped).__name__}")
        self.out_dir = None if out_dir is None else Path(out_dir)
        self._index = first_index
        self._name = name or (lambda index, seed: f"ep_{index:04d}")
        self._extra = dict(extra_meta or {})
        self._ep: _Episode | None = None
        #: folders of the logs written so far
        self.written: list[Path] = []
        #: the logs kept in memory (``out_dir=None``)
        self.logs: list[EpisodeLog] = []
        self._last: EpisodeLog | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode (and its log); an unfinished previous episode is written first."""
        self._finish(unfinished=True)
        inner = self.env.unwrapped
        name = self._name(self._index, seed)
        if self.out_dir is not None and (self.out_dir / name).exists():
            raise FileExistsError(f"episode log: {self.out_dir / name} exists; record into another folder")
        start: dict[str, Any] = {"seed": seed}
        if seed is None:
            start["generator_state"] = _state_to_json(inner.np_random.bit_generator.state)
        obs, info = self.env.reset(seed=seed, options=options)
        cfg = inner.config
        w = inner.world
        self._ep = _Episode(
            meta={
                "format_version": FORMAT_VERSION,
                "env_id": inner.spec.id if inner.spec is not None else "DriveSim/Custom-v0",
                "scenario": cfg.scenario.name,
                "config": json.loads(json.dumps(dataclasses.asdict(cfg), allow_nan=True)),
                "reset": start,
                "index": self._index,
                "folder": name,
                "code_version": {"drive_sim": drive_sim.__version__, "numpy": np.__version__},
                "control_period_s": w.cfg.control_period_s,
                "ego_fields": list(EGO_FIELDS),
                "info_fields": list(INFO_FIELDS),
                "reward_terms": list(cfg.reward.weights()),
                "sensors": sorted(w.sensor_valid()),
                **self._extra,
            }
        )
        self._index += 1
        self._record_state(info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step and record; the log is written when the episode ends."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        ep = self._ep
        if ep is not None:
            ep.actions.append(np.array(action).copy())
            ep.rewards.append(float(reward))
            ep.terms.append([float(info["reward_terms"][k]) for k in ep.meta["reward_terms"]])
            self._record_state(info)
            if terminated or truncated:
                ep.meta["outcome"] = {"terminated": bool(terminated), "truncated": bool(truncated)}
                self._finish(unfinished=False)
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Write an unfinished episode, then close the env."""
        self._finish(unfinished=True)
        super().close()

    def _record_state(self, info: Mapping[str, Any]) -> None:
        ep = self._ep
        assert ep is not None
        now = self.env.unwrapped.world.state_arrays()
        ep.ego.append(now["ego"].tolist())
        ep.traffic_xy.append(now["traffic_xy"])
        ep.traffic_yaw.append(now["traffic_yaw"])
        ep.traffic_v.append(now["traffic_v"])
        ep.traffic_active.append(now["traffic_active"])
        numbers = {**info, "stop_line_kind": STOP_LINE_CODES.get(str(info.get("stop_line", "")), 0)}
        ep.info.append([float(numbers.get(k, math.nan)) for k in INFO_FIELDS])
        valid = info.get("sensor_valid", {})
        ep.sensors.append([bool(valid.get(k, True)) for k in ep.meta["sensors"]])
        if ep.meta["config"]["observation"]["type"] == "perceived":
            # What the car believed beside the truth: the ego estimate and the nearest tracks (NaN: no estimate yet).
            est = self.env.unwrapped.perceived_estimate
            row = [math.nan] * len(ESTIMATE_FIELDS)
            tracks = np.full((LOG_TRACKS, 5), math.nan)
            if est is not None:
                c = est.ego_cov
                row = [*(float(v) for v in est.ego[:4]), float(c[0, 0]), float(c[0, 1]), float(c[1, 1]), float(est.caution)]
                k = min(len(est.tracks), LOG_TRACKS)
                tracks[:k] = est.tracks[:k]
            ep.estimate.append(row)
            ep.tracks.append(tracks)
        step = len(ep.actions)
        # Events: what the HUD flags and the benchmark counts, with the step it happened after.
        now = {
            "collision": info.get("collision_kind") or "",
            "off_road": "off road" if info.get("off_road") else "",
            "signal": str(info.get("signal", "")),
            **{f"sensor {k}": "" if ok else "fault" for k, ok in valid.items()},
        }
        for kind, value in now.items():
            if value != ep.last.get(kind, ""):
                ep.events.append({"step": step, "time_s": float(info.get("time_s", 0.0)), "kind": kind, "value": value})
        ep.last = now

    def episode_log(self) -> EpisodeLog | None:
        """The log of the episode under way, as recorded so far (marked unfinished), or between episodes the last one's.

        Whether or not logs are written, so the one episode loop can summarise any episode it drove.
        """
        if self._ep is not None:
            return self._build(self._ep, unfinished=True)
        return self._last

    def _finish(self, *, unfinished: bool) -> None:
        ep, self._ep = self._ep, None
        if ep is None:
            return
        log = self._build(ep, unfinished=unfinished)
        self._last = log
        if self.out_dir is None:
            self.logs.append(log)
        else:
            self.written.append(log.save(self.out_dir / ep.meta["folder"]))

    def _build(self, ep: _Episode, *, unfinished: bool) -> EpisodeLog:
        """The log of ``ep`` as recorded so far (``ep`` itself is not changed)."""
        meta = dict(ep.meta)
        if unfinished:
            meta["outcome"] = {"terminated": False, "truncated": False, "unfinished": True}
        meta["steps"] = len(ep.actions)
        meta["return"] = float(sum(ep.rewards))
        meta["events"] = list(ep.events)
        space = self.env.action_space
        if ep.actions:
            actions = np.stack(ep.actions)
        else:
            actions = np.zeros((0, *space.shape), dtype=space.dtype) if space.shape else np.zeros(0, np.int64)
        arrays = {
            "actions": actions,
            "rewards": np.asarray(ep.rewards, np.float64),
            "reward_terms": np.asarray(ep.terms, np.float64).reshape(len(ep.rewards), len(meta["reward_terms"])),
            "ego": np.asarray(ep.ego, np.float64),
            "traffic_xy": np.stack(ep.traffic_xy),
            "traffic_yaw": np.stack(ep.traffic_yaw),
            "traffic_v": np.stack(ep.traffic_v),
            "traffic_active": np.stack(ep.traffic_active).astype(bool),
            "info": np.asarray(ep.info, np.float64),
            "sensor_valid": np.asarray(ep.sensors, bool).reshape(len(ep.ego), len(meta["sensors"])),
        }
        if ep.estimate:
            arrays["estimate"] = np.asarray(ep.estimate, np.float64)
            arrays["tracks"] = np.stack(ep.tracks)
        return EpisodeLog(meta, arrays)


# ---------------------------------------------------------------------------------------------- replay
#: Arrays compared by ``resimulate`` (state after each step).
COMPARED = ("ego", "traffic_xy", "traffic_yaw", "traffic_v")


@dataclass(frozen=True)
class Mismatch:
    """Where a re-simulation first left the log: after ``step``, in ``array``, by ``magnitude``."""

    step: int
    array: str
    magnitude: float

    def __str__(self) -> str:
        return f"states differ from step {self.step} on ({self.array}, max |difference| {self.magnitude:.3g})"


@dataclass
class ReplayReport:
    """Outcome of ``resimulate``.

    Attributes:
        steps: steps re-simulated.
        max_error: array name -> largest absolute difference over the episode.
        mismatch: the first step beyond ``atol`` (None: the recorded states again).
    """

    steps: int
    max_error: dict[str, float]
    mismatch: Mismatch | None

    @property
    def exact(self) -> bool:
        """True when every compared state matched within the tolerance."""
        return self.mismatch is None


def resimulate(
    log: EpisodeLog,
    *,
    atol: float = 1e-6,
    env: gym.Env | None = None,
    on_step: Callable[[int, gym.Env, dict[str, Any]], None] | None = None,
    stop_at_mismatch: bool = False,
) -> ReplayReport:
    """Run the recorded actions again from the recorded reset and compare every state.

    Args:
        log: the episode.
        atol: largest absolute difference counted as equal.
        env: an env built by ``log.make_env()`` (one is made and closed otherwise).
        on_step: called with (step, env, info) at the reset (step 0) and after every step (video).
        stop_at_mismatch: stop at the first difference instead of running the episode out.
    """
    own = env is None
    env = log.make_env() if env is None else env
    max_error = dict.fromkeys(COMPARED, 0.0)
    mismatch: Mismatch | None = None
    try:
        _, info = log.reset_env(env)
        steps = 0
        for t in range(log.steps + 1):
            if t > 0:
                _, _, terminated, truncated, info = env.step(log.arrays["actions"][t - 1])
                steps = t
            now = env.unwrapped.world.state_arrays()
            for name in COMPARED:
                rec = log.arrays[name][t]
                err = math.inf if now[name].shape != rec.shape else float(np.max(np.abs(now[name] - rec), initial=0.0))
                max_error[name] = max(max_error[name], err)
                if err > atol and mismatch is None:
                    mismatch = Mismatch(t, name, err)
            if on_step is not None:
                on_step(t, env, info)
            if (mismatch is not None and stop_at_mismatch) or (t > 0 and (terminated or truncated)):
                break
    finally:
        if own:
            env.close()
    return ReplayReport(steps, max_error, mismatch)


def playback(log: EpisodeLog, env: gym.Env | None = None) -> Iterator[tuple[int, gym.Env]]:
    """Show the recorded states one step at a time, without simulating (for rendering).

    The env is reset with the episode's seed so the scene (road, scenery) is the recorded one;
    then the ego car and every traffic vehicle are put where the log has them at each step.
    Yields (step, env); the caller renders.
    """
    own = env is None
    env = log.make_env() if env is None else env
    try:
        log.reset_env(env)
        w = env.unwrapped.world
        arr = log.arrays
        active = arr.get("traffic_active")
        for t in range(log.steps + 1):
            w.show_state(log.ego(t), arr["traffic_xy"][t], arr["traffic_yaw"][t], None if active is None else active[t])
            yield t, env
    finally:
        if own:
            env.close()


def recorded_action_text(log: EpisodeLog, t: int) -> str:
    """The action taken at step ``t`` (1-based: the one that led to state ``t``) as HUD text."""
    if t == 0 or t > log.steps:
        return ""
    a = log.arrays["actions"][t - 1]
    kind = log.meta["config"]["action"]["type"]
    if kind == "continuous":
        steer, accel = np.asarray(a, np.float64).reshape(2).tolist()
        return f"steer {steer:+.2f} accel {accel:+.2f}"
    i = int(np.asarray(a).reshape(()))
    if kind == "meta":
        from envs.actions import META_ACTIONS

        return META_ACTIONS[i]
    return f"#{i}"


def recorded_events(log: EpisodeLog, t: int) -> tuple[str, ...]:
    """The HUD's event flags at step ``t``, from the log's events."""
    state: dict[str, str] = {}
    for ev in log.meta.get("events", []):
        if ev["step"] > t:
            break
        state[ev["kind"]] = ev["value"]
    from envs.driving_env import frame_events

    sensors = {k.split(" ", 1)[1]: not v for k, v in state.items() if k.startswith("sensor ")}
    return frame_events(
        {
            "collision_kind": state.get("collision", ""),
            "off_road": bool(state.get("off_road")),
            "sensor_valid": sensors,
            "signal": state.get("signal", ""),
        }
    )


def log_frame_data(log: EpisodeLog, t: int, env: gym.Env, *, title: str | None = None) -> Any:
    """A video frame's data for state ``t`` of ``log``, with ``env`` posed there by ``playback``.

    HUD values come from the log; the lidar panel shows an ideal sweep and, for an agent that
    observed a camera, the camera panel the car's camera without weather effects, both taken in the
    posed world (observations are not logged).
    """
    from drive_sim.render import FrameData

    w = env.unwrapped.world
    info = log.info(t)
    e = log.ego(t)
    rewards = log.arrays["rewards"]
    active = log.arrays.get("traffic_active")
    reading = w.lidar.read(e.x_m, e.y_m, e.yaw_rad, np.random.default_rng(t))
    return FrameData(
        step=t,
        time_s=info["time_s"],
        ego=e,
        traffic_xy=log.arrays["traffic_xy"][t],
        traffic_yaw=log.arrays["traffic_yaw"][t],
        traffic_active=np.ones(len(log.arrays["traffic_yaw"][t]), bool) if active is None else active[t],
        speed_limit_mps=info["speed_limit_mps"],
        action=recorded_action_text(log, t),
        reward=float(rewards[t - 1]) if t > 0 else 0.0,
        total_return=float(rewards[:t].sum()),
        friction=info["friction"],
        visibility_m=info["visibility_m"],
        night=info["night"],
        rain=info["rain"],
        events=recorded_events(log, t),
        lidar_ranges_m=reading.ranges_m,
        lidar_angles_rad=reading.angles_rad,
        lidar_range_m=w.lidar.cfg.range_m,
        camera=w.camera.capture(e.x_m, e.y_m, e.yaw_rad).rgb if log.meta["config"]["observation"]["type"] in ("camera", "multi") else None,
        title=log.meta.get("scenario", "") if title is None else title,
        estimate=EstimateView.from_row(log.arrays["estimate"][t], log.arrays["tracks"][t]) if "estimate" in log.arrays else None,
    )
