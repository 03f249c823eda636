"""Collect a labelled camera dataset from the world's ground truth (``drive-sim collect``).

The expert drives every episode, with seeded steering and speed perturbations (a slow random
drift and occasional swerves it must recover from), so the frames cover off-centre positions,
not only the lane centre. Each episode gets one of the weathers (dry, rain, fog, night, ice) in
turn, replacing its scenario's own conditions. Every ``every``-th control step the ego camera is
rendered at each configured size, with its class and depth buffers and the scalar labels of
``envs.labels``.

Layout of the output folder::

    manifest.json        config, code version, label names, every episode (scenario, weather,
                         seed, split, frames, sha256 of its shard); written first (status
                         "collecting"), completed at the end
    shards/NNNNN.npz     one episode: rgbS (N,S,S,3) uint8, segS (N,S,S) uint8, depthS (N,S,S)
                         uint16 [cm] per size S, labels (N, L) float32, step (N,) int32
    collect.json         timings (frames per second): the one file that differs between runs

Shards are written atomically with fixed zip timestamps, so the same config gives byte-identical
shards, and an interrupted collection keeps its finished ones: the same command finishes the rest.
Splits are by episode (seed): of each scenario's episodes, 8 in 10 train, 1 validation, 1 test;
every episode of the held-out scenario is "holdout".
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drive_sim.config import ConfigError, require
from drive_sim.files import read_json, read_npz, write_json, write_npz

#: The conditions each episode may get, as config overrides of the scenario's world.
WEATHERS: dict[str, dict[str, Any]] = {
    "dry": {"friction": 0.9, "weather": {"visibility_m": 0.0, "night": 0.0, "rain": 0.0, "schedule": []}},
    "rain": {"friction": 0.6, "weather": {"visibility_m": 0.0, "night": 0.0, "rain": 0.7, "schedule": []}},
    "fog": {"friction": 0.9, "weather": {"visibility_m": 60.0, "night": 0.0, "rain": 0.0, "schedule": []}},
    "night": {"friction": 0.9, "weather": {"visibility_m": 0.0, "night": 0.9, "rain": 0.0, "schedule": []}},
    "ice": {"friction": 0.15, "weather": {"visibility_m": 0.0, "night": 0.0, "rain": 0.0, "schedule": []}},
}
SPLITS = ("train", "val", "test", "holdout")
FORMAT = 1


@dataclass(frozen=True)
class CollectConfig:
    """What to collect.

    Attributes:
        scenarios: scenario names or ids; ``("all",)`` is the whole library.
        episodes: episodes in all, spread over the scenarios in turn.
        seed: the collection's seed; episode ``i`` runs with seed ``seed * 1_000_000 + i``.
        sizes: camera sizes [px] (square); the env's camera is 84.
        every: keep every ``every``-th control step's frame.
        max_steps: control steps per episode at most.
        holdout: the scenario kept out of train/val/test (its episodes form the "holdout" split);
            "" for none.
        weathers: the conditions the episodes cycle through (``WEATHERS``).
        lateral_drift_mps2: size of the slow random steering drift added to the expert's, as a
            lateral acceleration [m/s^2].
        swerves_per_min: expected swerves a minute (a steering pulse the expert then recovers from).
        swerve_mps2: largest lateral acceleration of a swerve [m/s^2]. Drift and swerves shrink
            with the weather's friction (by friction / 0.9), so that they stay within what the
            tyres can take.
        max_heading_deg: the episode ends when the car's heading is this far off the lane's (it has
            spun or is sliding sideways, out of the lane-following distribution the net serves).
        pedal_noise: size of the slow random pedal drift added to the expert's acceleration command
            (the continuous action's second component, in [-1, 1]).
    """

    scenarios: tuple[str, ...] = ("all",)
    episodes: int = 200
    seed: int = 0
    sizes: tuple[int, ...] = (84,)
    every: int = 2
    max_steps: int = 300
    holdout: str = "merge"
    weathers: tuple[str, ...] = tuple(WEATHERS)
    lateral_drift_mps2: float = 0.3
    swerves_per_min: float = 4.0
    swerve_mps2: float = 1.5
    max_heading_deg: float = 30.0
    pedal_noise: float = 0.15

    def __post_init__(self) -> None:
        require(self.episodes >= 1, "episodes", f"must be at least 1, got {self.episodes}")
        require(
            bool(self.sizes) and all(16 <= s <= 512 for s in self.sizes), "sizes", f"must be sizes in [16, 512] px, got {list(self.sizes)}"
        )
        require(len(set(self.sizes)) == len(self.sizes), "sizes", f"must differ, got {list(self.sizes)}")
        require(self.every >= 1, "every", f"must be at least 1, got {self.every}")
        require(self.max_steps >= 1, "max_steps", f"must be at least 1, got {self.max_steps}")
        bad = [w for w in self.weathers if w not in WEATHERS]
        require(bool(self.weathers) and not bad, "weathers", f"unknown {bad}; allowed: {', '.join(WEATHERS)}")

    def as_dict(self) -> dict[str, Any]:
        """The config as JSON-ready data (kept in the manifest)."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectConfig:
        """The config a manifest holds."""
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}}
        return cls(**kw)


