"""docs/expert.md: the expert driver on every scenario of the planning issue, with its success targets.

Episodes come from ``agents.evaluation.episodes.evaluate_expert`` (the one episode loop, the expert's
planning timed) and are summarised per scenario with the one aggregate (``agents.evaluation.metrics``):
success, collision and off-road rates, route completion, speed / limit and the planner's time per step.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.evaluation.episodes import evaluate_expert
from agents.evaluation.metrics import EpisodeSummary, aggregate
from agents.reports.perf import machine_info
from drive_sim.files import atomic_write, write_json, write_text

#: Scenario -> the success rate the expert must reach there.
SCENARIOS = {
    "DriveSim/Highway-v0": 0.95,
    "DriveSim/Merge-v0": 0.95,
    "DriveSim/Intersection-v0": 0.95,
    "DriveSim/Roundabout-v0": 0.95,
    "DriveSim/LaneKeep-v0": 0.95,
    "DriveSim/Highway-Ice-v0": 0.90,
    "DriveSim/LaneKeep-Ice-v0": 0.90,
}


def expert_rows(episodes: Sequence[EpisodeSummary]) -> list[dict[str, Any]]:
    """One row per scenario (in the order the episodes come): the aggregate, its env id and the seeds that failed."""
    rows = []
    for env_id in dict.fromkeys(e.env_id for e in episodes):
        es = [e for e in episodes if e.env_id == env_id]
        rows.append({"env_id": env_id, **aggregate(es), "failed_seeds": [e.seed for e in es if not e.success]})
    return rows


def _plot(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["env_id"].split("/")[1] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["success_rate"] for r in rows], width=0.4, label="success rate")
    ax.bar([i + 0.2 for i in x], [r["speed_ratio"] for r in rows], width=0.4, label="mean speed / limit")
    for i, name in enumerate(names):
        ax.plot([i - 0.4, i], [SCENARIOS["DriveSim/" + name]] * 2, color="k", lw=1)
    ax.set_xticks(list(x), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Expert driver, 50 evaluation seeds per scenario (black: success target)", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def write_expert_page(out: str | Path, *, episodes: int = 50, workers: int = 2, progress: bool = True) -> list[dict[str, Any]]:
    """Drive the expert on seeds 0..episodes-1 of every scenario, write ``out`` (+ ``.json`` and its plot); returns the rows."""
    t0 = time.perf_counter()
    results = evaluate_expert(list(SCENARIOS), range(episodes), workers, progress=progress)
    wall = time.perf_counter() - t0
    rows = expert_rows(results)
    out = Path(out)
    m = machine_info()
    image = out.parent / "images" / "expert.png"
    _plot(rows, image)
    lines = [
        "# The expert driver",
        "",
        f"Measured {m['date']} with `python scripts/expert_table.py --out {out.as_posix()} --episodes {episodes} --workers {workers}` "
        f"({wall / 60:.1f} min wall clock on {m['logical_cores']} cores, {m['cpu']}).",
        "",
        "`agents/policies/expert.py`: the lattice planner and pure pursuit + speed PID (`drive_sim/planning/`) on the "
        "`kinematics` observation only, `continuous` actions. Success is the environment's `is_success`: route "
        "complete (or, on the highways, the time limit reached) without a collision and without leaving the road. "
        f"Seeds 0-{episodes - 1} of each scenario.",
        "",
        "| scenario | episodes | success | target | collision | off road | route completion | speed / limit | plan ms | failed seeds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        target = SCENARIOS[r["env_id"]]
        ok = "" if r["success_rate"] >= target else " (below)"
        failed = ", ".join(map(str, r["failed_seeds"][:12])) + (" ..." if len(r["failed_seeds"]) > 12 else "")
        lines.append(
            f"| `{r['env_id']}` | {r['episodes']} | {r['success_rate']:.0%}{ok} | {target:.0%} | {r['collided_rate']:.0%} | "
            f"{r['off_road_rate']:.0%} | {r['route_completion']:.3f} | {r['speed_ratio']:.2f} | {r['act_ms']:.1f} | {failed} |"
        )
    lines += ["", f"![expert]({image.relative_to(out.parent).as_posix()})", ""]
    write_text(out, "\n".join(lines))
    episodes_json = [dataclasses.asdict(e) for e in results]
    write_json(out.with_suffix(".json"), {"machine": m, "wall_s": wall, "summary": rows, "episodes": episodes_json})
    return rows
