"""The Agent protocol: what benchmarks, replay and training call, whatever the policy is.

Adapters: ``agents.sb3.SB3Agent`` (PPO, DQN, SAC), ``agents.q_learning.QLearningAgent``,
``agents.expert.ExpertAgent`` and ``RandomAgent`` here; ``load_agent`` builds any of them from a
name (``zoo:NAME``, ``expert``, ``random``) or a model file.
"""

from __future__ import annotations

import json
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


class RandomAgent:
    """Uniformly random actions from an action space, drawn from its own seeded generator.

    ``save`` writes the space and the seed as JSON so a benchmark can name the baseline like any policy.
    """

    def __init__(self, action_space: Any, seed: int = 0) -> None:
        self.action_space = action_space
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)

    def reset(self) -> None:
        """Nothing to forget (the generator runs on across episodes)."""

    def reseed(self, episode_seed: int) -> None:
        """Restart the generator from (agent seed, ``episode_seed``).

        An episode's actions then depend on its own seed only, whatever ran before it (the
        benchmark's resumable, parallel grid).
        """
        self._rng = np.random.default_rng([self.seed, int(episode_seed)])

    def act(self, obs: Any, deterministic: bool = True) -> Any:
        """A random action (``deterministic`` has no meaning for a random policy)."""
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            return int(space.start + self._rng.integers(space.n))
        if isinstance(space, spaces.Box):
            return self._rng.uniform(space.low, space.high).astype(space.dtype)
        raise ValueError(f"RandomAgent: unsupported action space {space}")

    def save(self, path: str | Path) -> None:
        """Write the action space and the seed as JSON."""
        from agents.sb3 import space_to_json

        Path(path).write_text(json.dumps({"agent": "random", "seed": self.seed, "action_space": space_to_json(self.action_space)}))

    @classmethod
    def load(cls, path: str | Path) -> RandomAgent:
        """Read what ``save`` wrote."""
        from agents.sb3 import space_from_json

        data = _read_json(path, "random")
        return cls(space_from_json(data["action_space"]), int(data["seed"]))


def _read_json(path: str | Path, kind: str | None) -> dict[str, Any]:
    """A JSON agent file, checked to hold ``kind`` (any kind when None)."""
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


def load_agent(spec: str, env: Any = None, *, seed: int = 0) -> Agent:
    """The agent named by ``spec``.

    ``zoo:NAME`` (a pretrained policy shipped in ``agents/zoo``), ``expert`` and ``random`` (both
    built for ``env``), or a file: ``.zip`` (SB3, read without unpickling), ``.npz`` (Q table),
    ``.json`` (expert or random settings).

    Raises:
        ValueError: one line naming the spec and what is allowed.
    """
    if spec.startswith("zoo:"):
        from agents.zoo import load_zoo_agent

        return load_zoo_agent(spec[4:])
    if spec in ("expert", "random"):
        if env is None:
            raise ValueError(f"agent: {spec!r} is built for an env; pass the env it will drive")
        if spec == "random":
            return RandomAgent(env.action_space, seed)
        from agents.expert import ExpertAgent

        return ExpertAgent.for_env(env)
    path = Path(spec)
    if path.suffix == ".zip":
        from agents.sb3 import SB3Agent

        return SB3Agent.load(path)
    if path.suffix == ".npz":
        from agents.q_learning import QLearningAgent

        return QLearningAgent.load(path)
    if path.suffix == ".json":
        from agents.expert import ExpertAgent

        loaders = {"random": RandomAgent.load, "expert": ExpertAgent.load}
        data = _read_json(path, None)
        if data.get("agent") not in loaders:
            raise ValueError(f"agent: {path} names agent {data.get('agent')!r}; allowed: {', '.join(loaders)}")
        return loaders[data["agent"]](path)
    raise ValueError(f"agent: {spec!r} is not known; allowed: zoo:NAME, expert, random, or a .zip, .npz or .json model file")
