"""Measure the expert driver on 50 seeds per scenario and write docs/expert.md.

python scripts/expert_table.py [--episodes 50] [--workers 2] [--out docs/expert.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from agents.evaluation import as_dicts, evaluate_expert, summarise
from agents.perf import machine_info
from agents.runs import write_json, write_text

SCENARIOS = {
    "DriveSim/Highway-v0": 0.95,
    "DriveSim/Merge-v0": 0.95,
    "DriveSim/Intersection-v0": 0.95,
    "DriveSim/Roundabout-v0": 0.95,
    "DriveSim/LaneKeep-v0": 0.95,
    "DriveSim/Highway-Ice-v0": 0.90,
    "DriveSim/LaneKeep-Ice-v0": 0.90,
}


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["env_id"].split("/")[1] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["success"] for r in rows], width=0.4, label="success rate")
    ax.bar([i + 0.2 for i in x], [r["speed_ratio"] for r in rows], width=0.4, label="mean speed / limit")
    for i, name in enumerate(names):
        ax.plot([i - 0.4, i], [SCENARIOS["DriveSim/" + name]] * 2, color="k", lw=1)
    ax.set_xticks(list(x), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Expert driver, 50 evaluation seeds per scenario (black: success target)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50, help="seeds 0..N-1 per scenario (default 50)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--out", default="docs/expert.md", help="report path (default docs/expert.md)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.episodes < 1 or args.workers < 1:
        print("expert_table: error: --episodes and --workers must be at least 1", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    results = evaluate_expert(list(SCENARIOS), range(args.episodes), args.workers, progress=not args.no_progress)
    wall = time.perf_counter() - t0
    rows = summarise(results)
    out = Path(args.out)
    m = machine_info()
    image = out.parent / "images" / "expert.png"
    _plot(rows, image)
    lines = [
        "# The expert driver",
        "",
        f"Measured {m['date']} with `python scripts/expert_table.py --episodes {args.episodes} --workers {args.workers}` "
        f"({wall / 60:.1f} min wall clock on {m['logical_cores']} cores, {m['cpu']}).",
        "",
        "`agents/expert.py`: the lattice planner and pure pursuit + speed PID (`drive_sim/planning/`) on the "
        "`kinematics` observation only, `continuous` actions. Success is the environment's `is_success`: route "
        "complete (or, on the highways, the time limit reached) without a collision and without leaving the road. "
        f"Seeds 0-{args.episodes - 1} of each scenario.",
        "",
        "| scenario | episodes | success | target | collision | off road | route completion | speed / limit | plan ms | failed seeds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        target = SCENARIOS[r["env_id"]]
        ok = "" if r["success"] >= target else " (below)"
        failed = ", ".join(map(str, r["failed_seeds"][:12])) + (" ..." if len(r["failed_seeds"]) > 12 else "")
        lines.append(
            f"| `{r['env_id']}` | {r['episodes']} | {r['success']:.0%}{ok} | {target:.0%} | {r['collision']:.0%} | "
            f"{r['off_road']:.0%} | {r['route_completion']:.3f} | {r['speed_ratio']:.2f} | {r['plan_ms']:.1f} | {failed} |"
        )
    lines += ["", f"![expert]({image.relative_to(out.parent).as_posix()})", ""]
    write_text(out, "\n".join(lines))
    write_json(out.with_suffix(".json"), {"machine": m, "wall_s": wall, "summary": rows, "episodes": as_dicts(results)})
    for r in rows:
        print(f"{r['env_id']:32s} success {r['success']:.0%}  speed/limit {r['speed_ratio']:.2f}  plan {r['plan_ms']:.1f} ms")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
