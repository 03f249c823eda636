"""Training from a config: one call, one run folder, stoppable and resumable.

A run is described by a ``RunConfig`` (YAML, rl-zoo3 style): ``train`` (what to train and for how
long), ``hyperparams`` (keyword arguments of the SB3 algorithm, or the Q-learning settings) and
``policy`` (network sizes). Tuned configs ship in ``agents/configs/<scenario>-<algo>-<obs>.yaml``;
``drive-sim train --scenario highway --algo ppo --obs lidar`` starts from the matching one (or the
defaults when none ships), ``--config FILE`` from a file of your own, and command-line flags override.

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

Seeds (MetaDrive's generalisation split): training envs from 1000 upward; validation (model
selection during training) on seeds 100-199; the final test on seeds 0-99. The three never overlap,
so the reported score is not the one the best model was picked on.

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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

import envs
from agents.evaluation import evaluate_agent, summarise_episodes
from agents.runs import (
    atomic_write,
    new_run_dir,
    read_csv,
    read_status,
    set_status,
    status_extras,
    versions,
    write_csv,
    write_json,
    write_yaml,
)
from drive_sim.config import ConfigError, build, merge, require, to_dict

ALGOS = ("ppo", "dqn", "sac", "q")
TRAIN_SEED_BASE = 1000
TEST_SEEDS = 100
SECTIONS = ("train", "hyperparams", "policy", "env")  # final evaluation seeds are 0 .. TEST_SEEDS - 1


class TrainingInterrupted(Exception):
    """Training stopped on a signal; a checkpoint was written."""

    def __init__(self, run: Path, steps: int) -> None:
        super().__init__(f"interrupted at step {steps:,}; checkpoint written; continue with: drive-sim train --resume {run}")
        self.run = run
        self.steps = steps


@dataclass(frozen=True)
class TrainConfig:
    """What to train, for how long, and how it is watched.

    Attributes:
        scenario: scenario name (``highway``, ``lanekeep``, ...) or a registered DriveSim id.
        algo: ``ppo``, ``dqn``, ``sac`` (stable-baselines3) or ``q`` (tabular Q-learning).
        obs: observation type (``lidar``, ``camera``, ``multi``, ``kinematics``).
        action: action type (``continuous``, ``discrete``, ``meta``); dqn and q need discrete or meta,
            sac continuous.
        total_steps: environment steps to train for (over all envs).
        n_envs: parallel environments (subprocesses when more than one).
        seed: run seed; training env ``i`` is seeded ``1000 + 100 * seed + i``.
        eval_episodes: final test episodes, on seeds 0, 1, ... (at most 100).
        eval_every_steps: validation every this many steps on seeds 100, 101, ...; 0 for none.
        val_episodes: episodes per validation round.
        checkpoint_every_steps: periodic checkpoints; 0 for none (Ctrl-C still writes one).
        normalize_obs: VecNormalize observations (vector observations only).
        normalize_reward: VecNormalize rewards (scaled by the running return's deviation).
        torch_threads: PyTorch intra-op threads of the learner (1 suits small networks beside env workers).
        out_dir: where run folders are created.
        name: run folder name (default ``<scenario>-<algo>-<obs>-s<seed>``).
    """

    scenario: str = "highway"
    algo: str = "ppo"
    obs: str = "lidar"
    action: str = "continuous"
    total_steps: int = 20_000
    n_envs: int = 1
    seed: int = 0
    eval_episodes: int = 5
    eval_every_steps: int = 0
    val_episodes: int = 10
    checkpoint_every_steps: int = 0
    normalize_obs: bool = False
    normalize_reward: bool = False
    torch_threads: int = 1
    out_dir: str = "runs"
    name: str | None = None

    def __post_init__(self) -> None:
        require(self.algo in ALGOS, "algo", f"{self.algo!r} is not allowed; allowed: {', '.join(ALGOS)}")
        require(self.obs in envs.OBS_TYPES, "obs", f"{self.obs!r} is not allowed; allowed: {', '.join(envs.OBS_TYPES)}")
        require(self.action in envs.ACTION_TYPES, "action", f"{self.action!r} is not allowed; allowed: {', '.join(envs.ACTION_TYPES)}")
        require(
            self.algo not in ("dqn", "q") or self.action in ("discrete", "meta"), "action", f"{self.algo} needs --action discrete or meta"
        )
        require(self.algo != "sac" or self.action == "continuous", "action", "sac needs --action continuous")
        require(self.algo != "q" or self.obs in ("lidar", "kinematics"), "obs", "q needs a vector observation: --obs lidar or kinematics")
        require(self.total_steps >= 1, "total_steps", f"must be at least 1, got {self.total_steps}")
        require(1 <= self.n_envs <= 64, "n_envs", f"must be between 1 and 64, got {self.n_envs}")
        require(self.seed >= 0, "seed", f"must be non-negative, got {self.seed}")
        require(0 <= self.eval_episodes <= TEST_SEEDS, "eval_episodes", f"must be between 0 and {TEST_SEEDS}, got {self.eval_episodes}")
        require(self.eval_every_steps >= 0, "eval_every_steps", f"must be non-negative, got {self.eval_every_steps}")
        require(1 <= self.val_episodes <= 100, "val_episodes", f"must be between 1 and 100, got {self.val_episodes}")
        require(1 <= self.torch_threads <= 64, "torch_threads", f"must be between 1 and 64, got {self.torch_threads}")
        require(self.checkpoint_every_steps >= 0, "checkpoint_every_steps", f"must be non-negative, got {self.checkpoint_every_steps}")
        require(
            not self.normalize_obs or self.obs in ("lidar", "kinematics"),
            "normalize_obs",
            "only vector observations (lidar, kinematics) are normalised",
        )
        env_id(self.scenario)

    @property
    def run_name(self) -> str:
        """Folder name of the run."""
        return self.name or f"{self.scenario}-{self.algo}-{self.obs}-s{self.seed}"


@dataclass(frozen=True)
class RunConfig:
    """A whole training config.

    Attributes:
        train: what to train and for how long.
        hyperparams: keyword arguments of the SB3 algorithm, or ``QLearningConfig`` fields for q.
        policy: ``agents.sb3.PolicyConfig`` fields (SB3 only).
        env: overrides of the env config (``envs.config.EnvConfig``: action, observation, reward),
            passed to ``gym.make(..., cfg=env)`` for training and evaluation alike.
    """

    train: TrainConfig = field(default_factory=TrainConfig)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(isinstance(self.hyperparams, dict), "hyperparams", "must be a mapping of keyword arguments")
        require(isinstance(self.policy, dict), "policy", "must be a mapping")
        require(isinstance(self.env, dict), "env", "must be a mapping of env config overrides")
        if self.env:
            from envs.config import make_config

            c = self.train
            make_config(envs.ENV_IDS[env_id(c.scenario)], c.obs, c.action, self.env)  # unknown keys raise here
        if self.train.algo == "q":
            self.q_config()
            require(not self.policy, "policy", "q has no network; remove the policy section")
        else:
            from agents.sb3 import check_hyperparams

            check_hyperparams(self.train.algo, self.hyperparams)
            self.policy_config()

    def policy_config(self) -> Any:
        """The SB3 network sizes (``agents.sb3.PolicyConfig``)."""
        from agents.sb3 import PolicyConfig

        return build(PolicyConfig, self.policy, path="policy")

    def q_config(self) -> Any:
        """The Q-learning settings (``agents.q_learning.QLearningConfig``); schedules default to the budget."""
        from agents.q_learning import QLearningConfig, Schedule

        n = self.train.total_steps
        defaults = {
            "learning_rate": Schedule(0.5, 0.1, n),
            "epsilon": Schedule(1.0, 0.05, max(1, int(0.6 * n))),
        }
        return merge(replace(QLearningConfig(), **defaults), self.hyperparams, path="hyperparams")


def env_kwargs(run_cfg: RunConfig) -> dict[str, Any]:
    """Extra ``gym.make`` keyword arguments of a run (its env config overrides)."""
    return {"cfg": run_cfg.env} if run_cfg.env else {}


def env_id(scenario: str) -> str:
    """Registered id for a scenario library name or a registered id."""
    if scenario in envs.ENV_IDS:
        return scenario
    by_name = {name: i for i, name in envs.ENV_IDS.items() if i != "DriveSim/Custom-v0"}
    if scenario in by_name:
        return by_name[scenario]
    raise ConfigError(f"scenario: {scenario!r} is not known; known: {', '.join(sorted(by_name))} (or a DriveSim/* id)")


# ---------------------------------------------------------------------------------------------- configs
def shipped_config_path(scenario: str, algo: str, obs: str) -> Path | None:
    """The tuned config shipped for this combination, if there is one."""
    path = Path(str(resources.files("agents") / "configs" / f"{scenario}-{algo}-{obs}.yaml"))
    return path if path.is_file() else None


def shipped_configs() -> list[str]:
    """Names of the shipped configs (``<scenario>-<algo>-<obs>``)."""
    folder = Path(str(resources.files("agents") / "configs"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML config as a mapping with at most the sections ``train``, ``hyperparams``, ``policy`` and ``env``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config: {path}{where} is not valid YAML") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path} must hold a mapping of sections ({', '.join(SECTIONS)})")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"config: {path}: unknown section {unknown[0]!r}; allowed: {', '.join(SECTIONS)}")
    return data


def resolve_config(
    overrides: Mapping[str, Any],
    config_file: str | Path | None = None,
) -> tuple[RunConfig, str]:
    """The run config from a file (or the shipped one for the scenario/algo/obs) and overrides of ``train`` keys.

    Returns:
        The config and where it came from (a path, ``shipped:<name>`` or ``defaults``).
    """
    base: dict[str, Any]
    if config_file is not None:
        base, source = read_config_file(config_file), str(config_file)
    else:
        d = TrainConfig()
        scenario = overrides.get("scenario", d.scenario)
        algo = overrides.get("algo", d.algo)
        obs = overrides.get("obs", d.obs)
        shipped = shipped_config_path(str(scenario), str(algo), str(obs))
        if shipped is not None:
            base, source = read_config_file(shipped), f"shipped:{shipped.stem}"
        else:
            base, source = {}, "defaults"
    train = {**(base.get("train") or {}), **overrides}
    data = {"train": train, **{k: base.get(k) or {} for k in SECTIONS if k != "train"}}
    return build(RunConfig, data), source


# ---------------------------------------------------------------------------------------------- train / resume
def train(run_cfg: RunConfig, *, source: str = "", progress: bool = True) -> Path:
    """Train, evaluate and write the run folder; returns its path.

    Raises:
        TrainingInterrupted: on Ctrl-C/SIGTERM, after writing a checkpoint.
    """
    cfg = run_cfg.train
    run = new_run_dir(cfg.out_dir, cfg.run_name)
    write_yaml(run / "config.yaml", {**to_dict(run_cfg), "env_id": env_id(cfg.scenario), "source": source or "api"})
    write_json(run / "versions.json", versions())
    set_status(run, "running", 0, None)
    if cfg.algo == "q":
        agent, model_file = _train_q(run_cfg, run, progress)
    else:
        agent, model_file = _train_sb3(run_cfg, run, progress, resume_from=None)
    _finish(run, run_cfg, agent, model_file, progress)
    return run


def resume(run_dir: str | Path, *, progress: bool = True) -> Path:
    """Continue an interrupted run in its own folder, from its last checkpoint, to its ``total_steps``."""
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"resume: {run} is not a run folder (no config.yaml)")
    status = read_status(run)
    if status.get("state") == "finished":
        raise ConfigError(f"resume: {run} has finished ({status.get('steps', 0):,} steps); start a new run to train further")
    ckpt = status.get("checkpoint")
    if not ckpt or not (run / ckpt).is_file():
        raise ConfigError(f"resume: {run} has no checkpoint to resume from (stopped before its first one)")
    data = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    run_cfg = build(RunConfig, {k: data[k] for k in SECTIONS if k in data})
    if run_cfg.train.algo == "q":
        raise ConfigError("resume: tabular Q-learning runs train in minutes and restart instead; start a new run")
    agent, model_file = _train_sb3(run_cfg, run, progress, resume_from=run / ckpt)
    _finish(run, run_cfg, agent, model_file, progress)
    return run


def _finish(run: Path, run_cfg: RunConfig, agent: Any, model_file: str, progress: bool) -> None:
    """The final test on seeds 0, 1, ... of the model in ``model_file``, the learning curve, the status."""
    cfg = run_cfg.train
    seeds = range(cfg.eval_episodes)
    rows = evaluate_agent(agent, env_id(cfg.scenario), cfg.obs, cfg.action, seeds, progress=progress, **env_kwargs(run_cfg))
    write_csv(run / "eval.csv", rows)
    summary = {**summarise_episodes(rows), "model": model_file, "total_steps": cfg.total_steps}
    write_json(run / "eval.json", summary)
    plot_learning_curve(run)
    status = read_status(run)
    set_status(run, "finished", status.get("steps", cfg.total_steps), status.get("checkpoint"), **status_extras(status))


def _train_q(run_cfg: RunConfig, run: Path, progress: bool) -> tuple[Any, str]:
    """Tabular Q-learning; writes ``model.npz`` (final), ``best_model.npz`` (validated), episode and validation rows."""
    from agents.callbacks import VALIDATION_SEED_BASE, score_row, validation_row
    from agents.q_learning import train_q_learning

    cfg = run_cfg.train
    eid = env_id(cfg.scenario)

    def make_env() -> gym.Env:
        return gym.make(eid, obs_type=cfg.obs, action_type=cfg.action, **env_kwargs(run_cfg))

    val_seeds = range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + cfg.val_episodes)

    def validate(step: int, agent: Any) -> tuple[float, ...]:
        row = validation_row(step, evaluate_agent(agent, eid, cfg.obs, cfg.action, val_seeds, **env_kwargs(run_cfg)))
        write_csv(run / "evaluations.csv", [*read_csv(run / "evaluations.csv"), row])
        return score_row(row)

    t0 = time.perf_counter()
    result = train_q_learning(
        make_env,
        run_cfg.q_config(),
        cfg.total_steps,
        n_envs=cfg.n_envs,
        seed=TRAIN_SEED_BASE + 100 * cfg.seed,
        progress=progress,
        validate=validate if cfg.eval_every_steps else None,
        validate_every=cfg.eval_every_steps,
    )
    wall = time.perf_counter() - t0
    meta = {"algo": "q", "env_id": eid, "obs_type": cfg.obs, "action_type": cfg.action, "env_cfg": run_cfg.env}
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


def _train_sb3(run_cfg: RunConfig, run: Path, progress: bool, resume_from: Path | None) -> tuple[Any, str]:
    """PPO, DQN or SAC; writes the model, checkpoints, TensorBoard logs and episode rows.

    Returns the agent the final test runs (the best validated model when there is one) and its file.
    """
    from agents.callbacks import RunCallback
    from agents.sb3 import (
        Normalisation,
        SB3Agent,
        build_model,
        configure_torch,
        load_model,
        load_replay_buffer,
        make_vec_env,
        model_meta,
        restore_vecnormalize,
        save_model,
        vecnormalize_state,
    )

    cfg = run_cfg.train
    eid = env_id(cfg.scenario)
    policy = run_cfg.policy_config()
    configure_torch(cfg.torch_threads)
    meta = model_meta(cfg.algo, eid, cfg.obs, cfg.action, policy, run_cfg.hyperparams, run_cfg.env)
    gamma = float(run_cfg.hyperparams.get("gamma", 0.99))
    norm = Normalisation(obs=cfg.normalize_obs, reward=cfg.normalize_reward, gamma=gamma)
    status = read_status(run)
    resumes = int(status.get("resumes", 0)) + (1 if resume_from is not None else 0)
    # A resumed run reseeds its envs away from the seeds it started with (still >= 1000).
    seed = TRAIN_SEED_BASE + 100 * cfg.seed + 100_000 * resumes
    kwargs = {"obs_type": cfg.obs, "action_type": cfg.action, **env_kwargs(run_cfg)}
    vec = make_vec_env(eid, kwargs, cfg.n_envs, seed, normalisation=norm if norm.active else None)
    try:
        if resume_from is None:
            model = build_model(cfg.algo, vec, run_cfg.hyperparams, policy, cfg.seed, str(run / "tb"))
        else:
            model, saved = load_model(resume_from, algo=cfg.algo, env=vec)
            model.tensorboard_log = str(run / "tb")
            if saved.get("normalisation"):
                restore_vecnormalize(vec, saved["normalisation"])
            replay = resume_from.with_suffix(".replay.npz")
            if hasattr(model, "replay_buffer") and replay.is_file():
                load_replay_buffer(model.replay_buffer, replay)
            _truncate_episode_log(run / "train_episodes.csv", model.num_timesteps)
        start_steps = int(model.num_timesteps)
        remaining = cfg.total_steps - start_steps
        t0 = time.perf_counter()
        with _stop_on_signals() as stop:
            callback = RunCallback(run, cfg, meta, stop, cfg.n_envs)
            if remaining > 0:
                model.learn(
                    total_timesteps=remaining,
                    callback=callback,
                    reset_num_timesteps=resume_from is None,
                    tb_log_name="train",
                    progress_bar=progress,
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
    """Drop rows logged after ``steps`` (a rollout cut short by an interrupt is collected again)."""
    rows = read_csv(path)
    keep = [r for r in rows if int(r["step"]) <= steps]
    if len(keep) != len(rows):
        if keep:
            write_csv(path, keep)
        else:
            path.unlink()


# ---------------------------------------------------------------------------------------------- picture
def draw_rates(ax: Any, run: Path) -> None:
    """Training success and route completion (rolling means) and validation rounds of ``run`` on ``ax`` (0-1 scale)."""
    episodes = read_csv(run / "train_episodes.csv")
    if episodes:
        step = np.array([float(r["step"]) for r in episodes])
        k = max(1, min(100, len(episodes) // 10))
        for key, color, label in (("route_completion", "tab:gray", "train route completion"), ("success", "tab:blue", "train success")):
            smooth = np.convolve([float(r[key]) for r in episodes], np.ones(k) / k, "valid")
            ax.plot(step[k - 1 :], smooth, color=color, lw=1, label=f"{label} ({k}-ep. mean)")
    evals = read_csv(run / "evaluations.csv")
    if evals:
        es = [float(r["step"]) for r in evals]
        ax.plot(es, [float(r["success_rate"]) for r in evals], "o-", ms=3, color="tab:green", label="validation success")
        ax.plot(es, [float(r["mean_route_completion"]) for r in evals], "s-", ms=3, color="tab:orange", label="validation route completion")
    ax.set_ylim(-0.02, 1.02)
    _steps_axis(ax)
    ax.legend(loc="lower right", fontsize=7)


def _steps_axis(ax: Any) -> None:
    from matplotlib.ticker import EngFormatter

    ax.set_xlabel("environment steps")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1M


def plot_learning_curve(run: Path) -> Path | None:
    """``learning_curve.png``: training return, and success/route completion (training and validation), against steps."""
    episodes = read_csv(run / "train_episodes.csv")
    if not episodes and not (run / "evaluations.csv").is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if episodes:
        step = np.array([float(r["step"]) for r in episodes])
        ret = np.array([float(r["return"]) for r in episodes])
        k = max(1, min(100, len(ret) // 10))
        axes[0].plot(step, ret, ".", ms=2, alpha=0.3, color="tab:blue")
        axes[0].plot(step[k - 1 :], np.convolve(ret, np.ones(k) / k, "valid"), color="tab:blue", label=f"return ({k}-episode mean)")
        axes[0].legend(loc="lower right", fontsize=8)
    _steps_axis(axes[0])
    axes[0].set_ylabel("episode return")
    draw_rates(axes[1], run)
    fig.suptitle(run.name)
    fig.tight_layout()
    out = run / "learning_curve.png"
    atomic_write(out, lambda p: fig.savefig(p, dpi=90, format="png"))
    plt.close(fig)
    return out
