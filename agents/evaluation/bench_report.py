"""The benchmark's tables and pictures: per-cell aggregates of its rows and ``OUT/report.md``.

``summarise`` aggregates each agent x scenario cell of ``episodes.csv`` with
``agents.evaluation.metrics.aggregate`` (means, rates, seeded bootstrap intervals); ``write_report``
draws the table and three plots; ``with_ci`` is the formatting the report and the docs page
(``agents.reports.benchmark_page``) share.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.evaluation.bench import (
    BenchConfig,
    backend_session,
    by_cell,
    check_bench,
    film_worst,
    folder_lock,
    grid,
    run_locked,
    short_name,
    typed_row,
)
from drive_sim.config import require
from drive_sim.files import atomic_write, write_json, write_text


def bench_and_report(cfg: BenchConfig, *, videos: int = 0, command: str = "", progress: bool = True) -> tuple[list[dict[str, Any]], Path]:
    """``drive-sim bench``: run (or finish) the grid, film the ``videos`` worst episodes of each cell, write the summary and report.

    The grid is checked before anything is written, then everything runs under the folder's lock.
    Returns the cells (``summary.json``) and the report's path.
    """
    require(videos >= 0, "videos", f"must be non-negative, got {videos}")
    check_bench(cfg)
    with backend_session(cfg), folder_lock(cfg.out):
        rows = run_locked(cfg, progress=progress)
        filmed = film_worst(cfg, rows, videos, progress=progress) if videos else []
        cells = summarise(rows, order=grid(cfg))
        write_json(Path(cfg.out) / "summary.json", {"cells": cells, "videos": filmed})
        return cells, write_report(cfg.out, cells, command=command, videos=filmed)


def summarise(rows: Sequence[dict[str, str]], *, seed: int = 0, order: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One entry per agent x scenario: aggregates with bootstrap intervals, or the skip reason.

    Cells follow ``order`` (a ``grid()``: its agents, then its scenarios), else sorted names.
    """
    from agents.evaluation.metrics import aggregate

    cells = by_cell(rows)
    out = []
    if order is not None:
        rank = {(a, e): (i, j) for i, a in enumerate(order["agents"]) for j, e in enumerate(order["env_ids"])}
        keys = sorted(cells, key=lambda k: rank.get(k, (len(rank), 0)))
    else:
        keys = sorted(cells)
    for agent, eid in keys:
        rs = cells[(agent, eid)]
        ok = [typed_row(r) for r in rs if r["status"] == "ok"]
        if not ok:
            out.append({"agent": agent, "env_id": eid, "status": "skipped", "reason": rs[0].get("reason", ""), "episodes": 0})
            continue
        out.append({"agent": agent, "env_id": eid, "status": "ok", **aggregate(sorted(ok, key=lambda r: r["seed"]), seed=seed)})
    return out


