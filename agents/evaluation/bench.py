"""Benchmark grid: agents x scenarios x seeds, one row per episode, resumable, on a process pool or Ray.

    run_bench(BenchConfig(agents=("expert", "zoo:ppo-highway-lidar"), scenarios=("highway",), episodes=50))

Work is split into tasks of one agent on one scenario: single episodes on the local pool (each
worker keeps the agent and env of the cell it drove last), chunks of 5 on Ray. A worker drives its
episodes with ``agents.evaluation.episodes.run_episode`` (every episode is seeded by its own seed, so
rows do not depend on the worker count, task size or backend); a row is the episode's
``EpisodeSummary`` (``agents.evaluation.metrics``). Every finished episode is
appended to ``episodes.csv`` with one write of a whole line (local workers write it themselves;
Ray tasks stream their rows back to this process), so an interrupted run loses no finished
episode, and a re-run skips the episodes already there (a torn last line is dropped).
``bench.json`` holds the grid: a folder that holds another grid's rows is refused. An agent that
does not fit a scenario (fails on the first step) is skipped with the reason. ``film_worst``
films the worst episodes of each cell again from their seeds (``agents.evaluation.replay.film_agent``).
``agents.evaluation.bench_report`` turns the rows into per-cell aggregates and ``report.md``.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agents.evaluation.metrics import MEASURES, read_row
from agents.policies.foreign import quiet_pickle_warnings
from drive_sim.config import require
from drive_sim.files import read_json, write_json, write_text

CHUNK = 5
BACKENDS = ("local", "ray")
KEY = ("agent", "env_id", "seed")
#: episodes.csv: the key, the status, an episode's measures (``EpisodeSummary.row()``), the reason for a skip.
COLUMNS = (*KEY, "status", *MEASURES, "reason")


@dataclass(frozen=True)
class BenchConfig:
    """The grid and how to run it.

    Attributes:
        agents: agent specs (``zoo:NAME``, a model file, ``expert``, ``random``).
        scenarios: scenario names or ids; ``("all",)`` is every registered scenario.
        episodes: evaluation seeds per scenario, from ``seed_start`` (test seeds are 0-99).
        seed_start: first seed.
        workers: worker processes (default: all cores); with a local Ray, its CPUs.
        out: the output folder.
        backend: ``local`` (a process pool) or ``ray`` (Ray tasks).
        address: the Ray cluster to join (``auto``, ``ray://host:10001``); none: start a local one.
        allow_pickle: load agents whose files run code when loaded (standard SB3 zips, rl-zoo3 runs).
    """

    agents: tuple[str, ...]
    scenarios: tuple[str, ...] = ("all",)
    episodes: int = 50
    seed_start: int = 0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    out: str = "results"
    backend: str = "local"
    address: str | None = None
    allow_pickle: bool = False

    def __post_init__(self) -> None:
        require(len(self.agents) > 0, "agents", "name at least one agent")
        require(len(self.scenarios) > 0, "scenarios", "name at least one scenario, or all")
        require(self.episodes >= 1, "episodes", f"must be at least 1, got {self.episodes}")
        require(self.seed_start >= 0, "seed_start", f"must be non-negative, got {self.seed_start}")
        require(self.workers >= 1, "workers", f"must be at least 1, got {self.workers}")
        require(self.backend in BACKENDS, "backend", f"{self.backend!r} is not allowed; allowed: {', '.join(BACKENDS)}")
        require(self.address is None or self.backend == "ray", "address", "only with backend ray")


def scenario_ids(names: Sequence[str]) -> list[str]:
    """Env ids of ``names`` (``all``: every registered scenario except the custom-file id)."""
    import envs

    if tuple(names) == ("all",):
        return [k for k in envs.ENV_IDS if k != "DriveSim/Custom-v0"]
    return [envs.env_id(n) for n in names]


def grid(cfg: BenchConfig) -> dict[str, Any]:
    """What identifies a benchmark's rows (kept in ``bench.json``)."""
    return {"agents": list(cfg.agents), "env_ids": scenario_ids(cfg.scenarios), "seeds": [cfg.seed_start, cfg.seed_start + cfg.episodes]}


def chunks(cfg: BenchConfig, done: set[tuple[str, str, int]], size: int = CHUNK) -> list[tuple[str, str, list[int]]]:
    """(agent, env id, seeds) tasks of up to ``size`` episodes for the episodes not yet in ``done``."""
    g = grid(cfg)
    out = []
    for agent in g["agents"]:
        for eid in g["env_ids"]:
            seeds = [s for s in range(*g["seeds"]) if (agent, eid, s) not in done]
            out.extend((agent, eid, seeds[i : i + size]) for i in range(0, len(seeds), size))
    return out


# This process's agent and env for the last (agent, scenario) it drove: the next task of the same
# cell reuses them, so tasks can be single episodes (the pool's load stays balanced to the last
# episode) without loading a model and building a world per episode. Rows do not depend on it:
# every episode starts from reset(seed) and agent.reset() (and reseed for the random baseline).
_CELL: dict[str, Any] = {}


def _cell(agent_spec: str, env_id: str, allow_pickle: bool = False) -> tuple[Any, Any]:
    from agents.policies.loader import resolve_agent

    if _CELL.get("key") != (agent_spec, env_id):
        release_cell()
        _one_thread()
        with quiet_pickle_warnings():  # the command warned once, before the grid started
            agent, target = resolve_agent(agent_spec, env_id, allow_pickle=allow_pickle)
        _CELL.update(key=(agent_spec, env_id), agent=agent, env=target.make())
    return _CELL["agent"], _CELL["env"]


def _one_thread() -> None:
    """One torch thread in this process: the grid runs in parallel across episodes, not inside a network.

    On 2 cores, torch's default of one thread per core in each worker spins against the other worker.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = "1"  # torch reads it when it is imported
    else:
        torch.set_num_threads(1)


def release_cell() -> None:
    """Close the env this process keeps for the last cell it drove."""
    env = _CELL.get("env")
    _CELL.clear()
    if env is not None:
        env.close()


def iter_chunk(agent_spec: str, env_id: str, seeds: Sequence[int], allow_pickle: bool = False) -> Iterator[dict[str, Any]]:
    """Drive the episodes of one chunk, yielding one row as each ends (status ``ok``, or ``skipped`` with the reason)."""
    from agents.evaluation.episodes import AgentDoesNotFit, run_episode

    def skipped(reason: str) -> Iterator[dict[str, Any]]:
        for s in seeds:
            yield {"agent": agent_spec, "env_id": env_id, "seed": int(s), "status": "skipped", "reason": reason}

    try:
        agent, env = _cell(agent_spec, env_id, allow_pickle)
    except (ValueError, OSError) as err:
        yield from skipped(str(err))
        return
    for seed in seeds:
        try:
            summary = run_episode(env, agent, int(seed))
        except AgentDoesNotFit as err:
            yield from skipped(f"does not fit {env_id}: {err}")
            return
        yield {"agent": agent_spec, "env_id": env_id, "seed": int(seed), "status": "ok", "reason": "", **summary.row()}


def run_chunk(
    agent_spec: str, env_id: str, seeds: Sequence[int], rows_path: str | None = None, allow_pickle: bool = False
) -> list[dict[str, Any]]:
    """``iter_chunk``'s rows as a list.

    With ``rows_path`` each row is also appended there as soon as its episode ends, so a run killed
    mid-chunk keeps every finished episode.
    """
    rows = []
    for row in iter_chunk(agent_spec, env_id, seeds, allow_pickle):
        if rows_path is not None:
            append_row(Path(rows_path), row)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- rows on disk
def read_rows(path: Path) -> list[dict[str, str]]:
    """The sound rows of ``episodes.csv``, each (agent, scenario, seed) once.

    Dropped: a torn last line (an interrupted or failed write), any line that does not parse as a
    row of ``COLUMNS`` (a fragment another write was appended to), and repeats of an episode (the
    first row counts). ``repair_rows`` rewrites the file without them.
    """
    return _scan_rows(path)[0]


def _scan_rows(path: Path) -> tuple[list[dict[str, str]], int]:
    """The sound rows and how many lines were dropped (torn, unparsable or repeated)."""
    if not path.is_file():
        return [], 0
    text = path.read_bytes().decode("utf-8", errors="replace")
    if "\n" not in text:  # not even a whole header: nothing, or a torn header
        return [], int(bool(text))
    lines = text.split("\n")
    if lines[0] != ",".join(COLUMNS):
        raise ValueError(f"out: {path} has other columns (written by another drive-sim version); choose another folder")
    dropped = 1 if lines[-1] else 0  # the text after the last newline: a torn line
    rows: list[dict[str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for line in lines[1:-1]:
        row = _parse_row(line)
        key = None if row is None else (row["agent"], row["env_id"], row["seed"])
        if row is None or key in seen:
            dropped += 1
            continue
        seen.add(key)
        rows.append(row)
    return rows, dropped


def _parse_row(line: str) -> dict[str, str] | None:
    """One CSV line as a row of ``COLUMNS``, or None when it is not one (wrong field count, bad seed, bad numbers)."""
    fields = next(csv.reader([line]), [])
    if len(fields) != len(COLUMNS):
        return None
    row = dict(zip(COLUMNS, fields, strict=True))
    try:
        int(row["seed"])
        if row["status"] == "ok":
            read_row(row)
        elif row["status"] != "skipped":
            return None
    except ValueError:
        return None
    return row


def repair_rows(path: Path) -> int:
    """Rewrite ``episodes.csv`` without what ``read_rows`` drops (atomically); returns how many lines went.

    Run before appending: a row appended after a torn line would otherwise join it.
    """
    rows, dropped = _scan_rows(path)
    if dropped:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(path, buf.getvalue())
    return dropped


def append_row(path: Path, row: dict[str, Any] | None) -> None:
    """Append one row with a single ``write`` of the whole line (``None``: the header line)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    if row is None:
        writer.writeheader()
    else:
        writer.writerow({k: row.get(k, "") for k in COLUMNS})  # str(float) round-trips (inf and nan too)
    data = buf.getvalue().encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if os.write(fd, data) != len(data):  # a regular file writes short only when it cannot write (full disk)
            raise OSError(errno.ENOSPC, "a row was written only in part", str(path))
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None  # the message names the file
    finally:
        os.close(fd)


def check_folder(cfg: BenchConfig) -> None:
    """Refuse, writing nothing, a folder that holds another grid's rows or rows of other columns."""
    out = Path(cfg.out)
    g = grid(cfg)  # unknown scenarios fail here
    meta_path = out / "bench.json"
    if meta_path.is_file():
        try:
            old = read_json(meta_path, "out")
        except ValueError:
            raise ValueError(f"out: {meta_path} is not readable; choose another folder") from None
        if not isinstance(old, dict) or old.get("grid") != g:
            raise ValueError(f"out: {out} holds another benchmark's rows (a different grid in {meta_path}); choose another folder")
    elif (out / "episodes.csv").exists():
        raise ValueError(f"out: {out} holds episodes.csv but no bench.json; choose another folder")
    _scan_rows(out / "episodes.csv")  # other columns: refused


#: The lock file of a bench folder: held (flock) by the one process writing there; the kernel drops it when that process ends.
LOCK_NAME = ".bench.lock"
_HELD: dict[str, int] = {}


@contextmanager
def folder_lock(out: str | Path) -> Iterator[None]:
    """Hold ``out``'s bench lock (re-entrant in this process); another process holding it is one line.

    ``flock`` ends with its process, SIGKILL included, so a killed run never leaves the folder stuck.
    """
    folder = Path(out)
    key = str(folder.resolve())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = open(folder / LOCK_NAME, "a+", encoding="utf-8")
    except OSError as err:
        raise ValueError(f"out: cannot write in {folder} ({err.strerror})") from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "?"
            raise ValueError(
                f"out: {folder} is in use by another drive-sim bench (pid {pid}); let it finish or choose another folder"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]


def _prepare(cfg: BenchConfig) -> tuple[Path, set[tuple[str, str, int]]]:
    """Under the folder's lock: ``bench.json`` written for a new folder, the rows repaired; returns the episodes done."""
    out = Path(cfg.out)
    meta_path = out / "bench.json"
    if not meta_path.is_file():
        write_json(meta_path, {"grid": grid(cfg), "config": asdict(cfg)})
    rows_path = out / "episodes.csv"
    # A row appended after a torn line would join it: the rows are settled before anything is appended.
    dropped = repair_rows(rows_path)
    if dropped:
        print(f"bench: {rows_path}: dropped {dropped} torn, damaged or repeated line(s); those episodes run again", file=sys.stderr)
    done = {(r["agent"], r["env_id"], int(r["seed"])) for r in read_rows(rows_path)}
    return out, done


def check_bench(cfg: BenchConfig) -> None:
    """Everything that can refuse a grid, before anything is written: unknown agents, unreadable models, a missing Ray, the folder."""
    from agents.policies.loader import check_agent

    for spec in cfg.agents:
        check_agent(spec, allow_pickle=cfg.allow_pickle)
    if cfg.backend == "ray":
        _import_ray()
    check_folder(cfg)


def run_bench(cfg: BenchConfig, *, progress: bool = True) -> list[dict[str, str]]:
    """Run (or finish) the grid of ``cfg``; returns every row of ``episodes.csv``.

    One process at a time per folder (``folder_lock``); the grid is checked (``check_bench``)
    before anything is written, and the folder's rows repaired before anything is appended.
    """
    check_bench(cfg)
    with backend_session(cfg), folder_lock(cfg.out):
        return run_locked(cfg, progress=progress)


def run_locked(cfg: BenchConfig, *, progress: bool = True) -> list[dict[str, str]]:
    """``run_bench`` for a caller that checked the grid, joined its backend (``backend_session``) and holds the folder's lock."""
    from tqdm import tqdm

    out, done = _prepare(cfg)
    # Local pools take single episodes (balanced to the end; each worker keeps its cell's agent and env);
    # Ray takes chunks (fewer tasks to schedule across a cluster).
    tasks = chunks(cfg, done, CHUNK if cfg.backend == "ray" else 1)
    rows_path = out / "episodes.csv"
    total = sum(len(t[2]) for t in tasks)
    if tasks and (not rows_path.exists() or rows_path.stat().st_size == 0):
        append_row(rows_path, None)  # the header, once, before workers append
    with tqdm(total=total, desc="bench", unit="ep", disable=not progress) as bar:
        if cfg.backend == "ray":
            _run_ray(tasks, rows_path, cfg, bar)
        else:
            from agents.evaluation.pool import pool_map

            # Workers append their rows themselves, one write per line (O_APPEND), episode by episode.
            try:
                jobs = [(*t, str(rows_path), cfg.allow_pickle) for t in tasks]
                pool_map(run_chunk, jobs, cfg.workers, lambda rows: bar.update(len(rows)))
            finally:
                release_cell()  # the cell this process kept when it ran the tasks itself
    return read_rows(rows_path)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError("backend: ray is not installed; pip install 'drive-sim[ray]' (or use --backend local)") from None
    return ray


def _run_ray(tasks: Sequence[tuple[str, str, list[int]]], rows_path: Path, cfg: BenchConfig, bar: Any) -> None:
    """Chunks as Ray tasks on the cluster at ``cfg.address`` (or a local one with ``cfg.workers`` CPUs).

    Each task is a generator streaming its rows back one episode at a time, and this process
    appends them, so the rows file needs no shared file system and a run stopped part-way keeps
    every episode that reached it. Cluster nodes need drive-sim installed (the tasks import it).
    """
    ray = _import_ray()
    remote = ray.remote(num_cpus=1)(iter_chunk)
    pending = [remote.remote(*t, cfg.allow_pickle) for t in tasks]
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for gen in ready:
                try:
                    row = ray.get(next(gen))
                except StopIteration:
                    continue
                append_row(rows_path, row)
                bar.update()
                pending.append(gen)
    finally:
        for gen in pending:
            ray.cancel(gen, force=True)


@contextmanager
def backend_session(cfg: BenchConfig) -> Iterator[None]:
    """The grid's backend, joined before the folder is touched: for Ray, the cluster at ``cfg.address`` or a local one.

    A cluster that cannot be joined is one line naming the address, with nothing written. Ray
    started here is shut down at the end; one this process had already joined is left running.
    """
    if cfg.backend != "ray":
        yield
        return
    ray = _import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine unless asked
    started = not ray.is_initialized()
    if started:
        try:
            if cfg.address:
                ray.init(address=cfg.address, logging_level="ERROR", log_to_driver=False)
            else:
                ray.init(num_cpus=cfg.workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            where = f"the Ray cluster at {cfg.address!r}" if cfg.address else "a local Ray"
            raise ValueError(f"address: cannot join {where} ({why})") from None
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def by_cell(rows: Iterable[dict[str, str]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Rows grouped by (agent, env id), in the order the cells first appear."""
    cells: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        cells.setdefault((r["agent"], r["env_id"]), []).append(r)
    return cells


def typed_row(row: dict[str, str]) -> dict[str, Any]:
    """A finished episode's CSV row with its numbers and flags as numbers and bools again."""
    return {**row, **read_row(row), "seed": int(row["seed"])}


def short_name(env_id: str) -> str:
    """``DriveSim/Highway-Ice-v0`` -> ``Highway-Ice`` (tables, plots, video names)."""
    return env_id.split("/")[-1].removesuffix("-v0")


# ---------------------------------------------------------------------------------------------- scaling
def measure_scaling(
    agents: Sequence[str], scenarios: Sequence[str], episodes: int, *, workers: Sequence[int] = (1, 2), repeats: int = 3
) -> dict[str, Any]:
    """Episodes per minute of one grid with each worker count, as medians of ``repeats`` runs.

    Each run is a fresh ``drive-sim bench`` process writing to an empty folder, as a user runs it:
    interpreter start-up, imports, worker start-up, model loading and the CSV writes all count. The
    order of the worker counts alternates between repeats (drift on a shared machine falls on
    both), and every run's rows must be the same (else ``RuntimeError``).
    """
    import statistics
    import subprocess
    import tempfile
    import time

    require(repeats >= 1, "repeats", f"must be at least 1, got {repeats}")
    walls: dict[int, list[float]] = {w: [] for w in workers}
    reference = None
    n = 0
    for r in range(repeats):
        for w in workers if r % 2 == 0 else tuple(reversed(workers)):
            with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
                args = [sys.executable, "-m", "agents.cli", "bench", "--agents", ",".join(agents), "--scenarios", ",".join(scenarios)]
                args += ["--episodes", str(episodes), "--workers", str(w), "--out", tmp, "--no-progress"]
                t0 = time.perf_counter()
                proc = subprocess.run(args, capture_output=True, text=True)
                walls[w].append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    raise RuntimeError(f"scaling: drive-sim bench failed: {proc.stderr.strip()[-300:]}")
                rows = read_rows(Path(tmp) / "episodes.csv")
            key = sorted(tuple(row.values()) for row in rows)
            if reference is None:
                reference, n = key, len(rows)
            elif key != reference:
                raise RuntimeError(f"scaling: the rows with {w} workers differ from the first run's")
    med = {w: statistics.median(v) for w, v in walls.items()}
    return {
        "agents": list(agents),
        "scenarios": list(scenarios),
        "episodes_per_scenario": episodes,
        "episodes": n,
        "repeats": repeats,
        "wall_s": {str(w): v for w, v in walls.items()},
        "median_wall_s": {str(w): m for w, m in med.items()},
        "episodes_per_min": {str(w): n / m * 60.0 for w, m in med.items()},
        "speedup": {str(w): med[workers[0]] / m for w, m in med.items()},
    }


# ---------------------------------------------------------------------------------------------- worst episodes
def worst_episodes(rows: Sequence[dict[str, str]], k: int) -> list[dict[str, Any]]:
    """The ``k`` worst finished episodes of every agent x scenario: lowest driving score, then return, then seed."""
    out = []
    for _, rs in sorted(by_cell(r for r in rows if r["status"] == "ok").items()):
        out.extend(sorted(map(typed_row, rs), key=lambda r: (r["driving_score"], r["return"], r["seed"]))[:k])
    return out


def video_name(row: dict[str, Any]) -> str:
    """``<agent>-<scenario>-seed<N>.mp4`` with anything but letters, digits, ``.``, ``_`` and ``-`` made ``_``."""
    agent = re.sub(r"[^A-Za-z0-9._-]+", "_", str(row["agent"])).strip("_")
    return f"{agent}-{short_name(row['env_id'])}-seed{int(row['seed']):03d}.mp4"


def _film(agent: str, env_id: str, seed: int, path: str, allow_pickle: bool = False) -> dict[str, Any]:
    from agents.evaluation.replay import film_agent

    _one_thread()
    with quiet_pickle_warnings():
        res = film_agent(agent, path, scenario=env_id, seed=seed, force=True, progress=False, allow_pickle=allow_pickle)
    return {"steps": res.steps, "return": res.total_return}


def film_worst(cfg: BenchConfig, rows: Sequence[dict[str, str]], k: int, *, progress: bool = True) -> list[dict[str, Any]]:
    """Videos of the ``k`` worst episodes of each cell in ``OUT/videos`` (``agents.evaluation.replay.film_agent``).

    Each episode is driven again from its seed and filmed; ``steps`` and ``return`` of the filmed
    episode are checked against its row (``matches``), so a video shows the episode the table counts.
    A video already there is kept (a re-run films only what is missing; the check result waits in
    ``NAME.json`` beside it). Films run on a local pool of ``cfg.workers`` processes whatever the
    grid's backend: the files are written here.
    """
    from tqdm import tqdm

    from agents.evaluation.pool import pool_map

    require(k >= 0, "videos", f"must be non-negative, got {k}")
    folder = Path(cfg.out) / "videos"
    todo, out = [], []
    for row in worst_episodes(rows, k):
        path = folder / video_name(row)
        entry = {
            k2: row[k2] for k2 in ("agent", "env_id", "seed", "driving_score", "return", "steps", "success", "collision_kind", "off_road")
        }
        entry["video"] = f"videos/{path.name}"
        out.append(entry)
        check = path.with_suffix(".json")
        if not path.exists():
            todo.append((entry, path))
        elif check.is_file():  # filmed by an earlier run: its check result
            done = read_json(check, "videos")
            entry["matches"] = isinstance(done, dict) and done.get("matches") is True
    if not todo:
        return out
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(e["agent"], e["env_id"], int(e["seed"]), str(p), cfg.allow_pickle) for e, p in todo]
    with tqdm(total=len(jobs), desc="videos", unit="video", disable=not progress) as bar:
        results = pool_map(_film, jobs, cfg.workers, lambda _r: bar.update())
    for (entry, path), res in zip(todo, results, strict=True):
        entry["matches"] = res["steps"] == int(entry["steps"]) and abs(res["return"] - entry["return"]) < 1e-6
        record = {**res, "row_steps": entry["steps"], "row_return": entry["return"], "matches": entry["matches"]}
        write_json(path.with_suffix(".json"), record)
    return out
