"""PyBullet access that keeps the terminal clean.

PyBullet's C extension writes ``pybullet build time: ...`` to stderr when it is imported and
``argv[0]=`` when a client connects, straight to the file descriptors, where
``contextlib.redirect_stdout`` cannot catch it. The project promises that nothing prints at
import time, so both happen here with descriptors 1 and 2 briefly pointed at ``/dev/null``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator
from typing import Any


def _libc_fflush() -> None:
    """Flush C stdio buffers so text the extension printed lands in /dev/null, not later."""
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL(None)  # once: each CDLL() makes new function objects
        _LIBC.fflush(None)
    except (OSError, AttributeError):  # no C library to flush (unusual platforms)
        pass


_LIBC: Any = None


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = [(fd, os.dup(fd)) for fd in (1, 2)]
    try:
        for fd, _ in saved:
            os.dup2(devnull, fd)
        yield
    finally:
        _libc_fflush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


with _quiet_fds():
    import pybullet as pb
    from pybullet_utils.bullet_client import BulletClient


# PyBullet 3.2.7 keeps references to the sequences it is given for shapes (createVisualShape,
# createCollisionShape, createVisualShapeArray): after a call the vertex list, each vertex and the
# index list each hold two more references, so a fresh list per call is never freed (measured: 5.6 MB
# per Highway-v0 env created and closed, 334 MB over 60 cycles). Handing PyBullet the same list
# objects for the same geometry turns that into reference counts on objects that live anyway, so
# memory stays flat over any number of worlds of the same scenarios. Distinct geometry still costs
# what PyBullet keeps; the cache holds at most ``_ARGS_MAX`` of them.
_ARGS: dict[bytes, Any] = {}
_ARGS_MAX = 50_000


def shared_args(value: Any) -> Any:
    """``value`` (an array or nested lists of numbers) as nested lists, the same objects for the same numbers."""
    import hashlib

    import numpy as np

    a = np.asarray(value)
    h = hashlib.blake2b(repr((a.shape, a.dtype.str)).encode(), digest_size=16)
    h.update(a.tobytes())
    key = h.digest()
    args = _ARGS.get(key)
    if args is None:
        args = a.tolist()
        if len(_ARGS) >= _ARGS_MAX:
            _ARGS.pop(next(iter(_ARGS)))
        _ARGS[key] = args
    return args


def connect_direct() -> Any:
    """Return a new DIRECT-mode ``BulletClient`` (its own physics server, no window)."""
    with _quiet_fds():
        return BulletClient(connection_mode=pb.DIRECT)


def static_body(client: Any, collision: int, visual: int, position: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> int:
    """A mass-0 body (scenery, the ground, a kinematic traffic car) as a static Bullet rigid body.

    ``useMaximalCoordinates`` makes it a plain ``btRigidBody``: the default, a fixed-base
    ``btMultiBody``, still goes through Featherstone's per-body forward dynamics in every
    ``stepSimulation``. With ~100 scenery and traffic bodies that raised a camera env step's
    physics time by about a third (measured, docs/design.md "Camera throughput"). Contacts,
    ray tests, collision filters and rendering treat both kinds the same.
    """
    return client.createMultiBody(
        baseMass=0, baseCollisionShapeIndex=collision, baseVisualShapeIndex=visual, basePosition=list(position), useMaximalCoordinates=True
    )


__all__ = ["BulletClient", "connect_direct", "pb", "static_body"]
