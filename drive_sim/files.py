"""File helpers shared by every layer."""

from __future__ import annotations

import os


def umask_mode(base: int = 0o666) -> int:
    """``base`` filtered by the process umask: the mode ``open()`` would give a new file (0o777 for a folder).

    Files made through ``tempfile`` (0600, folders 0700) and renamed into place get this mode so
    they look like any other file the user writes.
    """
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask
