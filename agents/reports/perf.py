"""Throughput and memory benchmark: ``drive-sim perf``.

Measures, on one core and in one run: env steps/s of ``DriveSim/Highway-v0`` for each
observation type; the raw PyBullet costs of the same scene (physics for one control period, one
lidar ``rayTestBatch``, one camera ``getCameraImage``); highway-env's highway-v0 and
highway-fast-v0 when the ``bench`` extra is installed; and RSS growth over many steps with
periodic resets. Figures are medians of repeats and ratios are taken against references
measured in the same run, because the machine is shared and noisy.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers DriveSim/*)
from drive_sim._bullet import pb
from drive_sim.config import require
from drive_sim.files import check_writable, write_json, write_text

ENV_ID = "DriveSim/Highway-v0"


@dataclass(frozen=True)
class PerfConfig:
    """Benchmark sizes.

    Attributes:
        repeats: repeats of every timing; the median is reported.
        lidar_steps: env steps per repeat with the lidar observation.
        camera_steps: env steps per repeat with camera and multi observations.
        highway_env_steps: highway-v0 steps per repeat (it runs at a few steps/s).
        scenario_steps: lidar env steps per repeat for each other registered scenario.
        planner_steps: expert-driven Highway-v0 steps per repeat (planner timing).
        video_frames: composed video frames per repeat (each of ``VIDEO_SCENES``).
        memory_steps: steps of the memory check (0 skips it and the create/close check).
        reset_every: the memory check resets the env every this many steps.
        env_cycles: envs made and closed in the create/close memory check.
        cpu: core to pin the process to (-1: do not pin).
        out: Markdown report path ("" writes nothing; docs/performance.md is the committed page); JSON and PNG go beside it.
        quick: the sizes are a smoke run's (``QUICK``): the report says its figures are not measurements.
    """

    repeats: int = 5
    lidar_steps: int = 2000
    camera_steps: int = 300
    highway_env_steps: int = 20
    scenario_steps: int = 500
    planner_steps: int = 400
    video_frames: int = 100
    memory_steps: int = 20_000
    reset_every: int = 200
    env_cycles: int = 200
    cpu: int = 0
    out: str = ""
    quick: bool = False

    def __post_init__(self) -> None:
        require(self.repeats >= 1, "repeats", f"must be at least 1, got {self.repeats}")
        for name in ("lidar_steps", "camera_steps", "highway_env_steps", "scenario_steps", "planner_steps", "video_frames"):
            require(getattr(self, name) >= 1, name, f"must be at least 1, got {getattr(self, name)}")
        require(self.memory_steps >= 0, "memory_steps", f"must be non-negative, got {self.memory_steps}")
        require(self.reset_every >= 1, "reset_every", f"must be at least 1, got {self.reset_every}")
        require(self.env_cycles >= 1, "env_cycles", f"must be at least 1, got {self.env_cycles}")


#: ``drive-sim perf --quick``: sizes that check every measurement runs, in about a minute.
QUICK = {
    "lidar_steps": 100,
    "camera_steps": 20,
    "highway_env_steps": 2,
    "scenario_steps": 20,
    "planner_steps": 20,
    "video_frames": 5,
    "repeats": 1,
    "memory_steps": 0,
    "quick": True,
}


@dataclass
class PerfResult:
    """Measured figures (medians) and the repeats behind them."""

    machine: dict[str, Any] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)


def _rate(fn: Callable[[], None], n: int, repeats: int) -> tuple[float, list[float]]:
    """Median calls/s of ``fn`` over ``repeats`` runs of ``n`` calls (after one warm-up call)."""
    fn()
    out = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append(n / (time.perf_counter() - t0))
    return statistics.median(out), out


def _stepper(env: Any, action: Any) -> Callable[[], None]:
    """One env step, resetting at episode ends."""

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()

    return step


#: Worlds of the batched vector env row (``gym.make_vec(..., num_envs=16)``, issue 20's figure).
BATCHED_WORLDS = 16

#: The larger camera size of the perception dataset (``drive-sim collect --sizes 84,128``), rendered beside the env's.
LARGE_CAMERA_PX = 128


def _camera_pass(steps: int, repeats: int, size: int | None) -> tuple[list[float], list[float]]:
    """Camera env steps/s and, after each timed step, a bare ``getCameraImage`` of the same view at ``size`` px (None: the env's)."""
    env = gym.make(ENV_ID, obs_type="camera")
    env.reset(seed=0)
    world = env.unwrapped.world
    cam, cid = world.camera, world.client._client
    width, height = (size, size) if size else (cam.cfg.width, cam.cfg.height)
    step = _stepper(env, np.array([0.0, 0.1], np.float32))
    step()
    env_rates, raw_rates = [], []
    clock = time.perf_counter
    for _ in range(repeats):
        gc.collect()
        env_s = raw_s = 0.0
        for _ in range(steps):
            t0 = clock()
            step()
            t1 = clock()
            e = world.ego
            view = cam.view_matrix(e.x_m, e.y_m, e.yaw_rad)
            t2 = clock()
            pb.getCameraImage(
                width,
                height,
                view,
                cam._proj,
                renderer=pb.ER_TINY_RENDERER,
                flags=pb.ER_NO_SEGMENTATION_MASK,
                shadow=0,
                physicsClientId=cid,
            )
            raw_s += clock() - t2
            env_s += t1 - t0
        env_rates.append(steps / env_s)
        raw_rates.append(steps / raw_s)
    env.close()
    return env_rates, raw_rates


def measure_camera(steps: int, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Camera env steps/s and raw PyBullet frames/s of the very same scenes, interleaved.

    After every timed env step, the same camera view of the same world state is rendered again
    with a bare ``getCameraImage`` call and timed separately. Frame cost depends on what is in
    view (traffic, curves), so a reference rendered elsewhere would not be comparable. A second
    pass drives the same seed with the same actions (the same scenes: the env is deterministic)
    and renders each view at ``LARGE_CAMERA_PX`` (the same square projection); it is a pass of its
    own because a frame of another size between two env steps can slow the env's next frame (the
    renderer resizes its buffers): with the interleaved 128 px frame the camera env's ratio to the
    raw frame read 0.67, with separate passes 0.72 a few minutes later (0.77 on 2026-11-29), a
    difference of the order of this machine's noise, so the separate pass is the safe choice.

    Returns:
        (env steps/s, raw frames/s at the env's size, raw frames/s at ``LARGE_CAMERA_PX``), one per repeat.
    """
    env_rates, raw_rates = _camera_pass(steps, repeats, None)
    _, large_rates = _camera_pass(steps, repeats, LARGE_CAMERA_PX)
    return env_rates, raw_rates, large_rates


def measure_perception(frames: int, repeats: int) -> dict[str, list[float]]:
    """Frames/s of the shipped perception net on the camera env's own frames, one thread.

    ``perception_b1``: the shipped default (ONNX Runtime, float32), one frame at a time with the
    driving heads (lane, lead, light), as an env step would call it; ``perception_b1_seg``: the
    same with the segmentation decoder; ``perception_b64``: batches of 64, all heads, per frame;
    ``perception_int8_b1``: the int8 graph, and ``perception_torch_b1``: the PyTorch net, each
    as ``perception_b1``. The three runtimes take turns within each repeat. Empty when no net ships.
    """
    import torch

    import perception

    if not (perception.SHIPPED.is_file() and perception.SHIPPED_ONNX.is_file() and perception.SHIPPED_INT8.is_file()):
        return {}
    torch.set_num_threads(1)
    model = perception.load()
    int8 = perception.load(int8=True)
    eager = perception.load(runtime="torch")
    env = gym.make(ENV_ID, obs_type="camera")
    obs, _ = env.reset(seed=0)
    step = _stepper(env, np.array([0.0, 0.1], np.float32))
    shots = []
    for _ in range(64):
        step()
        shots.append(env.unwrapped.world.capture_camera().rgb)
    env.close()
    batch = np.stack(shots)
    keys = ("perception_b1", "perception_b1_seg", "perception_b64", "perception_int8_b1", "perception_torch_b1")
    out: dict[str, list[float]] = {k: [] for k in keys}
    for m in (model, int8, eager):
        m(batch[:1], segmentation=True)  # warm up
    k = 0
    for _ in range(repeats):
        for key, m, seg in (
            ("perception_b1", model, False),
            ("perception_b1_seg", model, True),
            ("perception_int8_b1", int8, False),
            ("perception_torch_b1", eager, False),
        ):
            t0 = time.perf_counter()
            for _ in range(frames):
                m(batch[k % 64 : k % 64 + 1], segmentation=seg)
                k += 1
            out[key].append(frames / (time.perf_counter() - t0))
        n = max(1, frames // 64)
        t0 = time.perf_counter()
        for _ in range(n):
            model(batch, segmentation=True)
        out["perception_b64"].append(64 * n / (time.perf_counter() - t0))
    return out


#: Scenes of the video-frame timing: the open road and the two junctions with the most overdraw.
VIDEO_SCENES = {
    "video_frame_highway": ENV_ID,
    "video_frame_roundabout": "DriveSim/Roundabout-v0",
    "video_frame_intersection": "DriveSim/Intersection-v0",
}


def measure_video(frames: int, repeats: int, env_id: str = ENV_ID) -> list[float]:
    """Composed 640x360 video frames per second, every panel on (chase, map, camera, lidar, HUD).

    The env steps between frames (the scene moves); only ``frame_data`` + ``compose_frame`` are
    timed, the rendering a video or ``render()`` pays per frame. Encoding runs in ffmpeg's own process.
    """
    from drive_sim.render import RoadSketch, VideoConfig, compose_frame

    env = gym.make(env_id, obs_type="lidar")
    env.reset(seed=0)
    inner = env.unwrapped
    sketch, cfg = RoadSketch(inner.world), VideoConfig()
    step = _stepper(env, np.array([0.0, 0.1], np.float32))
    out = []
    try:
        for rep in range(repeats + 1):
            gc.collect()
            spent = 0.0
            for _ in range(frames):
                step()
                t0 = time.perf_counter()
                compose_frame(inner.world, sketch, inner.frame_data(), cfg)
                spent += time.perf_counter() - t0
            if rep > 0:  # the first round warms up
                out.append(frames / spent)
    finally:
        env.close()
    return out


def measure_planner(steps: int, repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Planner calls/s, expert decisions/s and env steps/s of the expert on Highway-v0.

    The expert reads the ``kinematics`` observation; a decision is decode + plan + control. The
    three are timed apart in the same episodes.

    Returns:
        (planner calls/s, expert decisions/s, env steps/s), one figure per repeat.
    """
    from agents.policies.expert import ExpertAgent

    env = gym.make(ENV_ID, obs_type="kinematics", action_type="continuous")
    agent = ExpertAgent.for_env(env)
    planner = agent.driver.driver.planner
    plan = planner.plan
    spent = [0.0]

    def timed_plan(req: Any) -> Any:
        t0 = time.perf_counter()
        out = plan(req)
        spent[0] += time.perf_counter() - t0
        return out

    planner.plan = timed_plan  # type: ignore[method-assign]
    obs, _ = env.reset(seed=0)
    agent.reset()
    plan_rates, act_rates, env_rates = [], [], []
    seed = 0
    for _ in range(repeats):
        gc.collect()
        spent[0] = act_s = env_s = 0.0
        for _ in range(steps):
            t0 = time.perf_counter()
            action = agent.act(obs)
            t1 = time.perf_counter()
            obs, _, term, trunc, _ = env.step(action)
            t2 = time.perf_counter()
            act_s += t1 - t0
            env_s += t2 - t1
            if term or trunc:
                seed += 1
                obs, _ = env.reset(seed=seed)
                agent.reset()
        plan_rates.append(steps / spent[0])
        act_rates.append(steps / act_s)
        env_rates.append(steps / env_s)
    env.close()
    return plan_rates, act_rates, env_rates


def machine_info() -> dict[str, Any]:
    """CPU model, cores, Python and PyBullet versions."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "python": platform.python_version(),
        "pybullet": version("pybullet"),
        "gymnasium": version("gymnasium"),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def measure_memory(steps: int, reset_every: int, warmup: int = 1000) -> dict[str, float]:
    """RSS [MB] after a warm-up and after ``steps`` more lidar steps with a reset every ``reset_every``."""
    env = gym.make(ENV_ID, obs_type="lidar")
    try:
        action = np.array([0.0, 0.1], np.float32)
        env.reset(seed=0)
        seeds = iter(range(1, 1 << 30))

        def drive(n: int) -> float:
            """``n`` steps with a reset (next seed) every ``reset_every``; RSS [MB] afterwards."""
            for i in range(n):
                env.step(action)
                if (i + 1) % reset_every == 0:
                    env.reset(seed=next(seeds))
            gc.collect()
            return _rss_mb()

        before = drive(warmup)
        after = drive(steps)
    finally:
        env.close()
    return {
        "steps": float(steps),
        "reset_every": float(reset_every),
        "rss_before_mb": before,
        "rss_after_mb": after,
        "growth_mb": after - before,
    }


#: Scenarios the create/close check cycles through (open road, junction, lane keeping: every scenery builder).
CYCLE_IDS = ("DriveSim/Highway-v0", "DriveSim/Intersection-v0", "DriveSim/LaneKeep-v0")


def measure_env_cycles(cycles: int, warmup: int = 6) -> dict[str, float]:
    """RSS [MB] before and after ``cycles`` envs made, reset, stepped once and closed (``CYCLE_IDS`` in turn)."""
    action = np.array([0.0, 0.1], np.float32)

    def cycle(i: int) -> None:
        env = gym.make(CYCLE_IDS[i % len(CYCLE_IDS)], obs_type="lidar")
        try:
            env.reset(seed=i)
            env.step(action)
        finally:
            env.close()

    for i in range(warmup):
        cycle(i)
    gc.collect()
    before = _rss_mb()
    for i in range(cycles):
        cycle(i)
    gc.collect()
    after = _rss_mb()
    return {"cycles": float(cycles), "rss_before_mb": before, "rss_after_mb": after, "growth_mb": after - before}


def run_perf(cfg: PerfConfig, *, progress: bool = True) -> PerfResult:
    """Run every measurement and, unless ``cfg.out`` is empty, write the report."""
    from tqdm import tqdm

    if cfg.out:
        check_writable(cfg.out)  # before minutes of measuring, not after
    if cfg.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cfg.cpu % (os.cpu_count() or 1)})
    res = PerfResult(machine=machine_info())
    try:
        import highway_env  # noqa: F401

        have_hwe = True
    except ImportError:
        have_hwe = False
    tasks = (
        ["lidar", "batched", "camera", "perception", "multi", "perceived", "raw", "planner", "video", "scenarios"]
        + (["highway-v0", "highway-fast-v0"] if have_hwe else [])
        + (["memory"] if cfg.memory_steps else [])
    )
    bar = tqdm(tasks, desc="perf", disable=not progress)
    for task in bar:
        bar.set_postfix_str(task)
        if task in ("lidar", "multi", "perceived"):
            env = gym.make(ENV_ID, obs_type=task, action_type="continuous")
            env.reset(seed=0)
            n = cfg.lidar_steps if task == "lidar" else cfg.camera_steps
            res.rates[f"env_{task}"], res.samples[f"env_{task}"] = _rate(_stepper(env, np.array([0.0, 0.1], np.float32)), n, cfg.repeats)
            env.close()
            if task == "perceived":
                # Beside it, the camera and net every other period (5 Hz) rather than every period.
                env = gym.make(ENV_ID, obs_type=task, action_type="continuous", cfg={"observation": {"perception_every": 2}})
                env.reset(seed=0)
                key = "env_perceived_every_2nd"
                res.rates[key], res.samples[key] = _rate(_stepper(env, np.array([0.0, 0.1], np.float32)), n, cfg.repeats)
                env.close()
        elif task == "batched":
            # gym.make_vec's batched worlds (envs.vector), in this one process: world-steps per second.
            venv = gym.make_vec(ENV_ID, num_envs=BATCHED_WORLDS, obs_type="lidar", action_type="continuous")
            venv.reset(seed=0)
            actions = np.tile(np.array([0.0, 0.1], np.float32), (BATCHED_WORLDS, 1))
            steps = max(1, cfg.lidar_steps // BATCHED_WORLDS)
            rate, samples = _rate(lambda v=venv, a=actions: v.step(a), steps, cfg.repeats)
            res.rates["env_lidar_batched"] = rate * BATCHED_WORLDS
            res.samples["env_lidar_batched"] = [s * BATCHED_WORLDS for s in samples]
            venv.close()
        elif task == "camera":
            keys = ("env_camera", "raw_camera_frame", "raw_camera_frame_large")
            rates = dict(zip(keys, measure_camera(cfg.camera_steps, cfg.repeats), strict=True))
            for key, samples in rates.items():
                res.samples[key], res.rates[key] = samples, statistics.median(samples)
        elif task == "perception":
            for key, samples in measure_perception(cfg.camera_steps, cfg.repeats).items():
                res.samples[key], res.rates[key] = samples, statistics.median(samples)
        elif task == "raw":
            _measure_raw(cfg, res)
        elif task == "planner":
            rates = measure_planner(cfg.planner_steps, cfg.repeats)
            for key, samples in zip(("planner_call", "expert_decision", "env_kinematics"), rates, strict=True):
                res.samples[key], res.rates[key] = samples, statistics.median(samples)
        elif task == "video":
            for key, vid in VIDEO_SCENES.items():
                res.samples[key] = measure_video(cfg.video_frames, cfg.repeats, vid)
                res.rates[key] = statistics.median(res.samples[key])
        elif task == "scenarios":
            # Every registered scenario with the lidar observation, for the ratio to Highway-v0.
            for env_id in envs.ENV_IDS:
                if env_id in (ENV_ID, "DriveSim/Custom-v0"):
                    continue
                env = gym.make(env_id, obs_type="lidar")
                env.reset(seed=0)
                key = f"scenario:{env_id}"
                res.rates[key], res.samples[key] = _rate(_stepper(env, np.array([0.0, 0.1], np.float32)), cfg.scenario_steps, cfg.repeats)
                env.close()
        elif task == "memory":
            res.memory = measure_memory(cfg.memory_steps, cfg.reset_every)
            cycles = measure_env_cycles(cfg.env_cycles)
            res.memory.update({f"env_cycles_{k}": v for k, v in cycles.items()})
        else:
            env = gym.make(task)
            env.reset(seed=0)
            res.rates[task], res.samples[task] = _rate(_stepper(env, 1), cfg.highway_env_steps, cfg.repeats)
            env.close()
    r = res.rates
    res.ratios["lidar_vs_highway_v0"] = r["env_lidar"] / r["highway-v0"] if "highway-v0" in r else float("nan")
    res.ratios["lidar_vs_highway_fast_v0"] = r["env_lidar"] / r["highway-fast-v0"] if "highway-fast-v0" in r else float("nan")
    res.ratios["camera_vs_raw_camera"] = r["env_camera"] / r["raw_camera_frame"]
    if "raw_physics_control_period" in r:
        # PyBullet's own work per lidar env step (one control period of physics, one ray batch): the limit no Python can beat.
        pybullet_limit = 1.0 / (1.0 / r["raw_physics_control_period"] + 1.0 / r["raw_lidar_reading"])
        res.ratios["pybullet_only_steps_per_s"] = pybullet_limit
        res.ratios["lidar_vs_pybullet_only"] = r["env_lidar"] / pybullet_limit
        if "env_lidar_batched" in r:
            res.ratios["batched_vs_pybullet_only"] = r["env_lidar_batched"] / pybullet_limit
    if "env_lidar_batched" in r:
        res.ratios["batched_vs_lidar"] = r["env_lidar_batched"] / r["env_lidar"]
    # What the perception dataset's larger size costs to render against the env's (same views, same run).
    res.ratios["raw_camera_large_vs_env_size"] = r["raw_camera_frame_large"] / r["raw_camera_frame"]
    res.ratios["lidar_sim_seconds_per_wall_second"] = r["env_lidar"] * 0.1
    if "planner_call" in r:
        # Share of an expert-driven env step (decision + simulation) spent in the planner.
        per_step = 1.0 / r["expert_decision"] + 1.0 / r["env_kinematics"]
        res.ratios["planner_ms_per_call"] = 1000.0 / r["planner_call"]
        res.ratios["planner_share_of_expert_step"] = (1.0 / r["planner_call"]) / per_step
    if "perception_b1" in r:
        res.ratios["perception_ms_per_frame_b1"] = 1000.0 / r["perception_b1"]
        res.ratios["perception_ms_per_frame_b1_seg"] = 1000.0 / r["perception_b1_seg"]
        res.ratios["perception_ms_per_frame_b64"] = 1000.0 / r["perception_b64"]
        res.ratios["perception_int8_ms_per_frame_b1"] = 1000.0 / r["perception_int8_b1"]
        res.ratios["perception_torch_ms_per_frame_b1"] = 1000.0 / r["perception_torch_b1"]
        res.ratios["perception_onnx_vs_torch_b1"] = r["perception_b1"] / r["perception_torch_b1"]
        res.ratios["perception_int8_vs_onnx_float32_b1"] = r["perception_int8_b1"] / r["perception_b1"]
        # A camera env step with the net run on its frame, against the camera env step alone.
        res.ratios["camera_step_with_perception_vs_camera_step"] = (1.0 / r["env_camera"]) / (
            1.0 / r["env_camera"] + 1.0 / r["perception_b1"]
        )
    if "env_perceived" in r:
        # The perception stack's step (camera frame, net, filter, tracker, lidar, radar) against the camera env's.
        res.ratios["perceived_vs_camera"] = r["env_perceived"] / r["env_camera"]
        res.ratios["perceived_steps_per_s"] = r["env_perceived"]
        if "env_perceived_every_2nd" in r:
            res.ratios["perceived_every_2nd_steps_per_s"] = r["env_perceived_every_2nd"]
    video = [r[k] for k in VIDEO_SCENES if k in r]
    if video:
        res.ratios["video_frames_per_s_worst"] = min(video)
    if cfg.out:
        write_report(res, cfg)
    return res


def _measure_raw(cfg: PerfConfig, res: PerfResult) -> None:
    """Raw PyBullet physics and lidar calls on the same scene the env steps (Highway-v0, 20 vehicles)."""
    env = gym.make(ENV_ID, obs_type="lidar")
    env.reset(seed=0)
    world = env.unwrapped.world
    cid = world.client._client
    substeps = world.cfg.substeps

    def physics() -> None:
        for _ in range(substeps):
            pb.stepSimulation(physicsClientId=cid)

    world.read_lidar()
    lid = world.lidar
    ray_from, ray_to = lid._from.tolist(), lid._to.tolist()

    def rays() -> None:
        pb.rayTestBatch(ray_from, ray_to, numThreads=1, collisionFilterMask=lid.RAY_MASK, physicsClientId=cid)

    res.rates["raw_physics_control_period"], res.samples["raw_physics_control_period"] = _rate(physics, cfg.lidar_steps, cfg.repeats)
    res.rates["raw_lidar_reading"], res.samples["raw_lidar_reading"] = _rate(rays, cfg.lidar_steps, cfg.repeats)
    c = world.camera.cfg
    res.machine["physics_substeps_per_control_period"] = substeps
    res.machine["lidar_beams"] = lid.cfg.beams
    res.machine["camera"] = f"{c.width}x{c.height} TinyRenderer"
    env.close()


_LABELS = {
    "env_lidar": "DriveSim/Highway-v0, lidar obs (env steps/s)",
    "env_lidar_batched": "DriveSim/Highway-v0, lidar obs, gym.make_vec batched: 16 worlds in one process (world steps/s)",
    "env_camera": "DriveSim/Highway-v0, camera 84x84 obs (env steps/s)",
    "env_multi": "DriveSim/Highway-v0, multi obs (env steps/s)",
    "env_perceived": "DriveSim/Highway-v0, perceived obs: camera + net + localiser + tracker (env steps/s)",
    "env_perceived_every_2nd": "DriveSim/Highway-v0, perceived obs, camera and net every 2nd period (perception_every 2) (env steps/s)",
    "raw_physics_control_period": "raw PyBullet: physics for one 0.1 s control period (/s)",
    "raw_lidar_reading": "raw PyBullet: one 64-beam rayTestBatch (/s)",
    "raw_camera_frame": "raw PyBullet: one 84x84 TinyRenderer frame of the same views (/s)",
    "raw_camera_frame_large": f"raw PyBullet: one {LARGE_CAMERA_PX}x{LARGE_CAMERA_PX} TinyRenderer frame of the same views (/s)",
    "perception_b1": "perception net, 84 px, one frame, driving heads (frames/s)",
    "perception_b1_seg": "perception net, 84 px, one frame, with segmentation (frames/s)",
    "perception_b64": "perception net, 84 px, batches of 64, all heads (frames/s)",
    "perception_int8_b1": "perception net, int8 (ONNX Runtime), one frame, driving heads (frames/s)",
    "perception_torch_b1": "perception net, PyTorch eager float32, one frame, driving heads (frames/s)",
    "planner_call": "lattice planner calls, expert on Highway-v0 (/s)",
    "expert_decision": "expert decisions: decode + plan + control (/s)",
    "env_kinematics": "DriveSim/Highway-v0, kinematics obs, expert's actions (env steps/s)",
    "video_frame_highway": "video frames 640x360, all panels, Highway-v0 (/s)",
    "video_frame_roundabout": "video frames 640x360, all panels, Roundabout-v0 (/s)",
    "video_frame_intersection": "video frames 640x360, all panels, Intersection-v0 (/s)",
    "highway-v0": "highway-env highway-v0 (env steps/s)",
    "highway-fast-v0": "highway-env highway-fast-v0 (env steps/s)",
}


def ratio_text(value: float) -> str:
    """A ratio as the report and the command print it; one that could not be measured says why."""
    return "n/a (highway-env not installed)" if math.isnan(value) else f"{value:,.2f}"


def write_report(res: PerfResult, cfg: PerfConfig) -> None:
    """Markdown report, JSON figures and a bar chart next to ``cfg.out``."""
    out = Path(cfg.out)
    m = res.machine
    command = f"drive-sim perf{' --quick' if cfg.quick else ''} --out {out.as_posix()}"
    lines = [
        "# Performance",
        "",
        *(
            ["**Quick run** (`--quick`: smoke sizes, one repeat, no memory check): the figures below are not measurements.", ""]
            if cfg.quick
            else []
        ),
        f"Measured {m['date']} with `{command}` (repeats={cfg.repeats}, pinned to one core: {cfg.cpu >= 0}).",
        "",
        f"Machine: {m['cpu']}, {m['logical_cores']} logical cores; "
        f"Python {m['python']}, PyBullet {m['pybullet']}, Gymnasium {m['gymnasium']}.",
        "",
        "All figures are medians of the repeats; every ratio compares two figures from this same run.",
        "Env steps use the action [steer 0, acceleration 0.1] and reset at episode ends. The camera reference",
        "re-renders, with a bare `getCameraImage` call after each timed camera-env step, the same view of the same",
        "world state, timed apart from the step: frame cost depends on what is in view. The physics and lidar",
        "references repeat one control period's `stepSimulation` calls and one 64-beam `rayTestBatch` in the Highway scene.",
        "",
        "| what | median | repeats |",
        "|---|---:|---|",
    ]
    for key, label in _LABELS.items():
        if key in res.rates:
            lines.append(f"| {label} | {res.rates[key]:,.1f} | {', '.join(f'{x:,.0f}' for x in res.samples[key])} |")
    lines += ["", "| ratio | value | target |", "|---|---:|---|"]
    targets = {
        "lidar_vs_highway_v0": ">= 10",
        "lidar_vs_highway_fast_v0": "",
        "camera_vs_raw_camera": ">= 0.70",
        "lidar_sim_seconds_per_wall_second": ">= 80",
        "planner_ms_per_call": "well under 100 (the control period)",
        "video_frames_per_s_worst": ">= 30",
        "perceived_steps_per_s": ">= 200",
        "lidar_vs_pybullet_only": ">= 0.5 (issue 20; and env_lidar >= 2,000)",
        "batched_vs_pybullet_only": "(issue 20: env_lidar_batched >= 5,000)",
    }
    for key, value in res.ratios.items():
        lines.append(f"| {key} | {ratio_text(value)} | {targets.get(key, '')} |")
    scen = {k.split(":", 1)[1]: v for k, v in res.rates.items() if k.startswith("scenario:")}
    if scen:
        base = res.rates["env_lidar"]
        lines += ["", "Every registered scenario, lidar observation (env steps/s), and its ratio to Highway-v0 above:", ""]
        lines += ["| scenario | median | ratio to Highway-v0 |", "|---|---:|---:|"]
        lines += [f"| `{k}` | {v:,.1f} | {v / base:.2f} |" for k, v in scen.items()]
    if res.memory:
        mem = res.memory
        lines += [
            "",
            f"Memory: RSS {mem['rss_before_mb']:.1f} MB -> {mem['rss_after_mb']:.1f} MB over {int(mem['steps']):,} lidar steps "
            f"with a reset every {int(mem['reset_every'])} steps: growth {mem['growth_mb']:+.1f} MB (target < 50 MB).",
        ]
        if "env_cycles_growth_mb" in mem:
            lines.append(
                f"Envs made and closed: RSS {mem['env_cycles_rss_before_mb']:.1f} MB -> {mem['env_cycles_rss_after_mb']:.1f} MB over "
                f"{int(mem['env_cycles_cycles'])} create/reset/close cycles of {', '.join(CYCLE_IDS)}: growth "
                f"{mem['env_cycles_growth_mb']:+.1f} MB (target < 20 MB)."
            )
    lines += ["", f"![throughput]({out.with_suffix('.png').name})", ""]
    write_text(out, "\n".join(lines))
    write_json(
        out.with_suffix(".json"),
        {"machine": res.machine, "rates": res.rates, "samples": res.samples, "ratios": res.ratios, "memory": res.memory},
    )
    _plot(res, out.with_suffix(".png"))


def _plot(res: PerfResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from drive_sim.files import atomic_write

    keys = [k for k in ("env_lidar", "env_camera", "env_multi", "env_perceived", "highway-fast-v0", "highway-v0") if k in res.rates]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    vals = [res.rates[k] for k in keys]
    colours = ["tab:blue" if k.startswith("env_") else "tab:grey" for k in keys]
    ax.barh(range(len(keys)), vals, color=colours)
    ax.set_yticks(range(len(keys)), [k.replace("env_", "drive-sim ") for k in keys])
    ax.set_xscale("log")
    ax.set_xlabel("env steps per second, one core (log scale)")
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:,.0f}", va="center")
    ax.set_title("Highway throughput: drive-sim vs highway-env (same run)")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
