"""The Agent protocol (what evaluation, benchmarks, replay and training call, whatever the policy is) and what agents' files share.

Agents: ``random_agent.RandomAgent``, ``expert.ExpertAgent``, ``q_learning.QLearningAgent`` and
``sb3.SB3Agent``; ``loader.load_agent`` builds any of them from a spec. Agents' JSON files and the
spaces they store (``space_to_json``) are read here, without pickle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

from drive_sim.files import read_json


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
        ValueError: one line naming the file: missing, too large, not UTF-8 or JSON, too deep, or another kind of agent.
    """
    path = Path(path)
    data = read_json(path, "agent")
    if not isinstance(data, dict) or (kind is not None and data.get("agent") != kind):
        raise ValueError(f"agent: {path} does not hold a {kind or 'drive-sim'} agent")
    return data


#: The most elements a stored space may declare (a 1024 x 1024 RGBA image has 4.2M): a file must not make us allocate gigabytes.
MAX_SPACE_ELEMENTS = 16 * 1024 * 1024
#: The most actions of a stored Discrete space and sub-spaces of a Dict.
MAX_DISCRETE_N = 1_000_000
MAX_DICT_SPACES = 64


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


def space_from_json(d: Any, where: str = "space") -> spaces.Space:
    """Inverse of ``space_to_json``, every field checked (``where`` names the field in messages).

    Raises:
        ValueError: naming the field that is missing, of the wrong type or over a size limit.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: expected a space (a mapping with a type), got {type(d).__name__}")
    kind = d.get("type")
    if kind == "Dict":
        subs = d.get("spaces")
        if not isinstance(subs, Mapping) or not subs or len(subs) > MAX_DICT_SPACES:
            raise ValueError(f"{where}.spaces: expected 1 to {MAX_DICT_SPACES} named spaces")
        return spaces.Dict({str(k): space_from_json(s, f"{where}.spaces.{k}") for k, s in subs.items()})
    if kind == "Discrete":
        n, start = d.get("n"), d.get("start", 0)
        if not _is_int(n) or not 1 <= n <= MAX_DISCRETE_N:
            raise ValueError(f"{where}.n: expected an integer from 1 to {MAX_DISCRETE_N:,}, got {n!r}")
        if not _is_int(start):
            raise ValueError(f"{where}.start: expected an integer, got {start!r}")
        return spaces.Discrete(int(n), start=int(start))
    if kind == "Box":
        shape = d.get("shape")
        if not isinstance(shape, list) or not all(_is_int(k) and k >= 1 for k in shape):
            raise ValueError(f"{where}.shape: expected a list of positive integers, got {shape!r}")
        if math.prod(shape) > MAX_SPACE_ELEMENTS:
            raise ValueError(f"{where}.shape: {shape} has {math.prod(shape):,} elements, more than the {MAX_SPACE_ELEMENTS:,} allowed")
        try:
            dtype = np.dtype(d.get("dtype"))
        except TypeError:
            raise ValueError(f"{where}.dtype: {d.get('dtype')!r} is not a number type") from None
        if dtype.kind not in "uif":
            raise ValueError(f"{where}.dtype: {d.get('dtype')!r} is not a number type")

        def arr(key: str) -> np.ndarray:
            try:
                a = np.asarray(d.get(key), dtype=np.float64)
                return np.broadcast_to(a, tuple(shape)).astype(dtype)
            except (TypeError, ValueError):
                raise ValueError(f"{where}.{key}: expected a number or numbers of shape {shape}") from None

        return spaces.Box(arr("low"), arr("high"), tuple(shape), dtype)
    raise ValueError(f"{where}.type: {kind!r} is not a space type; allowed: Box, Discrete, Dict")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
