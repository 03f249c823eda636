"""Faults the commands meet: a full disk mid-write, an output folder that cannot be written (issue 16).

A full disk is made with ``RLIMIT_FSIZE`` in the command's process (SIGXFSZ ignored): every write past
the limit fails with EFBIG, in Python and in the ffmpeg it starts, as a disk that fills up would.
No mount is needed, so the tests run anywhere CI does.
"""

from __future__ import annotations

import hashlib
import resource
import signal
import subprocess
import sys
from pathlib import Path

from agents.evaluation.bench import read_rows


def _cli(args, cwd, fsize=None, timeout=300):
    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args, "--no-progress"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
    )


def _one_line_error(r, *expect):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("drive-sim: error: "), r.stderr
    for text in expect:
        assert text in lines[0], (text, lines[0])


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


REPLAY = ["replay", "--agent", "expert", "--scenario", "highway", "--seed", "1"]


def test_replay_on_a_full_disk_reports_it_and_keeps_the_old_video(tmp_path):
    """Issue 16: replay on a full disk printed 'written' with an unplayable file; --force replaced a good video by a broken one."""
    good = _cli([*REPLAY, "--max-steps", "5", "--out", "v.mp4"], tmp_path)
    assert good.returncode == 0, good.stderr
    before = _digest(tmp_path)
    full = _cli([*REPLAY, "--max-steps", "60", "--out", "new.mp4"], tmp_path, fsize=30_000)
    _one_line_error(full, "new.mp4")
    assert "written" not in full.stdout
    forced = _cli([*REPLAY, "--max-steps", "60", "--out", "v.mp4", "--force"], tmp_path, fsize=30_000)
    _one_line_error(forced, "v.mp4", "nothing was replaced")
    assert _digest(tmp_path) == before  # the good video as it was, no broken or temporary file beside it


def test_bench_on_a_full_disk_fails_in_one_line_and_a_rerun_repairs_the_rows(tmp_path):
    args = ["bench", "--agents", "random", "--scenarios", "lanekeep", "--episodes", "4", "--workers", "1", "--out", "res"]
    clean = _cli([*args[:-1], "clean"], tmp_path)
    assert clean.returncode == 0, clean.stderr
    full = _cli(args, tmp_path, fsize=900)  # room for the header and a row or two: the disk fills mid-row
    _one_line_error(full, "episodes.csv")
    rows_path = tmp_path / "res" / "episodes.csv"
    assert 0 < len(read_rows(rows_path)) < 4 and not rows_path.read_bytes().endswith(b"\n")  # a torn row
    again = _cli(args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "dropped 1 torn" in again.stderr
    assert sorted(map(str, read_rows(rows_path))) == sorted(map(str, read_rows(tmp_path / "clean" / "episodes.csv")))


def test_evaluate_checks_its_output_before_driving_and_a_full_disk_writes_nothing(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    under = _cli(
        ["evaluate", "--agent", "random", "--scenario", "lanekeep", "--episodes", "50", "--out", "file/x.json"], tmp_path, timeout=60
    )
    _one_line_error(under, "out: cannot write file/x.json")
    full = _cli(["evaluate", "--agent", "random", "--scenario", "lanekeep", "--episodes", "3", "--out", "x.json"], tmp_path, fsize=300)
    _one_line_error(full, "x.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_train_and_replay_outputs_under_a_file_or_in_proc_fail_in_one_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    cases = [
        (
            ["train", "--scenario", "lanekeep", "--algo", "q", "--total-steps", "200", "--out-dir", "file/runs"],
            "out_dir: cannot create file/runs",
        ),
        (
            ["train", "--scenario", "lanekeep", "--algo", "q", "--total-steps", "200", "--out-dir", "/proc/drive-sim-runs"],
            "/proc/drive-sim-runs",
        ),
        ([*REPLAY, "--max-steps", "3", "--out", "file/v.mp4"], "out: cannot write file/v.mp4"),
        ([*REPLAY, "--max-steps", "3", "--out", "v.mp4", "--record", "file/logs"], "file/logs"),
        (["bench", "--agents", "random", "--scenarios", "lanekeep", "--episodes", "1", "--out", "file/res"], "file/res"),
        (["perf", "--quick", "--out", "file/perf.md"], "file/perf.md"),
    ]
    for args, expect in cases:
        _one_line_error(_cli(args, tmp_path, timeout=120), expect)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_train_on_a_full_disk_fails_in_one_line_and_the_run_says_failed(tmp_path):
    import json

    r = _cli(
        ["train", "--scenario", "lanekeep", "--total-steps", "2048", "--eval-episodes", "1", "--out-dir", "runs"], tmp_path, fsize=60_000
    )
    _one_line_error(r, "model.zip")
    status = json.loads((tmp_path / "runs" / "lanekeep-ppo-lidar-s0" / "status.json").read_text())
    assert status["state"] == "failed" and "model.zip" in status["error"]
    assert not (tmp_path / "runs" / "lanekeep-ppo-lidar-s0" / "model.zip").exists()  # no torn model left to load
