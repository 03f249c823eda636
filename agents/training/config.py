"""Training configs: what to train (``TrainConfig``), the whole YAML config (``RunConfig``), the shipped ones, the seed bands.

A run is described by a ``RunConfig`` (YAML, rl-zoo3 style): ``train`` (what to train and for how
long), ``hyperparams`` (keyword arguments of the SB3 algorithm, or the Q-learning settings),
``policy`` (network sizes) and ``env`` (env config overrides). Tuned configs ship in
``agents/training/configs/<scenario>-<algo>-<obs>.yaml``; ``drive-sim train --scenario highway --algo
ppo --obs lidar`` starts from the matching one (or the defaults when none ships), ``--config FILE``
from a file of your own, and command-line flags override (``resolve_config``).

Seeds (MetaDrive's generalisation split): training envs from ``TRAIN_SEED_BASE`` (1000) upward;
validation (model selection during training) on seeds 100-199; the final test on seeds 0-99. The
three never overlap, so the reported score is not the one the best model was picked on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import envs
from agents.policies.base import AgentEnv
from drive_sim.config import ConfigError, build, merge, require
from drive_sim.files import read_yaml

ALGOS = ("ppo", "dqn", "sac", "q")
TRAIN_SEED_BASE = 1000
#: Training vector envs (``TrainConfig.vec_env``).
VEC_ENVS = ("subproc", "batched")
VALIDATION_SEED_BASE = 100
TEST_SEEDS = 100  # final evaluation seeds are 0 .. TEST_SEEDS - 1
SECTIONS = ("train", "hyperparams", "policy", "env")


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
        n_envs: parallel environments (subprocesses when more than one, or worlds of the batched env).
        vec_env: ``subproc`` (one env per process, SB3's SubprocVecEnv) or ``batched`` (``n_envs``
            worlds split over ``workers`` processes, each a batched ``DrivingVectorEnv``:
            ``agents.training.batched_vec``); the same episodes either way.
        workers: processes of the batched env; 0 for one per core (at most ``n_envs``).
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
    vec_env: str = "subproc"
    workers: int = 0
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
        require(self.vec_env in VEC_ENVS, "vec_env", f"{self.vec_env!r} is not allowed; allowed: {', '.join(VEC_ENVS)}")
        require(
            0 <= self.workers <= self.n_envs, "workers", f"must be between 0 (one per core) and n_envs ({self.n_envs}), got {self.workers}"
        )
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
        envs.env_id(self.scenario)
        if self.name is not None:
            ok = bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", self.name)) and self.name not in (".", "..")
            require(ok, "name", f"{self.name!r} is not a folder name; use letters, digits, '.', '_' and '-' (it stays inside out_dir)")

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
        policy: ``agents.policies.sb3.PolicyConfig`` fields (SB3 only).
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
            make_config(envs.ENV_IDS[envs.env_id(c.scenario)], c.obs, c.action, self.env)  # unknown keys raise here
        if self.train.algo == "q":
            self.q_config()
            require(not self.policy, "policy", "q has no network; remove the policy section")
        else:
            from agents.policies.sb3 import check_hyperparams

            check_hyperparams(self.train.algo, self.hyperparams)
            self.policy_config()

    def policy_config(self) -> Any:
        """The SB3 network sizes (``agents.policies.sb3.PolicyConfig``)."""
        from agents.policies.sb3 import PolicyConfig

        return build(PolicyConfig, self.policy, path="policy")

    def q_config(self) -> Any:
        """The Q-learning settings (``agents.policies.q_learning.QLearningConfig``); schedules default to the budget."""
        from agents.policies.q_learning import QLearningConfig, Schedule

        n = self.train.total_steps
        defaults = {
            "learning_rate": Schedule(0.5, 0.1, n),
            "epsilon": Schedule(1.0, 0.05, max(1, int(0.6 * n))),
        }
        return merge(replace(QLearningConfig(), **defaults), self.hyperparams, path="hyperparams")

    @property
    def env_id(self) -> str:
        """The registered id of the run's scenario."""
        return envs.env_id(self.train.scenario)

    @property
    def agent_env(self) -> AgentEnv:
        """The env the run trains and is evaluated on: its scenario, observation and action types and env overrides."""
        return AgentEnv(self.env_id, self.train.obs, self.train.action, self.env)


# ---------------------------------------------------------------------------------------------- configs
def shipped_config_path(scenario: str, algo: str, obs: str) -> Path | None:
    """The tuned config shipped for this combination, if there is one."""
    path = Path(str(resources.files("agents.training") / "configs" / f"{scenario}-{algo}-{obs}.yaml"))
    return path if path.is_file() else None


def rl_zoo3_config(algo: str) -> Path:
    """The rl-zoo3 hyperparameter file shipped for ``algo`` (``ppo``, ``dqn``): DriveSim ids in rl-zoo3's format.

    Raises:
        ConfigError: no file ships for ``algo``.
    """
    folder = Path(str(resources.files("agents.training") / "configs" / "rl_zoo3"))
    path = folder / f"{algo}.yml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yml")))
        raise ConfigError(f"algo: no rl-zoo3 file ships for {algo!r}; shipped: {known}")
    return path


def shipped_configs() -> list[str]:
    """Names of the shipped configs (``<scenario>-<algo>-<obs>``)."""
    folder = Path(str(resources.files("agents.training") / "configs"))
    return sorted(p.stem for p in folder.glob("*.yaml"))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML config as a mapping with at most the sections ``train``, ``hyperparams``, ``policy`` and ``env``."""
    path = Path(path)
    try:
        data = read_yaml(path, "config") or {}
    except ValueError as err:
        raise ConfigError(str(err)) from None
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
