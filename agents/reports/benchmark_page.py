"""docs/benchmark.md: the leaderboard from a finished ``drive-sim bench`` folder, and worker scaling.

Both parts are kept in ``docs/benchmark.json``, so either can be refreshed alone; the hand-written
findings block of an existing page is kept. The commands the page shows use relative paths a reader
can run from the repository root (``portable``): a results folder given as an absolute path is shown
as ``results/<its name>``.
"""

from __future__ import annotations

import gzip
import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.evaluation.bench import measure_scaling, short_name
from agents.evaluation.bench_report import with_ci
from agents.reports.perf import machine_info
from drive_sim.files import atomic_write, copy_file, portable, write_json, write_text

SCALING_GRID = {"agents": ("expert", "random", "zoo:ppo-highway-lidar"), "scenarios": ("highway", "merge"), "episodes": 20}
PLOTS = ("success_heatmap.png", "driving_score.png", "speed_vs_safety.png")
# Hand-written reading of the results: kept from the existing page when it is written again.
FINDINGS = ("<!-- findings: written by hand, kept by this script -->", "<!-- /findings -->")


def _findings(page: Path) -> str:
    text = page.read_text(encoding="utf-8") if page.is_file() else ""
    start, end = text.find(FINDINGS[0]), text.find(FINDINGS[1])
    return text[start + len(FINDINGS[0]) : end].strip() if 0 <= start < end else ""


def _leaderboard(results: Path, images: Path, videos: Path, keep: list[str]) -> dict[str, Any]:
    summary = json.loads((results / "summary.json").read_text())
    bench = json.loads((results / "bench.json").read_text())
    images.mkdir(parents=True, exist_ok=True)
    for name in PLOTS:
        copy_file(results / name, images / name)
    # The rows themselves (the source of truth), compressed: anyone can aggregate them again.
    rows_copy = images.parent.parent / "runs" / "benchmark-episodes.csv.gz"
    rows_copy.parent.mkdir(parents=True, exist_ok=True)
    packed = gzip.compress((results / "episodes.csv").read_bytes(), compresslevel=9, mtime=0)
    atomic_write(rows_copy, lambda tmp: tmp.write_bytes(packed))
    kept = []
    for name in keep:
        src = results / "videos" / name
        if not src.is_file():
            raise ValueError(f"video: {src} does not exist")
        videos.mkdir(parents=True, exist_ok=True)
        copy_file(src, videos / name)
        entry = next((v for v in summary.get("videos", []) if v["video"] == f"videos/{name}"), {"video": f"videos/{name}"})
        kept.append(entry)
    return {"grid": bench["grid"], "cells": summary["cells"], "videos": summary.get("videos", []), "kept_videos": kept}


