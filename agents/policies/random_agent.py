"""The random baseline: uniformly random actions from an action space, from its own seeded generator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from agents.policies.base import read_agent_json, space_from_json, space_to_json
from drive_sim.files import write_text


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
        write_text(Path(path), json.dumps({"agent": "random", "seed": self.seed, "action_space": space_to_json(self.action_space)}))

    @classmethod
    def load(cls, path: str | Path) -> RandomAgent:
        """Read what ``save`` wrote."""
        data = read_agent_json(path, "random")
        seed = data.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"agent: {path}: seed: expected a non-negative integer, got {seed!r}")
        try:
            space = space_from_json(data.get("action_space"), "action_space")
        except ValueError as err:
            raise ValueError(f"agent: {path}: {err}") from None
        if not isinstance(space, (spaces.Discrete, spaces.Box)):
            raise ValueError(f"agent: {path}: action_space: a random agent draws from a Box or Discrete space")
        return cls(space, seed)
