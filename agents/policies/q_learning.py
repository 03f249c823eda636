"""Tabular Q-learning on a discretised vector observation (our own, vectorised numpy).

Why our own: stable-baselines3 has no tabular method, and a table over a handful of binned
features (lane offset, heading error, the route ahead) is the classic baseline a driving suite
should show next to DQN and PPO. Everything runs on arrays over the vector env's sub-envs: one
call bins all observations, one ``np.add.at`` applies all updates of a step.

- ``Discretiser``: named features of the observation (``env.observation_names``), each cut into
  evenly spaced bins over [low, high] (values outside fall into the end bins); the bin indices
  combine into one state index.
- ``Schedule``: linear decay from ``start`` to ``end`` over ``steps`` (epsilon, learning rate).
- ``QLearner``: epsilon-greedy Q-learning (Watkins 1989), optional Double Q-learning (van Hasselt
  2010: two tables, each updated with the other's value of its own greedy action).
- ``QLearningAgent``: the greedy policy behind the Agent protocol; saves as ``.npz`` with
  ``allow_pickle=False`` (the table and a JSON header), so loading runs no code.
- ``train_q_learning``: the loop over a Gymnasium vector env (same-step autoreset), with a
  progress bar and per-episode results.

Truncated episodes (time limit) bootstrap from the final observation; terminated ones do not.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from drive_sim.config import ConfigError, build, require
from drive_sim.files import atomic_write, loads_json

FORMAT = "drive-sim-q-table"
FORMAT_VERSION = 1
#: The most a Q table file may unpack to (a table of 13 x 13 states is kilobytes).
MAX_TABLE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Schedule:
    """Linear decay from ``start`` to ``end`` over ``steps`` environment steps, then ``end``."""

    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        require(self.steps > 0, "schedule.steps", f"must be positive, got {self.steps}")

    def __call__(self, t: int) -> float:
        """The value after ``t`` steps."""
        frac = min(max(t / self.steps, 0.0), 1.0)
        return self.start + (self.end - self.start) * frac


@dataclass(frozen=True)
class Discretiser:
    """Evenly spaced bins over [low, high] for each named feature of a flat observation.

    Attributes:
        features: entry names in ``env.observation_names``.
        bins: bins per feature (each >= 2).
        low, high: the binned range of each feature, in observation units.
    """

    features: tuple[str, ...]
    bins: tuple[int, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.features)
        require(n > 0, "q_learning.features", "name at least one observation entry")
        require(
            len(self.bins) == n and len(self.low) == n and len(self.high) == n,
            "q_learning.bins",
            f"features, bins, low and high need one value per feature ({n}), got {len(self.bins)}, {len(self.low)}, {len(self.high)}",
        )
        require(all(b >= 2 for b in self.bins), "q_learning.bins", f"each must be at least 2, got {self.bins}")
        require(all(h > lo for lo, h in zip(self.low, self.high, strict=True)), "q_learning.high", "each high must exceed its low")

    @property
    def n_states(self) -> int:
        """Number of distinct states."""
        return int(np.prod(self.bins))

    def columns(self, names: Sequence[str] | None) -> np.ndarray:
        """Indices of the features in an observation whose entries are ``names``."""
        if names is None:
            raise ConfigError("q_learning: the observation is not a named vector; use obs_type lidar or kinematics")
        missing = [f for f in self.features if f not in names]
        if missing:
            raise ConfigError(f"q_learning.features: {missing} not in the observation; e.g. {', '.join(list(names)[-12:])}")
        return np.array([list(names).index(f) for f in self.features], dtype=np.int64)

    def index(self, obs: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """State index of each row of ``obs`` (N, D) (or of one (D,) observation, as shape (1,))."""
        x = np.atleast_2d(np.asarray(obs, dtype=np.float64))[:, columns]
        low, high, bins = np.asarray(self.low), np.asarray(self.high), np.asarray(self.bins)
        b = np.floor((x - low) / (high - low) * bins).astype(np.int64)
        b = np.minimum(np.maximum(b, 0), bins - 1)
        strides = np.cumprod(np.concatenate([[1], bins[:0:-1]]))[::-1]
        return b @ strides


@dataclass(frozen=True)
class QLearningConfig:
    """Q-learning settings (defaults: lane keeping with discrete steering on the ``lidar`` observation).

    The default bins cover what lane keeping visits: lane offset +-0.25 (of the normalised range),
    heading error +-0.02 and the lateral position of the route point 20 m ahead +-0.06; a
    controller that keeps the lane stays well inside them, and values beyond fall into the end bins.

    Attributes:
        discretiser: which features, how many bins, over what range.
        gamma: discount factor.
        learning_rate: step size schedule.
        epsilon: exploration schedule (epsilon-greedy).
        double: Double Q-learning (two tables).
        initial_q: starting value of every entry (optimistic values explore more).
    """

    discretiser: Discretiser = field(
        default_factory=lambda: Discretiser(
            features=("lane_offset", "heading_error", "route_2_y"),
            bins=(9, 9, 9),
            low=(-0.25, -0.02, -0.06),
            high=(0.25, 0.02, 0.06),
        )
    )
    gamma: float = 0.95
    learning_rate: Schedule = field(default_factory=lambda: Schedule(0.5, 0.05, 200_000))
    epsilon: Schedule = field(default_factory=lambda: Schedule(1.0, 0.05, 100_000))
    double: bool = False
    initial_q: float = 0.0

    def __post_init__(self) -> None:
        require(0.0 <= self.gamma < 1.0, "q_learning.gamma", f"must be in [0, 1), got {self.gamma}")
        for name in ("learning_rate", "epsilon"):
            sch = getattr(self, name)
            require(0.0 <= min(sch.start, sch.end) and max(sch.start, sch.end) <= 1.0, f"q_learning.{name}", "must stay in [0, 1]")


class QLearner:
    """Q table(s) and the vectorised update."""

    def __init__(self, cfg: QLearningConfig, n_actions: int, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.n_actions = n_actions
        self.rng = rng
        shape = (cfg.discretiser.n_states, n_actions)
        self.q = np.full(shape, cfg.initial_q)
        self.q_b = np.full(shape, cfg.initial_q) if cfg.double else None
        self.steps = 0

    def values(self) -> np.ndarray:
        """The table the policy acts on (the mean of both in Double Q-learning)."""
        return self.q if self.q_b is None else 0.5 * (self.q + self.q_b)

    def act(self, states: np.ndarray, epsilon: float) -> np.ndarray:
        """Epsilon-greedy actions for an array of states (ties broken at random)."""
        q = self.values()[states]
        noise = self.rng.random(q.shape) * 1e-9  # random tie-break among equal values
        greedy = np.argmax(q + noise, axis=1)
        explore = self.rng.random(len(states)) < epsilon
        return np.where(explore, self.rng.integers(self.n_actions, size=len(states)), greedy)

    def update(self, s: np.ndarray, a: np.ndarray, r: np.ndarray, s2: np.ndarray, bootstrap: np.ndarray, lr: float) -> None:
        """One step of updates for a batch of transitions (``bootstrap`` False at terminal states)."""
        g = self.cfg.gamma * bootstrap.astype(np.float64)
        if self.q_b is None:
            target = r + g * self.q[s2].max(axis=1)
            np.add.at(self.q, (s, a), lr * (target - self.q[s, a]))
        else:
            # Each transition updates one table at random, valued by the other (van Hasselt 2010).
            first = self.rng.random(len(s)) < 0.5
            for upd, other, rows in ((self.q, self.q_b, first), (self.q_b, self.q, ~first)):
                if not np.any(rows):
                    continue
                ss, aa, rr, ss2, gg = s[rows], a[rows], r[rows], s2[rows], g[rows]
                best = np.argmax(upd[ss2], axis=1)
                target = rr + gg * other[ss2, best]
                np.add.at(upd, (ss, aa), lr * (target - upd[ss, aa]))
        self.steps += len(s)


class QLearningAgent:
    """The greedy policy of a Q table on named observation features (the Agent protocol)."""

    def __init__(
        self,
        discretiser: Discretiser,
        q: np.ndarray,
        names: Sequence[str],
        epsilon: float = 0.05,
        seed: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> None:
        #: The env it drives (``env_id``, ``obs_type``, ``action_type``, ``env_cfg``), when known.
        self.meta = dict(meta or {})
        self.discretiser = discretiser
        self.q = np.asarray(q, dtype=np.float64)
        self.names = tuple(names)
        self._cols = discretiser.columns(self.names)
        self.epsilon = epsilon
        self._rng = np.random.default_rng(seed)

    def act(self, obs: Any, deterministic: bool = True) -> int:
        """The greedy action (epsilon-greedy when not ``deterministic``)."""
        s = int(self.discretiser.index(obs, self._cols)[0])
        if not deterministic and self._rng.random() < self.epsilon:
            return int(self._rng.integers(self.q.shape[1]))
        return int(np.argmax(self.q[s]))

    def reset(self) -> None:
        """No memory between steps."""

    def save(self, path: str | Path) -> None:
        """Write ``.npz``: the table and a JSON header (no pickle)."""
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "discretiser": asdict(self.discretiser),
            "names": list(self.names),
            "epsilon": self.epsilon,
            "env": self.meta,
        }
        # Atomic: a crash never leaves a half-written model (the temporary name ends in .npz, so numpy keeps it).
        atomic_write(Path(path), lambda tmp: np.savez_compressed(tmp, q=self.q, header=np.array(json.dumps(header))))

    @classmethod
    def load(cls, path: str | Path) -> QLearningAgent:
        """Read a table written by ``save`` (``allow_pickle=False``: no code runs), every field checked.

        Raises:
            ConfigError: one line naming the file and the field: missing, damaged, over ``MAX_TABLE_BYTES``,
                another format, or a header field or table shape that is wrong.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such Q-table file")
        try:
            with zipfile.ZipFile(path) as archive:  # an .npz is a zip: its sizes are known before anything is read
                unpacked = sum(i.file_size for i in archive.infolist())
            if unpacked > MAX_TABLE_BYTES:
                raise ConfigError(
                    f"{path}: unpacks to {unpacked / 2**20:,.0f} MiB, more than the {MAX_TABLE_BYTES / 2**20:,.0f} MiB a Q table may"
                )
            with np.load(path, allow_pickle=False) as data:
                q, text = data["q"], str(data["header"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(
                f"{path}: not a drive-sim Q table ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        try:
            header = loads_json(text, f"{path}: header", "q table")
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ConfigError(f"{path}: not a drive-sim Q table (format {header.get('format') if isinstance(header, dict) else None!r})")
        version = header.get("version", 0)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ConfigError(f"{path}: format version {version!r} is newer than this drive-sim reads ({FORMAT_VERSION})")
        try:
            if not isinstance(header.get("discretiser"), dict):
                raise ConfigError("discretiser: expected a mapping of features, bins, low and high")
            disc = build(Discretiser, header["discretiser"], path="discretiser")
            names = header.get("names")
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ConfigError("names: expected a list of observation entry names")
            epsilon = header.get("epsilon", 0.05)
            if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0.0 <= epsilon <= 1.0:
                raise ConfigError(f"epsilon: expected a number from 0 to 1, got {epsilon!r}")
            env = header.get("env") or {}
            if not isinstance(env, dict):
                raise ConfigError("env: expected a mapping")
        except (ConfigError, TypeError) as err:
            raise ConfigError(f"{path}: header: {err}") from None
        if q.ndim != 2 or q.shape[0] != disc.n_states or q.shape[1] < 1 or q.dtype.kind not in "fi":
            raise ConfigError(
                f"{path}: table of shape {q.shape} ({q.dtype}) does not fit its discretiser: ({disc.n_states} states, actions) numbers"
            )
        if not np.all(np.isfinite(q)):
            raise ConfigError(f"{path}: table holds values that are not finite numbers")
        return cls(disc, q, names, float(epsilon), meta=env)


@dataclass
class QTrainResult:
    """A finished training run: the final agent, the best validated one (if validating) and one row per finished episode."""

    agent: QLearningAgent
    episodes: list[dict[str, float]]
    steps: int
    best: QLearningAgent | None = None


def train_q_learning(
    make_env: Callable[[], gym.Env],
    cfg: QLearningConfig,
    total_steps: int,
    *,
    n_envs: int = 1,
    seed: int = 1000,
    progress: bool = True,
    validate: Callable[[int, QLearningAgent], tuple[float, ...]] | None = None,
    validate_every: int = 0,
) -> QTrainResult:
    """Train a Q table on ``n_envs`` copies of ``make_env()`` (a Gymnasium sync vector env).

    Sub-env ``i`` is seeded ``seed + i`` at the first reset (training seeds start at 1000,
    disjoint from the evaluation seeds 0-199); exploration draws from its own generator seeded
    from ``seed``. With ``validate``, the greedy policy is scored every ``validate_every`` steps
    and at the end (``validate(step, agent)`` returns a score tuple, higher is better) and the
    result's ``best`` is the best-scoring table: the greedy policy of a table still being updated
    swings from one snapshot to the next, as SB3 policies do, and the same held-out selection applies.
    """
    require(validate is None or validate_every > 0, "validate_every", "must be positive when validating")
    require(total_steps > 0, "total_steps", f"must be positive, got {total_steps}")
    require(n_envs >= 1, "n_envs", f"must be at least 1, got {n_envs}")
    venv = gym.vector.SyncVectorEnv([make_env for _ in range(n_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    try:
        if not isinstance(venv.single_action_space, gym.spaces.Discrete):
            raise ConfigError(f"q_learning: needs a discrete action space (action_type discrete or meta), got {venv.single_action_space}")
        names = venv.get_attr("observation_names")[0]
        disc = cfg.discretiser
        cols = disc.columns(names)
        learner = QLearner(cfg, int(venv.single_action_space.n), np.random.default_rng(seed))
        obs, _ = venv.reset(seed=[seed + i for i in range(n_envs)])
        s = disc.index(obs, cols)
        ret = np.zeros(n_envs)
        episodes: list[dict[str, float]] = []
        bar = tqdm(total=total_steps, desc="q-learning", unit="step", disable=not progress)
        t = 0
        best: tuple[tuple[float, ...], QLearningAgent] | None = None
        next_val = validate_every
        while t < total_steps:
            a = learner.act(s, cfg.epsilon(t))
            obs, r, term, trunc, info = venv.step(a)
            done = term | trunc
            s_next = disc.index(obs, cols)
            s2 = s_next
            ended = np.flatnonzero(done)
            if len(ended):
                # Same-step autoreset: obs holds the next episode's start; bootstrap from the final one.
                s2 = s_next.copy()
                s2[ended] = disc.index(np.stack([info["final_obs"][i] for i in ended]), cols)
            learner.update(s, a, np.asarray(r, np.float64), s2, ~term, cfg.learning_rate(t))
            ret += r
            for i in ended:
                fin = info["final_info"]
                episodes.append(
                    {
                        "step": float(t + n_envs),
                        "return": float(ret[i]),
                        "route_completion": float(fin["route_completion"][i]),
                        "success": float(fin["is_success"][i]),
                    }
                )
                ret[i] = 0.0
            s = s_next
            t += n_envs
            bar.update(n_envs)
            if len(ended) and len(episodes) % 10 == 0:
                bar.set_postfix(route=f"{np.mean([e['route_completion'] for e in episodes[-20:]]):.2f}")
            if validate is not None and (t >= next_val or t >= total_steps):
                snapshot = QLearningAgent(disc, learner.values().copy(), names, epsilon=cfg.epsilon.end)
                score = validate(t, snapshot)
                if best is None or score > best[0]:
                    best = (score, snapshot)
                next_val = (t // validate_every + 1) * validate_every
        bar.close()
    finally:
        venv.close()
    agent = QLearningAgent(disc, learner.values().copy(), names, epsilon=cfg.epsilon.end)
    return QTrainResult(agent, episodes, t, best[1] if best is not None else None)
