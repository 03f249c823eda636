"""The Agent protocol (what evaluation, benchmarks, replay and training call, whatever the policy is) and what agents' files share.

Agents: ``random_agent.RandomAgent``, ``expert.ExpertAgent``, ``q_learning.QLearningAgent`` and
``sb3.SB3Agent``; ``loader.load_agent`` builds any of them from a spec. Agents' JSON files and the
spaces they store (``space_to_json``) are read here, without pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces


@runtime_checkable
class Agent(Protocol):
    """A policy for one environment.

    ``act`` maps one observation to one action of the environment's action space; ``reset``
    is called at the start of every episode (agents with memory clear it); ``save``/``load``
    write and read the agent's parameters (no pickle).
    """

    def act(self, obs: Any, deterministic: bool = True) -> Any:
        """The action for ``obs``."""
        ...

    def reset(self) -> None:
        """Start of an episode."""
        ...

    def save(self, path: str | Path) -> None:
        """Write the agent to ``path``."""
        ...

    @classmethod
    def load(cls, path: str | Path) -> Agent:
        """Read an agent written by ``save``."""
        ...


@dataclass(frozen=True)
class AgentEnv:
    """The env an agent drives: a registered id with the observation and action types it reads and writes.

    Attributes:
        env_id: registered id (``DriveSim/Highway-v0``).
        obs_type: observation type.
        action_type: action type.
        env_cfg: env config overrides it needs (``gym.make(..., cfg=env_cfg)``), e.g. discrete steering values.
    """

    env_id: str
    obs_type: str
    action_type: str
    env_cfg: Mapping[str, Any] = field(default_factory=dict)

    def make_kwargs(self) -> dict[str, Any]:
        """``gym.make`` keyword arguments besides the id."""
        extra = {"cfg": dict(self.env_cfg)} if self.env_cfg else {}
        return {"obs_type": self.obs_type, "action_type": self.action_type, **extra}

    def make(self, **kwargs: Any) -> Any:
        """A new Gymnasium env (``kwargs``: more ``gym.make`` arguments, such as ``render_mode``)."""
        import gymnasium as gym

        import envs  # noqa: F401  (registers the ids)

        return gym.make(self.env_id, **self.make_kwargs(), **kwargs)


def read_agent_json(path: str | Path, kind: str | None) -> dict[str, Any]:
    """A JSON agent file (``{"agent": KIND, ...}``), checked to hold ``kind`` (any kind when None).

    Raises:
        ValueError: one line naming the file: missing, not JSON, or another kind of agent.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"agent: {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"agent: {path} is not valid JSON (truncated?)") from None
    if not isinstance(data, dict) or (kind is not None and data.get("agent") != kind):
        raise ValueError(f"agent: {path} does not hold a {kind} agent")
    return data


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A Box, Discrete or Dict space as plain JSON (uniform bounds stored once)."""
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):

        def bound(a: np.ndarray) -> Any:
            flat = a.reshape(-1)
            v = flat[0].item() if flat.size else 0
            return v if np.all(flat == flat[0]) else a.tolist()

        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype), "low": bound(space.low), "high": bound(space.high)}
    raise ValueError(f"model: cannot store a {type(space).__name__} space")


def space_from_json(d: Mapping[str, Any]) -> spaces.Space:
    """Inverse of ``space_to_json``."""
    kind = d.get("type")
    if kind == "Dict":
        return spaces.Dict({k: space_from_json(s) for k, s in d["spaces"].items()})
    if kind == "Discrete":
        return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
    if kind == "Box":
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(n) for n in d["shape"])

        def arr(v: Any) -> np.ndarray:
            return np.broadcast_to(np.asarray(v, dtype=np.float64), shape).astype(dtype)

        return spaces.Box(arr(d["low"]), arr(d["high"]), shape, dtype)
    raise ValueError(f"model: unknown space type {kind!r}")