@dataclass(frozen=True)
class EpisodePlan:
    """One episode to collect: its shard number, env id, weather, seed and split."""

    index: int
    env_id: str
    weather: str
    seed: int
    split: str

    @property
    def shard(self) -> str:
        """The shard's path inside the dataset folder."""
        return f"shards/{self.index:05d}.npz"


def plan(cfg: CollectConfig) -> list[EpisodePlan]:
    """Every episode of ``cfg``, in order.

    Episode ``i`` is scenario ``j = i mod n``; the ``k``-th episode of a scenario is train,
    validation or test by ``k mod 10`` (0-7, 8, 9) and gets weather ``(k + k // 10 + j) mod
    len(weathers)``, so that every split sees every weather: across scenarios at once, and within
    each scenario from its 50th episode on.
    """
    from agents.evaluation.bench import scenario_ids
    from envs import env_id

    ids = scenario_ids(cfg.scenarios)
    held = env_id(cfg.holdout) if cfg.holdout else ""
    require(not held or held in ids, "holdout", f"{cfg.holdout!r} is not one of the collected scenarios")
    require(not held or len(ids) > 1, "holdout", "needs at least one other scenario to train on")
    seen: dict[str, int] = {}
    out = []
    for i in range(cfg.episodes):
        j = i % len(ids)
        sid = ids[j]
        k = seen.get(sid, 0)
        seen[sid] = k + 1
        split = (
            "holdout" if sid == held else ("train", "train", "train", "train", "train", "train", "train", "train", "val", "test")[k % 10]
        )
        weather = cfg.weathers[(k + k // 10 + j) % len(cfg.weathers)]
        out.append(EpisodePlan(i, sid, weather, cfg.seed * 1_000_000 + i, split))
    return out


def code_version() -> dict[str, str]:
    """The package version and a hash of the sources that decide what a shard holds.

    Every module of ``drive_sim`` (world, scenery, sensors, scenarios) and ``envs`` (labels,
    observations), the expert and this collector: a change to any of them may change the frames
    or the labels, so a dataset is only resumed by the code that started it.
    """
    import drive_sim

    root = Path(drive_sim.__file__).resolve().parent.parent
    h = hashlib.sha256()
    files = sorted(
        [*root.joinpath("drive_sim").rglob("*.py"), *root.joinpath("drive_sim").rglob("*.yaml"), *root.joinpath("envs").rglob("*.py")]
    )
    files += [root / "agents" / "policies" / "expert.py", Path(__file__).resolve()]
    for f in files:
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return {"drive_sim": drive_sim.__version__, "sources_sha256": h.hexdigest()}


class Perturbation:
    """Seeded offsets to the expert's action: a slow random drift and occasional swerves.

    Steering offsets are drawn as lateral accelerations and turned into steering for the speed at
    hand (the same swerve at 30 m/s would be a 36 times harder turn than at 5 m/s in steering
    terms); the pedal offset is a slow drift of the acceleration command.
    """

    def __init__(
        self, cfg: CollectConfig, rng: np.random.Generator, dt_s: float, wheelbase_m: float, max_steer_rad: float, friction: float = 0.9
    ) -> None:
        self.cfg, self.rng, self.dt = cfg, rng, dt_s
        self.grip = min(1.0, friction / 0.9)
        self.wheelbase, self.max_steer = wheelbase_m, max_steer_rad
        self.drift = self.pedal = self.swerve = 0.0
        self.swerve_left = 0
        self.theta = dt_s / 2.0  # the drifts forget over about two seconds

    def step(self, speed_mps: float) -> tuple[float, float]:
        """(steer, pedal) to add this control period."""
        cfg, rng, th = self.cfg, self.rng, self.theta
        self.drift += -th * self.drift + cfg.lateral_drift_mps2 * np.sqrt(2 * th) * rng.standard_normal()
        self.pedal += -th * self.pedal + cfg.pedal_noise * np.sqrt(2 * th) * rng.standard_normal()
        if self.swerve_left > 0:
            self.swerve_left -= 1
        elif rng.random() < cfg.swerves_per_min * self.dt / 60.0:
            self.swerve_left = int(rng.integers(int(0.3 / self.dt), int(0.8 / self.dt) + 1))
            self.swerve = float(rng.uniform(-cfg.swerve_mps2, cfg.swerve_mps2))
        lateral = self.grip * (self.drift + (self.swerve if self.swerve_left > 0 else 0.0))
        v = max(speed_mps, 5.0)
        return float(np.arctan(lateral / v**2 * self.wheelbase) / self.max_steer), float(self.pedal)


def collect_episode(cfg_dict: dict[str, Any], ep: EpisodePlan, out: str) -> dict[str, Any]:
    """Drive one episode, write its shard, return its manifest entry (a pool job)."""
    import gymnasium as gym

    import drive_sim  # noqa: F401  (registers the ids in a spawned worker)
    from agents.policies.expert import ExpertAgent
    from envs.labels import SCALAR_LABELS, FrameLabeller

    heading_col = SCALAR_LABELS.index("heading_error_deg")

    cfg = CollectConfig.from_dict(cfg_dict)
    t0 = time.perf_counter()
    # The weather of the plan, and signals starting anywhere in their cycle (so frames show every light).
    override = {"scenario": {"world": {**WEATHERS[ep.weather], "road": {"signals": {"random_start": True}}}}}
    env = gym.make(ep.env_id, obs_type="kinematics", action_type="continuous", cfg=override)
    try:
        obs, info = env.reset(seed=ep.seed)
        agent = ExpertAgent.for_env(env)
        # The perturbations' generator, from the episode's seed (the cameras' rain has its own).
        rng = np.random.default_rng([ep.seed, 18])
        world_cfg = env.unwrapped.config.scenario.world
        noise = Perturbation(
            cfg, rng, world_cfg.control_period_s, world_cfg.vehicle.wheelbase_m, world_cfg.vehicle.max_steer_rad, world_cfg.friction
        )
        labeller = FrameLabeller(env.unwrapped, cfg.sizes, seed=ep.seed)
        frames: dict[str, list[np.ndarray]] = {}
        steps = []
        speed = float(info["speed_mps"])
        for t in range(cfg.max_steps):
            if t % cfg.every == 0:
                shot = labeller.capture()
                if abs(float(shot["labels"][heading_col])) > cfg.max_heading_deg:
                    break  # the car has lost control (a spin or a slide): no longer driving along the lane
                for k, v in shot.items():
                    frames.setdefault(k, []).append(v)
                steps.append(t)
            steer, pedal = noise.step(speed)
            action = np.asarray(agent.act(obs), np.float64)
            action[0] = np.clip(action[0] + steer, -1.0, 1.0)
            action[1] = np.clip(action[1] + pedal, -1.0, 1.0)
            obs, _, terminated, truncated, info = env.step(action.astype(np.float32))
            speed = float(info["speed_mps"])
            if terminated or truncated:
                break
    finally:
        env.close()
    arrays = {k: np.stack(v) for k, v in frames.items()}
    arrays["step"] = np.asarray(steps, np.int32)
    path = Path(out) / ep.shard
    write_npz(path, arrays)
    return {
        **dataclasses.asdict(ep),
        "file": ep.shard,
        "frames": len(steps),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "seconds": time.perf_counter() - t0,
    }


def _check_shard(path: Path, sizes: tuple[int, ...]) -> int:
    """Frames of a finished shard; ValueError (one line) if it is damaged or not of these sizes."""
    need = ["labels", "step", *[f"{kind}{s}" for s in sizes for kind in ("rgb", "seg", "depth")]]
    data = read_npz(path, "shard", need)
    n = len(data["step"])
    for k in need:
        if len(data[k]) != n:
            raise ValueError(f"shard: {path} has {len(data[k])} {k} for {n} frames")
    return n


def collect(cfg: CollectConfig, out: str | Path, *, workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Collect ``cfg`` into ``out`` (or finish an interrupted collection there); return the manifest.

    Raises:
        ConfigError: ``out`` holds a dataset of another config or of other code (one line naming both).
        ValueError: a shard there is damaged (one line naming it; delete it to collect it again).
    """
    from tqdm import tqdm

    from agents.evaluation.pool import pool_map

    out = Path(out)
    episodes = plan(cfg)
    code = code_version()
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        old = read_json(manifest_path, "dataset manifest")
        if not isinstance(old, dict) or old.get("format") != FORMAT or not isinstance(old.get("config"), dict):
            raise ConfigError(f"out: {manifest_path} is not a drive-sim dataset manifest (format {FORMAT})")
        if old["config"] != cfg.as_dict():
            diff = sorted(k for k in set(old["config"]) | set(cfg.as_dict()) if old["config"].get(k) != cfg.as_dict().get(k))
            raise ConfigError(
                f"out: {out} holds a dataset of another config (differs in {', '.join(diff)}); choose another --out or the same settings"
            )
        if old.get("code") != code:
            raise ConfigError(f"out: {out} was collected by other code ({old.get('code')}); collect into a new folder")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "status": "collecting",
        "config": cfg.as_dict(),
        "code": code,
        "labels": _label_names(),
        "episodes": [],
    }
    write_json(manifest_path, manifest)
    done: dict[int, dict[str, Any]] = {}
    todo = []
    for ep in episodes:
        path = out / ep.shard
        if path.exists():
            frames = _check_shard(path, cfg.sizes)
            done[ep.index] = {
                **dataclasses.asdict(ep),
                "file": ep.shard,
                "frames": frames,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
        else:
            todo.append(ep)
    t0 = time.perf_counter()
    timings = []
    if progress:
        print(f"collect: {len(episodes)} episodes into {out} ({len(done)} already there), sizes {list(cfg.sizes)}, {workers} worker(s)")
    with tqdm(total=len(episodes), initial=len(done), desc="collect", unit="ep", disable=not progress) as bar:

        def tick(entry: dict[str, Any]) -> None:
            bar.update(1)
            bar.set_postfix(frames=sum(e["frames"] for e in done.values()) + sum(t["frames"] for t in timings) + entry["frames"])
            timings.append(entry)

        results = pool_map(collect_episode, [(cfg.as_dict(), ep, str(out)) for ep in todo], workers, on_result=tick)
    for entry in results:
        entry = dict(entry)
        entry.pop("seconds")
        done[entry["index"]] = entry
    wall = time.perf_counter() - t0
    manifest["episodes"] = [done[ep.index] for ep in episodes]
    manifest["frames"] = {s: sum(e["frames"] for e in manifest["episodes"] if e["split"] == s) for s in SPLITS}
    manifest["status"] = "complete"
    write_json(manifest_path, manifest)
    new_frames = sum(t["frames"] for t in timings)
    write_json(
        out / "collect.json",
        {
            "episodes_collected": len(timings),
            "frames_collected": new_frames,
            "wall_s": round(wall, 2),
            "frames_per_s": round(new_frames / wall, 2) if wall > 0 and new_frames else None,
            "workers": workers,
        },
    )
    return manifest


def _label_names() -> dict[str, Any]:
    from envs.labels import LIGHT_STATES, SCALAR_LABELS, SEG_TASK_CLASSES

    return {"scalars": list(SCALAR_LABELS), "seg_classes": list(SEG_TASK_CLASSES), "light_states": list(LIGHT_STATES), "depth_unit": "cm"}


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """A complete dataset's manifest; ValueError (one line) if the folder holds none or an unfinished one."""
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise ValueError(f"data: {folder} holds no dataset (no manifest.json); make one with drive-sim collect --out {folder}")
    m = read_json(path, "dataset manifest")
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ValueError(f"data: {path} is not a drive-sim dataset manifest (format {FORMAT})")
    if m.get("status") != "complete":
        raise ValueError(f"data: {folder} is an unfinished collection; run the same drive-sim collect again to finish it")
    return m


__all__ = ["SPLITS", "WEATHERS", "CollectConfig", "EpisodePlan", "code_version", "collect", "collect_episode", "plan", "read_manifest"]
