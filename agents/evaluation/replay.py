"""Videos of episodes: drive an agent and film it, or film a recorded episode again.

    film_agent("zoo:ppo-highway-lidar", "ice.mp4", scenario="highway-ice", seed=7)
    film_log("runs/x/episodes/ep_0007", "ep7.mp4")

Frames are ``drive_sim.render.compose_frame``'s (chase view, bird's-eye map with the route and any
planned path, the agent's camera, lidar, HUD), the same ``render()`` returns. Videos are H.264 mp4
in yuv420p (plays in browsers) through imageio-ffmpeg's bundled ffmpeg, or GIF; they play in real
time by default (one frame per control period). The file appears only when complete, and an
existing one is replaced only with ``force``. The benchmark films its worst episodes through these
functions.
"""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drive_sim.files import check_writable, sync_file, sync_folder, umask_mode
from drive_sim.render import RoadSketch, VideoConfig, compose_frame

VIDEO_FORMATS = (".mp4", ".gif")
_GIF_PALETTE = "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer"


def check_video_path(path: str | Path, *, force: bool = False) -> Path:
    """The output path, its folder created; refuses an unknown format and an existing file without ``force``."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise ValueError(f"out: {path} is not a video name; allowed endings: {', '.join(VIDEO_FORMATS)}")
    if path.exists() and not force:
        raise FileExistsError(f"out: {path} exists; pass --force to overwrite it")
    if path.is_dir():
        raise ValueError(f"out: {path} is a folder; give a file name ending in .mp4 or .gif")
    return check_writable(path)


class VideoWriter:
    """Frames (H, W, 3) uint8 RGB to an mp4 (H.264, yuv420p) or GIF, through a temporary file.

    Use as a context manager: on a clean exit the temporary file is renamed to ``path``; on an
    error it is deleted and an existing ``path`` is left as it was.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], *, force: bool = False) -> None:
        import imageio_ffmpeg

        self.path = check_video_path(path, force=force)
        self.fps = float(fps)
        self.size = size
        self.frames = 0
        suffix = self.path.suffix.lower()
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        if suffix == ".mp4":
            params: dict[str, Any] = {
                "codec": "libx264",
                "pix_fmt_out": "yuv420p",
                "quality": None,
                "output_params": ["-crf", "23", "-preset", "veryfast", "-movflags", "+faststart"],
            }
        else:
            # One palette for the whole clip (ffmpeg's palettegen/paletteuse): GIFs without banding.
            params = {
                "codec": "gif",
                "pix_fmt_out": None,
                "quality": None,
                "output_params": ["-filter_complex", _GIF_PALETTE, "-loop", "0"],
            }
        self._gen = imageio_ffmpeg.write_frames(str(self._tmp), size, fps=self.fps, macro_block_size=2, ffmpeg_log_level="error", **params)
        self._gen.send(None)

    def append(self, frame: np.ndarray) -> None:
        """Add one frame of the writer's size."""
        h, w = frame.shape[:2]
        if (w, h) != self.size or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"video: frame {frame.shape} {frame.dtype} does not match {self.size[0]}x{self.size[1]} RGB uint8")
        try:
            self._gen.send(np.ascontiguousarray(frame))
        except OSError as err:  # ffmpeg stopped (a full disk, a write error): its message runs over many lines
            raise OSError(
                errno.EIO, f"the encoder stopped after {self.frames} frames ({str(err).splitlines()[0]})", str(self.path)
            ) from None
        self.frames += 1

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            self._gen.close()
            if exc_type is None:
                self._check()
                sync_file(self._tmp)
                os.chmod(self._tmp, umask_mode())  # mkstemp makes 0600
                os.replace(self._tmp, self.path)
                sync_folder(self.path.parent)
        finally:
            if self._tmp.exists():
                self._tmp.unlink()

    def _check(self) -> None:
        """The encoder's result, read back before the video replaces anything: every frame sent must be there.

        imageio-ffmpeg does not report ffmpeg's exit status, and ffmpeg that fails late (a full disk
        while it moves the index to the front) leaves a file that does not play.
        """
        import imageio_ffmpeg

        if self.frames == 0:
            raise ValueError(f"video: {self.path}: no frames to write")
        try:
            frames, _ = imageio_ffmpeg.count_frames_and_secs(str(self._tmp))
        except (OSError, RuntimeError) as err:
            raise OSError(
                errno.EIO, f"the encoder wrote no playable video ({str(err).splitlines()[0]}); nothing was replaced", str(self.path)
            ) from None
        if frames != self.frames:
            raise OSError(errno.EIO, f"the encoder wrote {frames} of {self.frames} frames; nothing was replaced", str(self.path))


