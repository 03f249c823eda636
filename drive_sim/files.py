"""File helpers shared by every layer: whole-file writes that never leave a half-written file, bounded reads, CSV rows.

Everything a run, a benchmark or a report writes goes through ``atomic_write`` (a temporary file in
the same folder, flushed to the disk, renamed into place once complete), so an interrupted write
leaves the old file or none, never a torn one.

Everything read from a file a user can hand over (configs, scenario files, agent and model
metadata, episode logs) goes through ``read_text``/``read_json``/``read_yaml``: a size cap, UTF-8 or
an error that names the file, a nesting-depth cap, and for YAML no aliases (an alias bomb expands a
few kilobytes into gigabytes). Each refusal is one ``ValueError`` line naming the file and the limit.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
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


#: Caps on what a user's file may hold.
MAX_TEXT_BYTES = 8 * 1024 * 1024  # configs, scenario files, agent JSON (the shipped ones are a few kB)
MAX_DEPTH = 64  # nesting of mappings and lists


def read_text(path: str | Path, what: str, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A UTF-8 text file of at most ``max_bytes``; every refusal is one line naming ``what`` and the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"{what}: {path} is {size / 2**20:.1f} MiB, more than the {max_bytes / 2**20:.0f} MiB such a file may have")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{what}: {path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{what}: {path} is a folder, not a file") from None
    except OSError as err:
        raise ValueError(f"{what}: cannot read {path} ({err.strerror or err})") from None
    return decode_text(data, path, what)


def decode_text(data: bytes, where: str | Path, what: str) -> str:
    """``data`` as UTF-8, or one line naming where it came from and the byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{what}: {where} is not UTF-8 text (byte {err.start})") from None


def loads_json(text: str, where: str | Path, what: str) -> Any:
    """JSON text parsed, nesting capped at ``MAX_DEPTH``; one line naming where it came from otherwise."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what}: {where} is nested too deeply (more than {MAX_DEPTH} levels)") from None
    except ValueError as err:
        raise ValueError(f"{what}: {where} is not valid JSON ({err})") from None
    if _depth(data) > MAX_DEPTH:
        raise ValueError(f"{what}: {where} is nested too deeply (more than {MAX_DEPTH} levels)")
    return data


def read_json(path: str | Path, what: str, *, max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """A JSON file through ``read_text`` and ``loads_json``."""
    return loads_json(read_text(path, what, max_bytes=max_bytes), path, what)


def read_yaml(path: str | Path, what: str, *, max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """A YAML file through ``read_text`` and ``loads_yaml``."""
    return loads_yaml(read_text(path, what, max_bytes=max_bytes), path, what)


def loads_yaml(text: str, where: str | Path, what: str, *, ordered_dicts: bool = False) -> Any:
    """YAML text parsed safely: no aliases, nesting capped at ``MAX_DEPTH``; one line naming where and why otherwise.

    ``ordered_dicts`` also reads ``!!python/object/apply:collections.OrderedDict`` (what ``yaml.dump``
    writes for an OrderedDict, as rl-zoo3's run files hold) as a plain dict: the one Python tag
    read, and without running anything.
    """
    import yaml

    try:
        return yaml.load(text, Loader=_bounded_loader(ordered_dicts))  # a SafeLoader subclass
    except _Refused as err:
        raise ValueError(f"{what}: {where}: line {err.line}: {err.reason}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f": line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{what}: {where}{line} is not valid YAML") from None


class _Refused(Exception):
    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


def _bounded_loader(ordered_dicts: bool = False) -> type:
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that refuses aliases and deep nesting while it composes (before anything is expanded)."""

        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise _Refused(f"YAML aliases (*{event.anchor}) are not read; write the value out", event.start_mark.line + 1)
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise _Refused(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark.line + 1)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    if ordered_dicts:

        def ordered(loader: Any, node: Any) -> dict[Any, Any]:
            args = loader.construct_sequence(node, deep=True)
            pairs = args[0] if args else []
            if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise _Refused("an OrderedDict that is not a list of key, value pairs", node.start_mark.line + 1)
            return {k: v for k, v in pairs}

        BoundedLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", ordered)
    return BoundedLoader


def _depth(data: Any, level: int = 0) -> int:
    """Nesting depth of parsed JSON (iterative: a deep document must not recurse here either)."""
    deepest, stack = level, [(data, level)]
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > MAX_DEPTH:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)
    return deepest


def portable(path: str | Path, parent: str = "results") -> str:
    """``path`` as a page shows it, never naming a folder of the machine that wrote it.

    Relative as given, relative to the working folder when inside it, relative to the project's
    folder when inside that (a file shipped in the package: ``perception/weights/net84.pt``), else
    ``<parent>/<name>``.
    """
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            continue
    return f"{parent}/{p.name}"


def write_image(path: Path, rgb: Any) -> None:
    """Atomically write an (H, W, 3) uint8 RGB image (PNG or JPEG by the name); OpenCV's silent failure is an error."""
    import cv2

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), rgb[..., ::-1]):
            raise OSError(errno.EIO, "the image could not be written", str(path))

    atomic_write(path, write)


def copy_file(src: Path, dst: Path) -> None:
    """Atomically copy ``src`` to ``dst``."""
    atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


def check_writable(path: str | Path, what: str = "out") -> Path:
    """``path``'s folder made if missing and shown writable by a probe file (removed), before any work is done.

    Raises:
        ValueError: one line naming ``what`` and the path (a folder under a file, read-only, no space).
    """
    path = Path(path)
    blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ValueError(f"{what}: cannot write {path} ({blocked} is a file, not a folder)")
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


#: The timestamp written into every member of an ``.npz`` (zip's earliest), so the same arrays give the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(path: Path, arrays: Mapping[str, Any], *, level: int = 6) -> None:
    """Write ``arrays`` as a compressed ``.npz`` that ``numpy.load(allow_pickle=False)`` reads, atomically.

    Unlike ``numpy.savez_compressed``, which stamps each member with the current time, every member
    gets a fixed timestamp and the members keep the mapping's order: the same arrays give
    byte-identical files (datasets are compared by hash). Object arrays are refused (no pickle).
    """
    import zipfile

    import numpy as np

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
            for name, value in arrays.items():
                a = np.asarray(value)
                if a.dtype.hasobject:
                    raise ValueError(f"{path}: array {name!r} holds Python objects; only numeric arrays are written")
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue(), compresslevel=level)

    atomic_write(path, write)


def read_npz(path: Path, what: str, required: Sequence[str] = ()) -> dict[str, Any]:
    """All arrays of an ``.npz``, read without pickle.

    Raises:
        ValueError: one line naming the file when it is missing, not a readable ``.npz``
            (truncated, damaged, holding pickled objects) or lacks one of ``required``.
    """
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ValueError(f"{what}: {path} does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(
            f"{what}: {path} is not a readable .npz ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'truncated'})"
        ) from None
    missing = [k for k in required if k not in out]
    if missing:
        raise ValueError(f"{what}: {path} lacks {', '.join(missing)}")
    return out
