"""Run folders: one folder per run holding everything it wrote, never overwritten; its status and versions."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drive_sim.files import read_json, write_json


def new_run_dir(out_dir: str | Path, name: str) -> Path:
    """Create and return ``out_dir/name`` (or ``name-1``, ``name-2``, ... if taken)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"out_dir: cannot create {out} ({err.strerror})") from None
    for k in range(10_000):
        run = out / (name if k == 0 else f"{name}-{k}")
        try:
            run.mkdir()
            return run
        except FileExistsError:
            continue
    raise ValueError(f"out_dir: too many runs named {name} in {out}")


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a run depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("drive-sim", "gymnasium", "stable-baselines3", "torch", "pybullet", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


#: What ``status.json`` says a run is doing.
STATES = ("running", "interrupted", "finished", "failed")


def read_status(run: Path) -> dict[str, Any]:
    """``status.json`` of a run folder (empty when missing), its fields checked.

    Raises:
        ValueError: one line naming the file and the field.
    """
    path = run / "status.json"
    if not path.is_file():
        return {}
    data = read_json(path, "status")
    if not isinstance(data, dict):
        raise ValueError(f"status: {path} is not a mapping of fields")
    if data.get("state") not in STATES:
        raise ValueError(f"status: {path}: state: {data.get('state')!r} is not one of {', '.join(STATES)}")
    steps = data.get("steps", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"status: {path}: steps: expected a non-negative integer, got {steps!r}")
    if data.get("checkpoint") is not None and not isinstance(data["checkpoint"], str):
        raise ValueError(f"status: {path}: checkpoint: expected a path inside the run or null")
    return data


def set_status(run: Path, state: str, steps: int, checkpoint: str | None, **extra: Any) -> None:
    """Write ``status.json``: state (running, interrupted, finished), steps done, checkpoint to resume from."""
    write_json(run / "status.json", {"state": state, "steps": int(steps), "checkpoint": checkpoint, **extra})


def status_extras(status: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of a status that carry over when it is rewritten (resume count, training wall-clock)."""
    return {k: v for k, v in status.items() if k in ("resumes", "train_wall_s")}
