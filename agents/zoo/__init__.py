"""The pretrained zoo: small policies shipped inside the package, loadable as ``zoo:NAME``.

``index.yaml`` lists each policy: its file (next to it), the algorithm, the env it drives (id,
observation and action types, env config overrides), the command that trained it and its test
scores. ``add_to_zoo`` copies a finished run's evaluated model in (at most 5 MB, the limit that keeps
the wheel small) and records its entry; the files are ours, and SB3 files load without unpickling
(``agents.sb3.load_model``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

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

    def make_env(self, **kwargs: Any) -> Any:
        """A Gymnasium env this policy drives."""
        import gymnasium as gym

        import envs  # noqa: F401

        extra = {"cfg": self.env_cfg} if self.env_cfg else {}
        return gym.make(self.env_id, obs_type=self.obs_type, action_type=self.action_type, **extra, **kwargs)


def _folder() -> Path:
    return Path(str(resources.files("agents.zoo")))


def zoo_entries(folder: Path | None = None) -> dict[str, ZooEntry]:
    """Every policy in the zoo by name."""
    index = (folder or _folder()) / "index.yaml"
    if not index.is_file():
        return {}
    data = yaml.safe_load(index.read_text(encoding="utf-8")) or {}
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


def load_zoo_agent(name: str) -> Any:
    """The Agent of zoo policy ``name``."""
    entry = zoo_entry(name)
    path = _folder() / entry.file
    if entry.algo == "q":
        from agents.q_learning import QLearningAgent

        return QLearningAgent.load(path)
    from agents.sb3 import SB3Agent

    return SB3Agent.load(path, algo=entry.algo)


def add_to_zoo(run_dir: str | Path, name: str, description: str, command: str, folder: Path | None = None) -> ZooEntry:
    """Copy the model a finished run evaluated into the zoo and record its entry (replacing one of the same name)."""
    run = Path(run_dir)
    folder = folder or _folder()
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    summary = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    src = run / summary["model"]
    if src.stat().st_size > MAX_BYTES:
        raise ValueError(f"zoo: {src} is {src.stat().st_size / 1e6:.1f} MB; zoo models must stay under {MAX_BYTES / 1e6:.1f} MB")
    train = cfg["train"]
    entry = ZooEntry(
        name=name,
        file=f"{name}{src.suffix}",
        algo=train["algo"],
        env_id=cfg["env_id"],
        obs_type=train["obs"],
        action_type=train["action"],
        env_cfg=cfg.get("env") or {},
        description=description,
        command=command,
        results={k: v for k, v in summary.items() if k != "seeds"},
        check_episode=_first_episode(run),
    )
    shutil.copyfile(src, folder / entry.file)
    index = folder / "index.yaml"
    data = yaml.safe_load(index.read_text(encoding="utf-8")) if index.is_file() else {}
    data = data or {}
    data[name] = {k: v for k, v in asdict(entry).items() if k != "name"}
    index.write_text(yaml.safe_dump(dict(sorted(data.items())), sort_keys=False), encoding="utf-8")
    return entry


def _first_episode(run: Path) -> dict[str, Any]:
    from agents.runs import read_csv

    rows = read_csv(run / "eval.csv")
    if not rows:
        return {}
    r = rows[0]
    return {
        "seed": int(r["seed"]),
        "return": float(r["return"]),
        "steps": int(r["steps"]),
        "route_completion": float(r["route_completion"]),
    }
