"""The Agent protocol: what benchmarks, replay and training call, whatever the policy is."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


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
