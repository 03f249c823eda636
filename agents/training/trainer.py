"""Training from a config: one call, one run folder, stoppable and resumable.

The config is a ``RunConfig`` (``agents.training.config``, YAML, rl-zoo3 style).

Run folder::

    config.yaml         the resolved config (seed included) and where it came from
    versions.json       Python, library versions, platform
    status.json         running / interrupted / finished, steps done, the checkpoint to resume from
    model.zip|npz       the final model (SB3 zip with drive_sim.json inside; Q table .npz)
    best_model.zip      the model with the best validation score (SB3 runs with validation)
    checkpoints/        periodic and Ctrl-C checkpoints (+ replay buffer .npz for DQN/SAC)
    tb/                 TensorBoard logs: SB3's losses plus env/ metrics (success, collision,
                        off-road, route completion, speed) and eval/ validation scores
    train_episodes.csv  one row per training episode (step, return, success, route completion, ...)
    evaluations.csv     one row per validation round (SB3 runs with eval_every_steps)
    eval.csv, eval.json the final test: one row per episode and the summary
    learning_curve.png  training return and validation scores against steps

Seeds: training envs from 1000 upward, validation on 100-199, the final test on 0-99
(``agents.training.config``). Validation and the final test drive the model with the one episode
loop (``agents.evaluation.episodes``) and score it with the one aggregate (``run_scores``).

Ctrl-C (SIGINT) or SIGTERM: training stops at the next env step, a checkpoint is written, the
status says ``interrupted`` and the command exits 130; ``drive-sim train --resume RUN_DIR``
continues from it with the model, optimiser state, normalisation statistics, replay buffer and step
count (an on-policy rollout cut short is dropped and collected again, so the count continues from
the last update). A second Ctrl-C stops at once without a checkpoint.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agents.evaluation.episodes import evaluate_agent
from agents.evaluation.metrics import run_scores
from agents.training.config import SECTIONS, TRAIN_SEED_BASE, VALIDATION_SEED_BASE, RunConfig
from agents.training.curves import plot_learning_curve
from agents.training.runs import new_run_dir, read_status, set_status, status_extras, versions
from drive_sim.config import ConfigError, build, to_dict
from drive_sim.files import atomic_write, read_csv, read_yaml, write_csv, write_json, write_yaml


class TrainingInterrupted(Exception):
    """Training stopped on a signal; a checkpoint was written."""

    def __init__(self, run: Path, steps: int) -> None:
        super().__init__(f"interrupted at step {steps:,}; checkpoint written; continue with: drive-sim train --resume {run}")
        self.run = run
        self.steps = steps


def train(run_cfg: RunConfig, *, source: str = "", progress: bool = True, say: Say | None = None) -> Path:
    """Train, evaluate and write the run folder; returns its path.

    ``say`` gets a line for each phase (the run folder and config at the start, each validation
    round, the test scores at the end); ``progress`` shows a bar over the run's steps.

    Raises:
        TrainingInterrupted: on Ctrl-C/SIGTERM, after writing a checkpoint.
    """
    say = say or _quiet
    cfg = run_cfg.train
    run = new_run_dir(cfg.out_dir, cfg.run_name)
    write_yaml(run / "config.yaml", {**to_dict(run_cfg), "env_id": run_cfg.env_id, "source": source or "api"})
    write_json(run / "versions.json", versions())
    set_status(run, "running", 0, None)
    say(f"run folder: {run}")
    say(
        f"config: {source or 'api'}: {cfg.algo} on {run_cfg.env_id} ({cfg.obs}, {cfg.action}), {cfg.total_steps:,} steps, "
        f"{cfg.n_envs} env{'s' if cfg.n_envs > 1 else ''}, seed {cfg.seed}; "
        + (f"validation every {cfg.eval_every_steps:,} steps on {cfg.val_episodes} seeds, " if cfg.eval_every_steps else "no validation, ")
        + f"test on {_seeds(0, cfg.eval_episodes)}"
    )
    with _status_on_failure(run):
        if cfg.algo == "q":
            agent, model_file = _train_q(run_cfg, run, progress, say)
        else:
            agent, model_file = _train_sb3(run_cfg, run, progress, resume_from=None, say=say)
        _finish(run, run_cfg, agent, model_file, progress, say)
    return run


def _seeds(first: int, n: int) -> str:
    """``n`` seeds from ``first`` as a phase line says it."""
    return "no seeds" if n == 0 else f"seed {first}" if n == 1 else f"{n} seeds ({first}-{first + n - 1})"


#: Where phase lines go (``print``-like).
Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    """No phase lines (the library default; the command prints them)."""


@contextmanager
def _status_on_failure(run: Path) -> Iterator[None]:
    """``status.json`` says ``failed`` (with the reason) when training ends in an error: never a run left "running"."""
    try:
        yield
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        status = read_status(run)
        set_status(run, "interrupted", status.get("steps", 0), status.get("checkpoint"), **status_extras(status))
        raise
    except Exception as err:
        try:
            status = read_status(run)
            if isinstance(err, OSError) and err.strerror:
                text = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
            else:
                text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            set_status(run, "failed", status.get("steps", 0), status.get("checkpoint"), error=text, **status_extras(status))
        except (OSError, ValueError):
            pass  # the failure may be the disk itself; the error still reaches the user
        raise


def resume(run_dir: str | Path, *, progress: bool = True, say: Say | None = None) -> Path:
    """Continue an interrupted run in its own folder, from its last checkpoint, to its ``total_steps``.

    Refused in one line, before anything is written, for a run folder it cannot read fully (config,
    status, checkpoint with optimiser state, replay buffer where the algorithm has one).
    """
    say = say or _quiet
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"resume: {run} is not a run folder (no config.yaml)")
    status = read_status(run)
    if status.get("state") == "finished":
        raise ConfigError(f"resume: {run} has finished ({status.get('steps', 0):,} steps); start a new run to train further")
    run_cfg = read_run_config(run)
    if run_cfg.train.algo == "q":
        raise ConfigError("resume: tabular Q-learning runs train in minutes and restart instead; start a new run")
    ckpt = status.get("checkpoint")
    if not ckpt or not (run / ckpt).is_file():
        raise ConfigError(f"resume: {run} has no checkpoint to resume from (stopped before its first one)")
    check_checkpoint(run / ckpt, run_cfg.train.algo)
    say(f"resuming {run} from step {status.get('steps', 0):,} of {run_cfg.train.total_steps:,} ({ckpt})")
    with _status_on_failure(run):
        agent, model_file = _train_sb3(run_cfg, run, progress, resume_from=run / ckpt, say=say)
        _finish(run, run_cfg, agent, model_file, progress, say)
    return run


def read_run_config(run: Path) -> RunConfig:
    """A run folder's ``config.yaml``, read in full: a file that does not parse or build is refused, never replaced by defaults."""
    path = run / "config.yaml"
    try:
        data = read_yaml(path, "resume")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(data, dict) or not isinstance(data.get("train"), dict):
        raise ConfigError(f"resume: {path} has no train section; it is not a run's config (restore it or start a new run)")
    try:
        return build(RunConfig, {k: data[k] for k in SECTIONS if k in data})
    except ConfigError as err:
        raise ConfigError(f"resume: {path}: {err}") from None