@dataclass
class FilmResult:
    """What a film_* call wrote.

    Attributes:
        video: the video file.
        frames, fps, size: its frame count, rate and (width, height).
        steps, total_return, success: the episode.
        finished: False when ``max_steps`` stopped the episode before its end.
        log: the episode log written (film_agent with ``record_dir``) or read (film_log).
        mode: how a log was filmed: "resimulate" or "playback" (None for film_agent).
        mismatch: film_log: where re-simulation left the log (then it was filmed by playback).
    """

    video: Path
    frames: int
    fps: float
    size: tuple[int, int]
    steps: int
    total_return: float
    success: bool | None = None
    finished: bool = True
    log: Path | None = None
    mode: str | None = None
    mismatch: str | None = None
    events: list[str] = field(default_factory=list)


class PerceptionOverlay:
    """The perception net's view in a video's camera panel: the frame it reads, its segmentation over it, predicted vs true.

    The frame is the ego camera at the net's size, through the weather (its rain streaks from a
    generator of the labeller's own, so filming with the net leaves the episode as it was); the true
    figures are the dataset's labels of the same moment (``envs.labels``).

    Args:
        model: a perception run's ``model.pt``, or ``shipped`` (``perception.load()``).
    """

    def __init__(self, model: str = "shipped") -> None:
        import perception

        self.model = perception.load(None if model in ("", "shipped") else model)
        self._labeller: Any = None

    def apply(self, env: Any, data: Any) -> Any:
        """``data`` (a ``FrameData`` of ``env``, unwrapped) with the net's frame and panel."""
        import dataclasses

        from drive_sim.render import PerceptionPanel
        from envs.labels import LIGHT_STATES, SCALAR_LABELS, FrameLabeller

        if self._labeller is None or self._labeller.world is not env.world:
            self._labeller = FrameLabeller(env, (self.model.size,))
        shot = self._labeller.capture(buffers=False)
        rgb, lab = shot[f"rgb{self.model.size}"], dict(zip(SCALAR_LABELS, shot["labels"].tolist(), strict=True))
        p = self.model(rgb)

        def lead(present: float, gap: float) -> str:
            return f"{gap:4.1f} m" if present > 0.5 else "none"

        lines = (
            f"offset {p['lane_offset_m'][0]:+.2f} m (true {lab['lane_offset_m']:+.2f})",
            f"lead {lead(p['lead_present'][0], p['lead_distance_m'][0])} (true {lead(lab['lead_present'], lab['lead_distance_m'])})",
            f"light {LIGHT_STATES[int(p['light_state'][0])]} (true {LIGHT_STATES[int(lab['light_state'])]})",
        )
        return dataclasses.replace(data, camera=rgb, perception=PerceptionPanel(p["segmentation"][0], lines))


def _fps(video: VideoConfig, control_period_s: float) -> float:
    return video.fps if video.fps > 0 else 1.0 / control_period_s


def _plan_in_world(agent: Any, pose: Any) -> np.ndarray | None:
    """An agent's planned path (``planned_path()``, ego frame at ``pose``) in the world frame."""
    from envs.driving_env import ego_to_world

    get = getattr(agent, "planned_path", None)
    local = get() if callable(get) else None
    return None if local is None or len(local) < 2 else ego_to_world(np.asarray(local, np.float64), pose)


def film_agent(
    spec: str,
    out: str | Path,
    *,
    scenario: str | None = None,
    seed: int = 0,
    video: VideoConfig | None = None,
    record_dir: str | Path | None = None,
    max_steps: int | None = None,
    force: bool = False,
    progress: bool = True,
    allow_pickle: bool = False,
    perception: str | None = None,
) -> FilmResult:
    """Drive one deterministic episode of the agent named by ``spec`` and film it.

    Args:
        spec: ``zoo:NAME``, a model file, ``expert`` or ``random`` (``agents.policies.loader.resolve_agent``).
        out: the video (.mp4 or .gif).
        scenario: the scenario (library name or id); default: the agent's own.
        seed: the episode's seed.
        video: frame size, panels and rate.
        record_dir: also write the episode log there (``ep_<seed>``), so it can be filmed again.
        max_steps: stop after this many steps (the episode and its log stay unfinished).
        force: replace an existing video.
        progress: show a progress bar.
        allow_pickle: load an agent whose file runs code when loaded (see ``agents.policies.loader``).
        perception: film the camera panel through this perception net (``shipped`` or a ``model.pt``).
    """
    from tqdm import tqdm

    from agents.evaluation.episodes import run_episode
    from agents.policies.loader import resolve_agent
    from envs.recording import RecordEpisodes

    video = video or VideoConfig()
    check_video_path(out, force=force)
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps: must be at least 1, got {max_steps}")
    if seed < 0:
        raise ValueError(f"seed: must be non-negative, got {seed}")
    if record_dir is not None:
        check_writable(Path(record_dir) / "ep", what="record")  # before filming, not after
    overlay = PerceptionOverlay(perception) if perception is not None else None
    agent, target = resolve_agent(spec, scenario, allow_pickle=allow_pickle)
    env = target.make()
    if record_dir is not None:
        env = RecordEpisodes(env, record_dir, name=lambda _i, s: f"ep_{s:04d}", extra_meta={"agent": spec})
    inner = env.unwrapped
    title = f"{target.env_id.split('/')[-1]}  seed {seed}  {spec}"
    dt = inner.world.cfg.control_period_s
    fps = _fps(video, dt)
    limit = round(inner.scenario.time_limit_s / dt)
    if max_steps is not None:
        limit = min(limit, max_steps)
    try:
        with (
            VideoWriter(out, fps, (video.width, video.height), force=force) as writer,
            tqdm(total=limit + 1, desc=f"filming {Path(out).name}", unit="frame", disable=not progress) as bar,
        ):
            sketch: RoadSketch | None = None
            pose = None  # the ego pose the agent last planned from

            def frame(t: int, _info: dict[str, Any]) -> None:
                nonlocal sketch, pose
                if t == 0:
                    sketch = RoadSketch(inner.world)
                plan = None if t == 0 else _plan_in_world(agent, pose)
                data = inner.frame_data(title=title, plan_xy=plan)
                if overlay is not None:
                    data = overlay.apply(inner, data)
                writer.append(compose_frame(inner.world, sketch, data, video))
                pose = inner.world.ego
                bar.update()

            ep = run_episode(env, agent, seed, max_steps=limit, on_step=frame)
        written = getattr(env, "written", [])
    finally:
        env.close()
    return FilmResult(
        video=Path(out),
        frames=writer.frames,
        fps=fps,
        size=(video.width, video.height),
        steps=ep.steps,
        total_return=ep.episode_return,
        success=ep.success,
        finished=ep.finished,
        log=written[-1] if written else None,
    )


