"""Run folders: one folder per run holding everything it wrote, never overwritten."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


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


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` only once it is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_yaml(path: Path, data: Any) -> None:
    """Atomically write ``data`` as YAML."""
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_json(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    write_text(path, json.dumps(data, indent=2) + "\n")


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
