"""File helpers shared by every layer: whole-file writes that never leave a half-written file, CSV rows.

Everything a run, a benchmark or a report writes goes through ``atomic_write`` (a temporary file in
the same folder, renamed into place once complete), so an interrupted write leaves the old file or
none, never a torn one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def umask_mode(base: int = 0o666) -> int:
    """``base`` filtered by the process umask: the mode ``open()`` would give a new file (0o777 for a folder).

    Files made through ``tempfile`` (0600, folders 0700) and renamed into place get this mode so
    they look like any other file the user writes.
    """
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def check_writable(path: str | Path, what: str = "out") -> Path:
    """``path``'s folder made if missing and shown writable by a probe file (removed), before any work is done.

    Raises:
        ValueError: one line naming ``what`` and the path (a folder under a file, read-only, no space).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(f"{what}: cannot write {path} ({err.strerror or err})") from None
    return path


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` only once it is complete and on disk.

    The temporary file is flushed to the disk (``fsync``) before the rename and the folder after
    it, so a crash or a power cut leaves the old file or the new one. A failed write (a full disk,
    a read-only folder) raises ``OSError`` and leaves ``path`` as it was.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None
    os.close(fd)
    try:
        write(Path(tmp))
        sync_file(Path(tmp))
        os.chmod(tmp, umask_mode())  # mkstemp makes 0600
        os.replace(tmp, path)
        sync_folder(path.parent)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None  # named by the file meant, not the temporary one
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def sync_file(path: Path) -> None:
    """Flush a written file to the disk (``fsync``); errors a write deferred (a full disk) surface here."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to the disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not sync folders
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_yaml(path: Path, data: Any) -> None:
    """Atomically write ``data`` as YAML."""
    import yaml

    write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_json(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    write_text(path, json.dumps(data, indent=2) + "\n")


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
