"""A finished run's evaluated model into the pretrained zoo (``agents/policies/zoo``), with its entry (``scripts/zoo_add.py``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from agents.policies.zoo import MAX_BYTES, ZooEntry, zoo_folder
from drive_sim.files import copy_file, read_csv, read_json, read_yaml, write_text


def add_to_zoo(run_dir: str | Path, name: str, description: str, command: str, folder: Path | None = None) -> ZooEntry:
    """Copy the model a finished run evaluated into the zoo and record its entry (replacing one of the same name)."""
    run = Path(run_dir)
    folder = folder or zoo_folder()
    cfg = read_yaml(run / "config.yaml", "zoo")
    summary = read_json(run / "eval.json", "zoo")
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
    copy_file(src, folder / entry.file)
    index = folder / "index.yaml"
    data = read_yaml(index, "zoo") if index.is_file() else {}
    data = data or {}
    data[name] = {k: v for k, v in asdict(entry).items() if k != "name"}
    write_text(index, yaml.safe_dump(dict(sorted(data.items())), sort_keys=False))
    return entry


def _first_episode(run: Path) -> dict[str, Any]:
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
