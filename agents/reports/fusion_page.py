"""``drive-sim fusion``: the localisation and tracking figures of the ``perceived`` observation, per scenario.

Runs ``agents.evaluation.fusion_eval.fusion_episode`` over scenarios x seeds in a process pool and
writes, into the output folder: ``fusion.json`` (every scenario's summary and the command's
settings), ``fusion.md`` (the table) and ``fusion.png`` (error over time with the filter's own
2-sigma bound, per scenario). A run with fewer than ``FULL_EPISODES`` episodes says it is partial
in both files.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drive_sim.files import write_text

#: Episodes per scenario of the acceptance figures (issue 19).
FULL_EPISODES = 50

COLUMNS = (
    ("position_rmse_m", "position RMSE [m]", "{:.2f}"),
    ("gnss_rmse_m", "raw GNSS RMSE [m]", "{:.2f}"),
    ("gnss_over_filter", "GNSS / filter", "{:.1f}x"),
    ("lateral_rmse_m", "lateral RMSE [m]", "{:.3f}"),
    ("heading_rmse_deg", "heading RMSE [deg]", "{:.2f}"),
    ("nees_mean", "mean NEES (4 states)", "{:.2f}"),
    ("nees_share_inside", "periods inside 95 % NEES bounds", "{:.0%}"),
    ("outage_max_err_m", "max error in a GNSS outage [m]", "{:.2f}"),
    ("outage_growth_max_m", "worst rise of the error through the outage [m]", "{:.2f}"),
    ("outage_growth_median_m", "median rise of the error through the outage [m]", "{:.2f}"),
    ("mota", "MOTA (seen)", "{:.3f}"),
    ("idf1_mean", "IDF1 (seen)", "{:.3f}"),
    ("all_mota", "MOTA (all within 50 m)", "{:.3f}"),
    ("id_switches", "id switches", "{:d}"),
    ("route_completion", "route completion", "{:.2f}"),
    ("collisions", "collisions", "{:d}"),
    ("driving_score", "driving score", "{:.3f}"),
    ("red_lights_run", "red lights run per episode", "{:.2f}"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return fmt.format(value)


def fusion_table(results: dict[str, dict[str, Any]]) -> str:
    """The markdown table: one row per scenario."""
    head = "| scenario | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    rows = [f"| `{env_id}` | " + " | ".join(_cell(r.get(k), fmt) for k, _, fmt in COLUMNS) + " |" for env_id, r in results.items()]
    return "\n".join([head, rule, *rows])


def _plot(episodes: dict[str, list[Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(episodes)
    fig, axes = plt.subplots(n, 2, figsize=(11, 2.6 * n), squeeze=False)
    for row, (env_id, eps) in zip(axes, episodes.items(), strict=True):
        steps = min(len(e.time_s) for e in eps)
        if steps == 0:
            continue
        t = eps[0].time_s[:steps]
        pos = np.stack([e.pos_err_m[:steps] for e in eps])
        std = np.stack([e.pos_std_m[:steps] for e in eps])
        gnss = np.stack([e.gnss_err_m[:steps] for e in eps])
        ax = row[0]
        ax.plot(t, np.sqrt(np.nanmean(gnss**2, axis=0)), color="0.6", lw=1, label="raw GNSS (RMS over episodes)")
        ax.plot(t, np.sqrt(np.mean(pos**2, axis=0)), color="C0", lw=1.5, label="filter (RMS)")
        ax.plot(t, 2 * np.mean(std, axis=0), color="C3", lw=1, ls="--", label="filter's 2-sigma (larger axis)")
        outage = ~np.stack([e.gnss_valid[:steps] for e in eps]).all(axis=0)
        if outage.any():
            ax.fill_between(t, 0, 1, where=outage, transform=ax.get_xaxis_transform(), color="C1", alpha=0.15, label="GNSS outage")
        ax.set_title(f"{env_id}: position error", fontsize=9)
        ax.set_xlabel("time [s]")
        ax.set_ylabel("m")
        ax.legend(fontsize=7, loc="upper right")
        ax = row[1]
        for e in eps[:5]:
            ax.plot(t, e.lateral_err_m[:steps], lw=0.7)
        ax.axhline(0.3, color="k", lw=0.6, ls=":")
        ax.axhline(-0.3, color="k", lw=0.6, ls=":")
        ax.set_title(f"{env_id}: lateral error, five episodes (target +-0.3 m dotted)", fontsize=9)
        ax.set_xlabel("time [s]")
        ax.set_ylabel("m")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)


def run_fusion(
    scenarios: Sequence[str],
    *,
    episodes: int = FULL_EPISODES,
    seed_start: int = 0,
    workers: int = 1,
    agent: str = "expert",
    out: str | Path = "fusion",
    progress: bool = True,
) -> dict[str, Any]:
    """Figures for every scenario; writes ``out``/fusion.json, fusion.md and fusion.png.

    Raises:
        ValueError: bad arguments (one line).
    """
    from tqdm import tqdm

    import envs
    from agents.evaluation.fusion_eval import fusion_episode, summarise
    from agents.evaluation.pool import pool_map

    if episodes < 1:
        raise ValueError(f"episodes: must be at least 1, got {episodes}")
    if seed_start < 0:
        raise ValueError(f"seed_start: must be non-negative, got {seed_start}")
    ids = [envs.env_id(s) for s in scenarios]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"fusion: {len(ids)} scenario(s) x {episodes} seeds from {seed_start}, agent {agent}, into {out}")
    jobs = [(env_id, seed, agent) for env_id in ids for seed in range(seed_start, seed_start + episodes)]
    t0 = time.perf_counter()
    with tqdm(total=len(jobs), desc="fusion episodes", unit="ep", disable=not progress) as bar:
        eps = pool_map(fusion_episode, jobs, workers, lambda _r: bar.update())
    by_id: dict[str, list[Any]] = {env_id: [] for env_id in ids}
    for e in eps:
        by_id[e.scenario].append(e)
    results = {env_id: summarise(v) for env_id, v in by_id.items()}
    partial = episodes < FULL_EPISODES
    meta = {
        "command": f"drive-sim fusion --scenarios {','.join(scenarios)} --episodes {episodes} --seed-start {seed_start} --agent {agent}",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "wall_s": round(time.perf_counter() - t0, 1),
        "partial": partial,
    }
    payload = {"meta": meta, "scenarios": results}
    write_text(out / "fusion.json", json.dumps(payload, indent=2))
    _plot(by_id, out / "fusion.png")
    note = f"**Partial run: {episodes} episode(s) per scenario; the acceptance figures use {FULL_EPISODES}.**\n\n" if partial else ""
    md = (
        f"# Fusion figures\n\n{note}`{meta['command']}` ({meta['date']}, {meta['wall_s']:.0f} s)\n\n"
        f"{fusion_table(results)}\n\n![error over time](fusion.png)\n"
    )
    write_text(out / "fusion.md", md)
    for env_id, r in results.items():
        print(
            f"{env_id}: position {r['position_rmse_m']:.2f} m (GNSS {r['gnss_rmse_m']:.2f} m, {r['gnss_over_filter']:.1f}x), "
            f"lateral {r['lateral_rmse_m']:.3f} m, heading {r['heading_rmse_deg']:.2f} deg, NEES {r['nees_mean']:.2f}, "
            f"MOTA {r.get('mota', math.nan):.3f}"
        )
    return payload


__all__ = ["FULL_EPISODES", "fusion_table", "run_fusion"]
