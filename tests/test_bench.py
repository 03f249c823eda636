"""Benchmark grid: same rows for 1 and 2 workers, a killed run resumes to the same rows, bad input in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.evaluation.bench import BenchConfig, read_rows, run_bench
from agents.evaluation.bench_report import summarise, write_report

GRID = {"agents": ("random", "expert"), "scenarios": ("highway",), "episodes": 3}


def _key(rows):
    return sorted(((r["agent"], r["env_id"], int(r["seed"])), r) for r in rows)


_FOLDERS: dict[int, Path] = {}


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    rows = run_bench(BenchConfig(**GRID, workers=1, out=str(out)), progress=False)
    _FOLDERS[id(rows)] = out
    return rows


def one_worker_folder(rows):
    """The folder the module's one-worker grid ran in."""
    return _FOLDERS[id(rows)]


def test_rows_are_the_same_with_one_and_two_workers(one_worker, tmp_path):
    two = run_bench(BenchConfig(**GRID, workers=2, out=str(tmp_path)), progress=False)
    assert len(one_worker) == len(two) == 6 and all(r["status"] == "ok" for r in two)
    assert _key(one_worker) == _key(two)
    # Real episodes: the expert succeeds, the random baseline does not.
    by_agent = {a: [r for r in two if r["agent"] == a] for a in GRID["agents"]}
    assert all(r["success"] == "True" for r in by_agent["expert"])
    assert all(r["success"] == "False" for r in by_agent["random"])


