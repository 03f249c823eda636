"""One process-pool helper for work split into independent, seeded jobs (benchmark episodes, videos, the expert table)."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import Any


def pool_map(
    fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], workers: int, on_result: Callable[[Any], None] | None = None
) -> list[Any]:
    """``fn(*job)`` for every job, results in job order.

    In this process (one worker) or in a pool of ``workers`` spawned processes; ``on_result(result)``
    runs here as each job ends (progress bars). ``fn`` must be importable by name (a module-level function) for the spawned workers.
    """
    results: list[Any] = [None] * len(jobs)
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            results[i] = fn(*job)
            if on_result is not None:
                on_result(results[i])
        return results
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if on_result is not None:
                on_result(results[futures[fut]])
    return results
