"""The pretrained zoo: small policies shipped inside the package, loadable as ``zoo:NAME``.

``index.yaml`` lists each policy: its file (next to it), the algorithm, the env it drives (id,
observation and action types, env config overrides), the command that trained it and its test
scores. ``agents.policies.loader.load_agent("zoo:NAME")`` loads one (SB3 files without unpickling);
``agents.training.publish.add_to_zoo`` copies a finished run's evaluated model in (at most
``MAX_BYTES``, the limit that keeps the wheel small) and records its entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from agents.policies.base import AgentEnv
from drive_sim.files import read_yaml

MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class ZooEntry:
    """One pretrained policy.

    Attributes:
        name: what follows ``zoo:``.
        file: model file in this folder (``.zip`` SB3, ``.npz`` Q table).
        algo: ``ppo``, ``dqn``, ``sac`` or ``q``.
        env_id: the registered env it was trained on.
        obs_type: its observation type.
        action_type: its action type.
        env_cfg: env config overrides it needs (e.g. the discrete steering values).
        description: one line.
        command: the command that trained it.
        results: the final test summary of its run (seeds 0, 1, ...).
        check_episode: its run's test episode on seed 0 (a regression test replays it).
    """

    name: str
    file: str
    algo: str
    env_id: str
    obs_type: str
    action_type: str
    env_cfg: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    command: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    check_episode: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """The model file."""
        return zoo_folder() / self.file

    @property
    def env(self) -> AgentEnv:
        """The env this policy drives."""
        return AgentEnv(self.env_id, self.obs_type, self.action_type, self.env_cfg)

    def make_env(self, **kwargs: Any) -> Any:
        """A Gymnasium env this policy drives."""
        return self.env.make(**kwargs)


def zoo_folder() -> Path:
    """The folder the zoo's index and files ship in."""
    return Path(str(resources.files("agents.policies.zoo")))


def zoo_entries(folder: Path | None = None) -> dict[str, ZooEntry]:
    """Every policy in the zoo by name."""
    index = (folder or zoo_folder()) / "index.yaml"
    if not index.is_file():
        return {}
    data = read_yaml(index, "zoo") or {}
    return {name: ZooEntry(name=name, **entry) for name, entry in data.items()}


def zoo_entry(name: str) -> ZooEntry:
    """The entry called ``name``.

    Raises:
        ValueError: naming the known policies.
    """
    entries = zoo_entries()
    if name not in entries:
        raise ValueError(f"agent: zoo:{name} is not in the zoo; known: {', '.join('zoo:' + n for n in sorted(entries)) or 'none'}")
    return entries[name]