def render(data: dict[str, Any], findings: str, out: str | Path = "docs/benchmark.md") -> str:
    """The page's Markdown from its saved data (``docs/benchmark.json``) and the hand-written findings."""
    lines = ["# Benchmark", ""]
    lb = data.get("leaderboard")
    if lb:
        g = lb["grid"]
        agents, scen = g["agents"], g["env_ids"]  # the grid's order: the library's scenarios, then the variants
        by = {(c["agent"], c["env_id"]): c for c in lb["cells"]}
        cells = [by[(a, e)] for a in agents for e in scen if (a, e) in by]
        lines += [
            "Every agent of the zoo, the expert driver and the random baseline on every registered scenario, "
            f"seeds {g['seeds'][0]}-{g['seeds'][1] - 1} (the test seeds; training uses 1000+, validation 100-199). Made with",
            "",
            f"    {with_out(lb['command'], portable(lb['results_arg']))}",
            f"    python scripts/benchmark_doc.py --out {portable(out)} --results {portable(lb['results_arg'])}",
            "",
            f"One row per episode: [runs/benchmark-episodes.csv.gz](runs/benchmark-episodes.csv.gz). Run "
            f"on {lb['machine']['date']}, {lb['machine']['cpu']}, {lb['machine']['logical_cores']} cores, Python "
            f"{lb['machine']['python']}. {lb.get('note', '')}".rstrip(),
            "",
            "Driving score (CARLA leaderboard style): route completion x infraction penalty (vehicle collision x0.60, static object "
            "x0.65, red light x0.70, off-road distance as a share of the route). On the time-limited highway scenarios the route is "
            "what the whole time limit covers at the speed limit (Highway-v0: 1,200 m, 40 s, 30 m/s), so route completion there "
            "measures progress, and a slow but safe agent that succeeds (survives) still scores below 1. "
            "Brackets: seeded 95 % bootstrap intervals over the episodes.",
            "",
        ]

        def matrix(title: str, key: str, fmt: str) -> list[str]:
            out = [f"## {title}", "", "| agent | " + " | ".join(short_name(e) for e in scen) + " |", "|---|" + "---:|" * len(scen)]
            for a in agents:
                cs = [by.get((a, e)) for e in scen]
                out.append(f"| {a} | " + " | ".join("skip" if c is None or c["status"] != "ok" else format(c[key], fmt) for c in cs) + " |")
            return out

        lines += [*matrix("Driving score", "driving_score", ".2f"), "", *matrix("Success rate", "success_rate", ".0%")]
        lines += ["", *[f"![{n.removesuffix('.png').replace('_', ' ')}](images/benchmark/{n})" for n in PLOTS], ""]
        lines += ["## What the numbers say", "", FINDINGS[0], findings or "(not written yet)", FINDINGS[1], ""]
        lines += [
            "## Every cell",
            "",
            "| agent | scenario | episodes | success | driving score | collisions | off road | route completion | speed / limit "
            "| infractions / km | RMS jerk [m/s³] | max lat. acc. [m/s²] | median min TTC [s] | return |",
            "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in cells:
            if c["status"] != "ok":
                lines.append(f"| {c['agent']} | {short_name(c['env_id'])} | 0 | skipped: {c['reason']} |" + " |" * 10)
                continue
            lines.append(
                f"| {c['agent']} | {short_name(c['env_id'])} | {c['episodes']} | {with_ci(c, 'success_rate', '.0%')} "
                f"| {with_ci(c, 'driving_score', '.3f')} | {c['collided_rate']:.0%} | {c['off_road_rate']:.0%} "
                f"| {c['route_completion']:.2f} | {c['speed_ratio']:.2f} | {c['infractions_per_km']:.2f} | {c['rms_jerk_mps3']:.2f} "
                f"| {c['max_lat_accel_mps2']:.2f} | {c['median_min_ttc_s']:.2f} | {c['return']:.1f} |"
            )
        if lb["videos"]:
            lines += [
                "",
                "## Worst episodes",
                "",
                f"`--videos 1` filmed the worst episode of every cell ({len(lb['videos'])} videos, each driven again from its seed "
                f"and checked against its row: {sum(bool(v.get('matches')) for v in lb['videos'])} of {len(lb['videos'])} match "
                "their rows in length and return). A few are kept here:",
                "",
            ]
            for v in lb["kept_videos"]:
                lines.append(
                    f"- [{Path(v['video']).name}](videos/benchmark/{Path(v['video']).name}): {v.get('agent')} on "
                    f"{short_name(v.get('env_id', ''))}, seed {v.get('seed')}, driving score {v.get('driving_score', 0):.3f}"
                )
        lines.append("")
    sc = data.get("scaling")
    if sc:
        m = sc["machine"]
        one, two = sc["episodes_per_min"]["1"], sc["episodes_per_min"]["2"]
        lines += [
            "## Scaling with workers",
            "",
            f"`python scripts/benchmark_doc.py --out {portable(out)} --scaling` on {m['date']}, {m['cpu']}, "
            f"{m['logical_cores']} cores: the grid "
            f"{', '.join(sc['agents'])} x {', '.join(sc['scenarios'])} x {sc['episodes_per_scenario']} seeds ({sc['episodes']} "
            f"episodes, one episode per task), each run a fresh `drive-sim bench` process writing to an empty folder (interpreter "
            f"and worker start-up, model loading and the report included), medians of "
            f"{sc['repeats']} runs, worker counts alternating; every run's rows identical.",
            "",
            "| workers | wall [s] (median) | runs [s] | episodes / min | speed-up |",
            "|---:|---:|---|---:|---:|",
        ]
        for w in sc["median_wall_s"]:
            runs = ", ".join(f"{x:.1f}" for x in sc["wall_s"][w])
            lines.append(f"| {w} | {sc['median_wall_s'][w]:.1f} | {runs} | {sc['episodes_per_min'][w]:.0f} | {sc['speedup'][w]:.2f}x |")
        lines += ["", f"Two workers: {two / one:.2f}x the episodes per minute of one.", ""]
    return "\n".join(lines)


def with_out(command: str, out: str) -> str:
    """A ``drive-sim bench`` command writing to ``out`` (its ``--out`` replaced or added)."""
    words = shlex.split(command)
    if "--out" in words:
        i = words.index("--out")
        words[i + 1 : i + 2] = [out]
    else:
        words += ["--out", out]
    return shlex.join(words)


def write_benchmark_page(
    out: str | Path = "docs/benchmark.md",
    *,
    results: str | None = None,
    command: str = "",
    note: str = "",
    videos: Sequence[str] = (),
    scaling: bool = False,
    repeats: int = 3,
) -> Path:
    """Refresh the leaderboard from ``results`` and/or measure ``scaling``, then write the page from the saved data.

    Raises:
        ValueError: one line, for a results folder without a finished benchmark or a missing video.
    """
    out = Path(out)
    saved = out.with_suffix(".json")
    data = json.loads(saved.read_text()) if saved.is_file() else {}
    if results:
        folder = Path(results)
        if not (folder / "summary.json").is_file():
            raise ValueError(f"results: {folder} has no summary.json (run drive-sim bench there first)")
        lb = _leaderboard(folder, out.parent / "images" / "benchmark", out.parent / "videos" / "benchmark", list(videos))
        grid = lb["grid"]
        command = command or (
            f"drive-sim bench --agents {','.join(grid['agents'])} --scenarios all --episodes {grid['seeds'][1] - grid['seeds'][0]}"
        )
        data["leaderboard"] = {**lb, "command": command, "results_arg": portable(results), "note": note, "machine": machine_info()}
    if scaling:
        data["scaling"] = {**measure_scaling(**SCALING_GRID, repeats=repeats), "machine": machine_info()}
    write_json(saved, data)
    write_text(out, render(data, _findings(out), out))
    return out