def with_ci(cell: dict[str, Any], key: str, fmt: str) -> str:
    """A cell's mean of ``key`` with its interval, ``"0.837 [0.820, 0.853]"`` (``fmt``: a format spec)."""
    lo, hi = cell[f"{key}_ci"]
    return f"{cell[key]:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def write_report(out: str | Path, cells: Sequence[dict[str, Any]], *, command: str = "", videos: Sequence[dict[str, Any]] = ()) -> Path:
    """``OUT/report.md`` with the agent x scenario table and three plots (PNG files beside it).

    Plots: success rate heatmap; driving score per cell with its 95 % interval; mean speed / limit
    against collision rate (speed vs safety). ``videos`` (``film_worst``'s entries) adds a list of
    the worst episodes with links to their videos.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = Path(out)
    ok = [c for c in cells if c["status"] == "ok"]
    agents = list(dict.fromkeys(c["agent"] for c in cells))
    label = {a: a if len(a) <= 28 or a.startswith("zoo:") else "/".join(Path(a).parts[-2:])[-28:] for a in agents}
    scen = list(dict.fromkeys(c["env_id"] for c in cells))
    short = {e: short_name(e) for e in scen}
    images = {}
    # 1. Success heatmap.
    grid_vals = np.full((len(agents), len(scen)), np.nan)
    for c in ok:
        grid_vals[agents.index(c["agent"]), scen.index(c["env_id"])] = c["success_rate"]
    fig, ax = plt.subplots(figsize=(max(4.5, 2.5 + 0.9 * len(scen)), 1.5 + 0.5 * len(agents)))
    im = ax.imshow(grid_vals, vmin=0.0, vmax=1.0, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(scen)), [short[e] for e in scen], rotation=45, ha="right")
    ax.set_yticks(range(len(agents)), [label[a] for a in agents])
    for (i, j), v in np.ndenumerate(grid_vals):
        ax.text(j, i, "skip" if np.isnan(v) else f"{v:.0%}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="success rate")
    ax.set_title("Success rate")
    fig.tight_layout()
    images["success_heatmap.png"] = fig
    # 2. Driving score with CIs, one group per scenario.
    fig, ax = plt.subplots(figsize=(max(6.0, 3.5 + 0.9 * len(scen)), 3.5))
    width = 0.8 / max(len(agents), 1)
    for k, agent in enumerate(agents):
        xs, ys, lo, hi = [], [], [], []
        for c in ok:
            if c["agent"] == agent:
                xs.append(scen.index(c["env_id"]) + (k - (len(agents) - 1) / 2) * width)
                ys.append(c["driving_score"])
                lo.append(c["driving_score"] - c["driving_score_ci"][0])
                hi.append(c["driving_score_ci"][1] - c["driving_score"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=label[agent])
    ax.set_xticks(range(len(scen)), [short[e] for e in scen], rotation=45, ha="right")
    ax.set_ylabel("driving score (95 % CI)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    images["driving_score.png"] = fig
    # 3. Speed vs safety.
    fig, ax = plt.subplots(figsize=(7, 4))
    for agent in agents:
        pts = [(c["speed_ratio"], c["collided_rate"]) for c in ok if c["agent"] == agent]
        if pts:
            ax.scatter(*zip(*pts, strict=True), label=label[agent])
    ax.set_xlabel("mean speed / speed limit")
    ax.set_ylabel("collision rate")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Speed vs safety (one point per scenario)")
    fig.tight_layout()
    images["speed_vs_safety.png"] = fig
    for name, fig in images.items():
        atomic_write(out / name, lambda tmp, fig=fig: fig.savefig(tmp, dpi=100, format="png"))
        plt.close(fig)

    lines = ["# Benchmark", ""]
    if command:
        lines += [f"`{command}`", ""]
    lines += [
        "Means over episodes with seeded 95 % bootstrap intervals; one row per agent and scenario "
        "(episode rows: `episodes.csv`, aggregates: `summary.json`).",
        "",
        "| agent | scenario | episodes | success | driving score | collisions | off road | speed / limit "
        "| infractions / km | median min TTC [s] |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        if c["status"] != "ok":
            lines.append(f"| {c['agent']} | {short[c['env_id']]} | 0 | skipped: {c['reason']} | | | | | | |")
            continue
        lines.append(
            f"| {c['agent']} | {short[c['env_id']]} | {c['episodes']} | {with_ci(c, 'success_rate', '.0%')} "
            f"| {with_ci(c, 'driving_score', '.3f')} | {c['collided_rate']:.0%} | {c['off_road_rate']:.0%} | {c['speed_ratio']:.2f} "
            f"| {c['infractions_per_km']:.2f} "
            f"| {c['median_min_ttc_s']:.2f} |"
        )
    lines += ["", *[f"![{n.removesuffix('.png').replace('_', ' ')}]({n})" for n in images], ""]
    if videos:
        lines += [
            "## Worst episodes",
            "",
            "| agent | scenario | seed | driving score | return | steps | ended by | video |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for v in videos:
            ended = (
                f"{v['collision_kind']} collision"
                if v["collision_kind"]
                else "off road"
                if v["off_road"]
                else "success"
                if v["success"]
                else "time limit"
            )
            lines.append(
                f"| {v['agent']} | {short.get(v['env_id'], v['env_id'])} | {v['seed']} | {v['driving_score']:.3f} | {v['return']:.1f} "
                f"| {int(v['steps'])} | {ended} | [{Path(v['video']).name}]({v['video']}) |"
            )
        lines.append("")
    path = out / "report.md"
    write_text(path, "\n".join(lines))
    return path
