"""One process-pool helper for work split into independent, seeded jobs (benchmark episodes, videos, the expert table).

Workers die with the process that started them, SIGKILL included: a killed ``drive-sim bench`` must
not leave workers behind that go on appending rows to a folder a re-run is already filling.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

#: How often a worker checks that its parent still lives [s] (where the kernel cannot tell it).
PARENT_POLL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when ``parent_pid`` ends.

    On Linux the kernel sends SIGKILL the moment the parent dies (``PR_SET_PDEATHSIG``); a daemon
    thread also polls the parent id, for other systems and for a parent that died before the
    request was made (the worker is then reparented and ``getppid`` changes).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def pool_map(
    fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], workers: int, on_result: Callable[[Any], None] | None = None
) -> list[Any]:
    """``fn(*job)`` for every job, results in job order.

    In this process (one worker) or in a pool of ``workers`` spawned processes that die with this
    one (``die_with_parent``); ``on_result(result)`` runs here as each job ends (progress bars).
    ``fn`` must be importable by name (a module-level function) for the spawned workers.
    """
    results: list[Any] = [None] * len(jobs)
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            results[i] = fn(*job)
            if on_result is not None:
                on_result(results[i])
        return results
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(
        min(workers, len(jobs)), mp_context=mp.get_context("spawn"), initializer=die_with_parent, initargs=(os.getpid(),)
    ) as pool:
        futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if on_result is not None:
                on_result(results[futures[fut]])
    return results