def film_log(
    path: str | Path,
    out: str | Path,
    *,
    video: VideoConfig | None = None,
    mode: str = "auto",
    force: bool = False,
    progress: bool = True,
    perception: str | None = None,
) -> FilmResult:
    """Film a recorded episode again.

    Args:
        path: the episode log folder.
        out: the video (.mp4 or .gif).
        video: frame size, panels and rate.
        mode: ``resimulate`` (run the recorded actions again: the frames show the live simulation,
            agent's-eye sensor panels included), ``playback`` (pose the recorded states, simulate
            nothing: works when the dynamics have changed since the recording), or ``auto``
            (re-simulate when that reproduces the log exactly, else play back).
        force: replace an existing video.
        progress: show a progress bar.
        perception: film the camera panel through this perception net (``shipped`` or a ``model.pt``).
    """
    from tqdm import tqdm

    from envs.recording import EpisodeLog, log_frame_data, playback, resimulate

    overlay = PerceptionOverlay(perception) if perception is not None else None

    if mode not in ("auto", "resimulate", "playback"):
        raise ValueError(f"mode: {mode!r} is not allowed; allowed: auto, resimulate, playback")
    video = video or VideoConfig()
    check_video_path(out, force=force)
    log = EpisodeLog.load(path)
    mismatch = None
    if mode == "auto":
        report = resimulate(log, stop_at_mismatch=True)
        mismatch = None if report.exact else str(report.mismatch)
        mode = "resimulate" if report.exact else "playback"
    fps = _fps(video, float(log.meta["control_period_s"]))
    title = f"{log.env_id.split('/')[-1]}  {log.meta.get('agent', '')}  {Path(path).name}".strip()
    env = log.make_env()
    sketch = RoadSketch(env.unwrapped.world)
    with (
        VideoWriter(out, fps, (video.width, video.height), force=force) as writer,
        tqdm(total=log.steps + 1, desc=f"filming {Path(out).name}", unit="frame", disable=not progress) as bar,
    ):
        try:
            if mode == "resimulate":

                def frame(_t: int, e: Any, _info: dict[str, Any]) -> None:
                    data = e.unwrapped.frame_data(title=title)
                    if overlay is not None:
                        data = overlay.apply(e.unwrapped, data)
                    writer.append(compose_frame(e.unwrapped.world, sketch, data, video))
                    bar.update()

                report = resimulate(log, env=env, on_step=frame)
                if not report.exact:
                    mismatch = str(report.mismatch)
            else:
                for t, e in playback(log, env):
                    data = log_frame_data(log, t, e, title=title)
                    if overlay is not None:
                        data = overlay.apply(e.unwrapped, data)
                    writer.append(compose_frame(e.unwrapped.world, sketch, data, video))
                    bar.update()
        finally:
            env.close()
    success = bool(log.info(log.steps)["is_success"]) if log.steps else None
    finished = not log.meta.get("outcome", {}).get("unfinished", False)
    return FilmResult(
        video=Path(out),
        frames=writer.frames,
        fps=fps,
        size=(video.width, video.height),
        steps=log.steps,
        total_return=float(log.arrays["rewards"].sum()),
        success=success,
        finished=finished,
        log=log.path,
        mode=mode,
        mismatch=mismatch,
    )