#: The entry of an SB3 model file that holds the optimiser's state (Adam's moments): a resume without it would restart them.
OPTIMIZER_ENTRY = "policy.optimizer.pth"


def check_checkpoint(path: Path, algo: str) -> None:
    """A checkpoint a resume can continue from exactly, or one line naming the file.

    That is a readable model of the run's algorithm with its optimiser state and, for the off-policy
    algorithms, its replay buffer.
    """
    import zipfile

    from agents.policies.sb3 import read_meta

    try:
        meta = read_meta(path)
    except ValueError as err:
        raise ConfigError(f"resume: {err}") from None
    if meta["algo"] != algo:
        raise ConfigError(f"resume: {path} holds a {meta['algo']} model, but the run trains {algo}")
    with zipfile.ZipFile(path) as archive:
        if OPTIMIZER_ENTRY not in archive.namelist():
            raise ConfigError(f"resume: {path} has no optimiser state ({OPTIMIZER_ENTRY}); the run cannot continue exactly")
    if algo in ("dqn", "sac"):
        replay = path.with_suffix(".replay.npz")
        if not replay.is_file():
            raise ConfigError(f"resume: {replay} is missing: a {algo} run continues with its replay buffer (restore it or start a new run)")
        try:
            with zipfile.ZipFile(replay) as archive:
                names = {n.removesuffix(".npy") for n in archive.namelist()}
        except (OSError, zipfile.BadZipFile):
            raise ConfigError(f"resume: {replay} is not a complete replay buffer (truncated?)") from None
        lacking = sorted({"pos", "full", "size", "actions", "rewards", "dones"} - names)
        if lacking:
            raise ConfigError(f"resume: {replay} lacks {', '.join(lacking)}; it is not a drive-sim replay buffer")