def test_a_killed_run_resumes_to_the_same_rows_without_duplicates(one_worker, tmp_path):
    args = [sys.executable, "-m", "agents.cli", "bench", "--agents", "random,expert", "--scenarios", "highway"]
    args += ["--episodes", "3", "--workers", "1", "--out", str(tmp_path), "--no-progress"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rows_path = tmp_path / "episodes.csv"
    deadline = time.time() + 120
    while time.time() < deadline and len(read_rows(rows_path)) < 4:  # the random episodes and one expert episode
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_rows(rows_path)
    assert 4 <= len(partial) < 6, len(partial)
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    final = read_rows(rows_path)
    keys = [(r["agent"], r["env_id"], r["seed"]) for r in final]
    assert len(keys) == len(set(keys)) == 6
    assert _key(final) == _key(one_worker)


def _bench_args(out, workers=1, episodes=3):
    args = [sys.executable, "-m", "agents.cli", "bench", "--agents", "random,expert", "--scenarios", "highway"]
    return args + ["--episodes", str(episodes), "--workers", str(workers), "--out", str(out), "--no-progress"]


def test_a_torn_or_damaged_row_is_dropped_and_run_again(one_worker, tmp_path):
    """Issue 16: a torn last row (truncate -s -20, a full disk mid-write) used to be appended onto, and every later run failed."""
    import shutil

    src = Path(one_worker_folder(one_worker))
    for name in ("bench.json", "episodes.csv"):
        shutil.copyfile(src / name, tmp_path / name)
    rows_path = tmp_path / "episodes.csv"
    data = rows_path.read_bytes()
    rows_path.write_bytes(data[:-20])  # the last row torn
    assert len(read_rows(rows_path)) == 5
    again = subprocess.run(_bench_args(tmp_path), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "dropped 1 torn, damaged or repeated line(s)" in again.stderr
    assert rows_path.read_bytes().endswith(b"\n") and _key(read_rows(rows_path)) == _key(one_worker)
    # A fragment that a later row was appended to (what the old code left), and a row twice: both go, the episodes run again.
    lines = rows_path.read_text().splitlines(keepends=True)
    damaged = lines[0] + lines[1][:-30] + lines[2] + lines[3] + lines[3] + "".join(lines[4:])
    rows_path.write_text(damaged)
    assert len(read_rows(rows_path)) == 4  # the fragment takes the row appended to it along
    again = subprocess.run(_bench_args(tmp_path), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "dropped 2" in again.stderr
    final = read_rows(rows_path)
    assert _key(final) == _key(one_worker) and len(rows_path.read_text().splitlines()) == 7
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [c["episodes"] for c in summary["cells"]] == [3, 3]  # each episode counted once


def test_workers_die_with_a_killed_bench_and_a_second_bench_is_refused(one_worker, tmp_path):
    """Issue 16: SIGKILL of drive-sim bench left its workers appending rows; two benches on one folder both wrote every row."""
    import psutil

    proc = subprocess.Popen(_bench_args(tmp_path, workers=2), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows_path = tmp_path / "episodes.csv"
    deadline = time.time() + 120
    while time.time() < deadline and len(read_rows(rows_path)) < 1:
        time.sleep(0.05)
    # A second bench on the same folder while the first runs: one line, exit 2, nothing written.
    before = rows_path.read_bytes()
    second = subprocess.run(_bench_args(tmp_path, workers=1), capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert f"is in use by another drive-sim bench (pid {proc.pid})" in second.stderr
    assert not (tmp_path / "summary.json").exists()
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert workers, "the bench runs on a pool"
    os.kill(proc.pid, signal.SIGKILL)  # the bench alone, not its process group
    proc.wait()
    gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, f"workers outlived their bench: {[p.pid for p in alive]}"
    settled = rows_path.read_bytes()
    time.sleep(1.0)
    assert rows_path.read_bytes() == settled  # nobody appends any more
    assert before == settled[: len(before)]
    # The lock died with its holder: a re-run finishes the grid, each episode once.
    again = subprocess.run(_bench_args(tmp_path, workers=2), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    final = read_rows(rows_path)
    assert _key(final) == _key(one_worker)
    assert len(rows_path.read_text().splitlines()) == 7  # header + 6 rows: none twice


def test_bad_input_one_line_nothing_overwritten(one_worker, tmp_path):
    out = tmp_path / "res"
    run_bench(BenchConfig(agents=("random",), scenarios=("lanekeep",), episodes=1, workers=1, out=str(out)), progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    from agents.policies.zoo import zoo_entry

    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(zoo_entry("dqn-highway-meta").path.read_bytes()[:500])
    cases = [
        (["--agents", str(truncated), "--out", str(tmp_path / "x")], "is not a complete model file"),
        (["--agents", "zoo:nope", "--out", str(tmp_path / "x")], "zoo:nope is not in the zoo"),
        (["--agents", "expert", "--scenarios", "moon", "--out", str(tmp_path / "x")], "'moon' is not known"),
        (["--agents", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "x")], "missing.zip"),
        (["--agents", "random", "--scenarios", "highway", "--episodes", "1", "--out", str(out)], "holds another benchmark's rows"),
        (["--agents", "random", "--address", "auto", "--out", str(tmp_path / "x")], "address: only with backend ray"),
        (["--agents", "random", "--videos", "-1", "--out", str(tmp_path / "x")], "videos: must be non-negative"),
    ]
    for extra, expect in cases:
        r = subprocess.run(
            [sys.executable, "-m", "agents.cli", "bench", *extra, "--no-progress"], capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 2 and expect in r.stderr and len(r.stderr.strip().splitlines()) == 1, (extra, r.stderr)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "x").exists()
    # Rows under another version's columns: refused before anything is appended to them.
    rows = out / "episodes.csv"
    rows.write_text(rows.read_text().replace(",reason\n", ",why\n", 1))
    older = rows.read_bytes()
    with pytest.raises(ValueError, match="has other columns"):
        run_bench(BenchConfig(agents=("random",), scenarios=("lanekeep",), episodes=1, workers=1, out=str(out)), progress=False)
    assert rows.read_bytes() == older


def test_report_has_the_table_and_real_plots(one_worker, tmp_path):
    cells = summarise(one_worker)
    assert [(c["agent"], c["episodes"]) for c in cells] == [("expert", 3), ("random", 3)]
    report = write_report(tmp_path, cells, command="drive-sim bench --agents random,expert")
    text = report.read_text()
    assert "| agent | scenario | episodes | success | driving score |" in text
    assert "| expert | Highway | 3 | 100% [100%, 100%] |" in text and "| random | Highway | 3 | 0% [0%, 0%] |" in text
    images = [line[line.index("(") + 1 : -1] for line in text.splitlines() if line.startswith("![")]
    assert sorted(images) == ["driving_score.png", "speed_vs_safety.png", "success_heatmap.png"]
    for name in images:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name


def test_ray_backend_gives_the_same_rows(one_worker, tmp_path):
    """Ray started locally with 2 CPUs: the same per-episode rows as one and two local workers.

    Ray is an optional extra; the README's test command (and so CI) installs it, and there
    DRIVE_SIM_REQUIRE_RAY=1 turns a missing Ray into a failure instead of a skip.
    """
    if os.environ.get("DRIVE_SIM_REQUIRE_RAY") == "1":
        import ray
    else:
        ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024**2, logging_level="ERROR", log_to_driver=False)
    try:
        rows = run_bench(BenchConfig(**GRID, out=str(tmp_path), backend="ray"), progress=False)
        assert ray.is_initialized()  # a cluster the caller started is left running
    finally:
        ray.shutdown()
    assert len(rows) == 6 and _key(rows) == _key(one_worker)


def test_an_agent_that_does_not_fit_is_skipped_with_the_reason(tmp_path):
    """A DQN model whose file claims the lidar observation but whose network takes kinematics."""
    import json
    import zipfile

    from agents.policies.sb3 import META_NAME
    from agents.policies.zoo import zoo_entry

    bad = tmp_path / "mislabelled.zip"
    with zipfile.ZipFile(zoo_entry("dqn-highway-meta").path) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == META_NAME:
                data = json.dumps({**json.loads(data), "obs_type": "lidar"}).encode()
            dst.writestr(item, data)
    out = tmp_path / "res"
    rows = run_bench(BenchConfig(agents=("random", str(bad)), scenarios=("lanekeep",), episodes=2, workers=1, out=str(out)), progress=False)
    skipped = [r for r in rows if r["agent"] == str(bad)]
    assert [r["status"] for r in skipped] == ["skipped", "skipped"]
    assert skipped[0]["reason"].startswith("does not fit DriveSim/LaneKeep-v0:") and "observation" in skipped[0]["reason"].lower()
    cells = summarise(rows)
    assert [c["status"] for c in cells] == ["skipped", "ok"] or [c["status"] for c in cells] == ["ok", "skipped"]
    text = write_report(out, cells).read_text()
    assert f"| {bad} | LaneKeep | 0 | skipped: does not fit DriveSim/LaneKeep-v0:" in text


def test_worst_episode_videos_show_the_counted_episodes(one_worker, tmp_path):
    import cv2

    from agents.evaluation.bench import film_worst, worst_episodes

    worst = worst_episodes(one_worker, 1)
    assert [w["agent"] for w in worst] == ["expert", "random"]  # one per cell, cells in order
    for w in worst:
        cell = [float(r["driving_score"]) for r in one_worker if r["agent"] == w["agent"]]
        assert w["driving_score"] == min(cell)
    assert len(worst_episodes(one_worker, 2)) == 4
    cfg = BenchConfig(**GRID, workers=2, out=str(tmp_path))
    videos = film_worst(cfg, one_worker, 1, progress=False)
    assert len(videos) == 2 and all(v["matches"] for v in videos)
    for v in videos:
        cap = cv2.VideoCapture(str(tmp_path / v["video"]))
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        assert frames == int(v["steps"]) + 1, (v, frames)
    text = write_report(tmp_path, summarise(one_worker), videos=videos).read_text()
    assert "## Worst episodes" in text and all(f"]({v['video']})" in text for v in videos)
    mtimes = {v["video"]: (tmp_path / v["video"]).stat().st_mtime_ns for v in videos}
    assert all(v["matches"] for v in film_worst(cfg, one_worker, 1, progress=False))  # kept, with their check
    assert {v: (tmp_path / v).stat().st_mtime_ns for v in mtimes} == mtimes
