"""Run folders: one folder per run holding everything it wrote, never overwritten."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from drive_sim.files import umask_mode


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
        os.chmod(tmp, umask_mode())  # mkstemp makes 0600
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


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Atomically write ``rows`` (dicts with the same keys) as CSV; nothing when there are none."""
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def append_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``rows`` to a CSV log (header written when the file is new)."""
    if not rows:
        return
    new = not path.is_file()
    with path.open("a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts of strings (empty when the file is missing)."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def read_status(run: Path) -> dict[str, Any]:
    """``status.json`` of a run folder (empty when missing)."""
    path = run / "status.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ValueError(f"status: {path} is not valid JSON") from None


def set_status(run: Path, state: str, steps: int, checkpoint: str | None, **extra: Any) -> None:
    """Write ``status.json``: state (running, interrupted, finished), steps done, checkpoint to resume from."""
    write_json(run / "status.json", {"state": state, "steps": int(steps), "checkpoint": checkpoint, **extra})


def status_extras(status: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of a status that carry over when it is rewritten (resume count, training wall-clock)."""
    return {k: v for k, v in status.items() if k in ("resumes", "train_wall_s")}