def _finish(run: Path, run_cfg: RunConfig, agent: Any, model_file: str, progress: bool, say: Say) -> None:
    """The final test on seeds 0, 1, ... of the model in ``model_file``, the learning curve, the status."""
    cfg = run_cfg.train
    if cfg.eval_episodes:
        say(f"test: {model_file} on {_seeds(0, cfg.eval_episodes)} ...")
    rows = [s.brief() for s in evaluate_agent(agent, run_cfg.agent_env, range(cfg.eval_episodes), progress=progress)]
    write_csv(run / "eval.csv", rows)
    summary = {**run_scores(rows), "model": model_file, "total_steps": cfg.total_steps}
    write_json(run / "eval.json", summary)
    if rows:
        say(
            f"test: success {summary['success_rate']:.0%}, collisions {summary['collision_rate']:.0%}, "
            f"off road {summary['off_road_rate']:.0%}, route {summary['mean_route_completion']:.2f}, "
            f"speed/limit {summary['mean_speed_ratio']:.2f} ({run / 'eval.json'})"
        )
    plot_learning_curve(run)
    status = read_status(run)
    set_status(run, "finished", status.get("steps", cfg.total_steps), status.get("checkpoint"), **status_extras(status))


def _train_q(run_cfg: RunConfig, run: Path, progress: bool, say: Say) -> tuple[Any, str]:
    """Tabular Q-learning; writes ``model.npz`` (final), ``best_model.npz`` (validated), episode and validation rows."""
    from agents.policies.q_learning import train_q_learning
    from agents.training.callbacks import score_row, validation_row, validation_text

    cfg = run_cfg.train
    target = run_cfg.agent_env
    val_seeds = range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + cfg.val_episodes)

    def validate(step: int, agent: Any) -> tuple[float, ...]:
        row = validation_row(step, evaluate_agent(agent, target, val_seeds))
        write_csv(run / "evaluations.csv", [*read_csv(run / "evaluations.csv"), row])
        say(f"validation at step {step:,}: {validation_text(row)}")
        set_status(run, "running", step, None)
        return score_row(row)

    t0 = time.perf_counter()
    result = train_q_learning(
        target.make,
        run_cfg.q_config(),
        cfg.total_steps,
        n_envs=cfg.n_envs,
        seed=TRAIN_SEED_BASE + 100 * cfg.seed,
        progress=progress,
        validate=validate if cfg.eval_every_steps else None,
        validate_every=cfg.eval_every_steps,
    )
    wall = time.perf_counter() - t0
    meta = {"algo": "q", "env_id": target.env_id, "obs_type": cfg.obs, "action_type": cfg.action, "env_cfg": run_cfg.env}
    result.agent.meta = meta
    atomic_write(run / "model.npz", lambda p: result.agent.save(p))
    write_csv(run / "train_episodes.csv", result.episodes)
    set_status(run, "running", result.steps, None, train_wall_s=round(wall, 1))
    if result.best is not None:
        result.best.meta = meta
        atomic_write(run / "best_model.npz", lambda p: result.best.save(p))
        return result.best, "best_model.npz"
    return result.agent, "model.npz"


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by the first SIGINT/SIGTERM; a second SIGINT raises KeyboardInterrupt."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _train_sb3(run_cfg: RunConfig, run: Path, progress: bool, resume_from: Path | None, say: Say = _quiet) -> tuple[Any, str]:
    """PPO, DQN or SAC; writes the model, checkpoints, TensorBoard logs and episode rows.

    Returns the agent the final test runs (the best validated model when there is one) and its file.
    """
    from agents.policies.sb3 import SB3Agent, load_model, model_meta, save_model
    from agents.training.callbacks import RunCallback
    from agents.training.sb3_train import (
        Normalisation,
        build_model,
        configure_torch,
        load_replay_buffer,
        make_vec_env,
        restore_vecnormalize,
        vecnormalize_state,
    )

    cfg = run_cfg.train
    eid = run_cfg.env_id
    policy = run_cfg.policy_config()
    configure_torch(cfg.torch_threads)
    meta = model_meta(cfg.algo, eid, cfg.obs, cfg.action, policy, run_cfg.hyperparams, run_cfg.env)
    gamma = float(run_cfg.hyperparams.get("gamma", 0.99))
    norm = Normalisation(obs=cfg.normalize_obs, reward=cfg.normalize_reward, gamma=gamma)
    status = read_status(run)
    resumes = int(status.get("resumes", 0)) + (1 if resume_from is not None else 0)
    # A resumed run reseeds its envs away from the seeds it started with (still >= 1000).
    seed = TRAIN_SEED_BASE + 100 * cfg.seed + 100_000 * resumes
    vec = make_vec_env(
        eid,
        run_cfg.agent_env.make_kwargs(),
        cfg.n_envs,
        seed,
        normalisation=norm if norm.active else None,
        vec_env=cfg.vec_env,
        workers=cfg.workers,
    )
    try:
        if resume_from is None:
            model = build_model(cfg.algo, vec, run_cfg.hyperparams, policy, cfg.seed, str(run / "tb"))
        else:
            model, saved = load_model(resume_from, algo=cfg.algo, env=vec)
            model.tensorboard_log = str(run / "tb")
            if saved.get("normalisation"):
                restore_vecnormalize(vec, saved["normalisation"])
            if getattr(model, "replay_buffer", None) is not None:  # check_checkpoint has seen it there
                load_replay_buffer(model.replay_buffer, resume_from.with_suffix(".replay.npz"))
            _truncate_episode_log(run / "train_episodes.csv", model.num_timesteps)
        start_steps = int(model.num_timesteps)
        remaining = cfg.total_steps - start_steps
        t0 = time.perf_counter()
        with _stop_on_signals() as stop:
            callback = RunCallback(run, cfg, meta, stop, cfg.n_envs, progress=progress, say=say)
            if remaining > 0:
                model.learn(
                    total_timesteps=remaining,
                    callback=callback,
                    reset_num_timesteps=resume_from is None,
                    tb_log_name="train",
                    progress_bar=False,  # the callback's bar counts the whole run's steps (a resumed run starts at its count)
                )
            if not callback.stopped:
                callback.validate_if_due()
            callback.flush_episodes()
        wall = float(status.get("train_wall_s", 0.0)) + time.perf_counter() - t0
        if callback.stopped:
            model.num_timesteps = callback.consistent_steps
            ckpt = callback.write_checkpoint(model, "interrupted")
            set_status(run, "interrupted", model.num_timesteps, ckpt, resumes=resumes, train_wall_s=round(wall, 1))
            raise TrainingInterrupted(run, model.num_timesteps)
        atomic_write(run / "model.zip", lambda p: save_model(model, p, meta, vecnormalize_state(vec)))
        set_status(run, "running", model.num_timesteps, read_status(run).get("checkpoint"), resumes=resumes, train_wall_s=round(wall, 1))
        if (run / "best_model.zip").is_file():
            return SB3Agent.load(run / "best_model.zip"), "best_model.zip"
        return SB3Agent(model, meta, vecnormalize_state(vec)), "model.zip"
    finally:
        vec.close()


def _truncate_episode_log(path: Path, steps: int) -> None:
    """Drop rows logged after ``steps`` (a rollout cut short by an interrupt is collected again), and torn ones (a kill mid-write)."""
    rows = read_csv(path)

    def kept(row: dict[str, str]) -> bool:
        try:
            return None not in row and None not in row.values() and int(row["step"]) <= steps
        except (KeyError, TypeError, ValueError):
            return False

    keep = [r for r in rows if kept(r)]
    if len(keep) != len(rows):
        if keep:
            write_csv(path, keep)
        else:
            path.unlink()
