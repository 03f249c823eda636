"""The driving comparison of docs/fusion.md: the expert on the truth vs on ``perceived``, a table and a bar chart.

python scripts/fusion_driving.py --bench BENCH_DIR [--fusion FUSION_DIR] --out docs/images/fusion_driving.png

BENCH_DIR is a ``drive-sim bench`` folder with ``expert`` rows (and ``expert@perceived`` rows, unless
FUSION_DIR, a ``drive-sim fusion`` folder driven by the expert, gives the perceived side: the same
episodes, ``run_episode`` on the same seeds). Prints the markdown table; writes the chart to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: The issue's bound on the gap and on the extra collisions (issue 19).
MAX_GAP = 0.05
MAX_EXTRA_COLLISIONS = 2
#: Scenarios the bound applies to.
TARGETS = ("DriveSim/Highway-v0", "DriveSim/LaneKeep-v0", "DriveSim/Merge-v0", "DriveSim/Intersection-v0", "DriveSim/Roundabout-v0")


def cells(bench: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(agent, env id) -> driving score, success, collisions, episodes, from a bench folder's rows (the bench's ``summarise``)."""
    from agents.evaluation.bench import read_rows
    from agents.evaluation.bench_report import summarise

    return {
        (c["agent"], c["env_id"]): {
            "driving_score": c["driving_score"],
            "success": c["success_rate"],
            "collisions": round(c["collided_rate"] * c["episodes"]),
            "episodes": float(c["episodes"]),
        }
        for c in summarise(read_rows(bench / "episodes.csv"))
        if c["status"] == "ok"
    }


def compare(bench: Path, fusion: Path | None) -> list[dict[str, Any]]:
    """One row per scenario with both sides."""
    c = cells(bench)
    perceived = {env_id: v for (agent, env_id), v in c.items() if agent == "expert@perceived"}
    if fusion is not None:
        data = json.loads((fusion / "fusion.json").read_text())
        for env_id, r in data["scenarios"].items():
            if "driving_score" in r:
                perceived[env_id] = {
                    "driving_score": r["driving_score"],
                    "success": r.get("success", float("nan")),
                    "collisions": float(r["collisions"]),
                    "episodes": float(r.get("episodes", float("nan"))),
                }
    rows = []
    for (agent, env_id), truth in sorted(c.items(), key=lambda kv: kv[0][1]):
        if agent != "expert" or env_id not in perceived:
            continue
        p = perceived[env_id]
        rows.append({"env_id": env_id, "truth": truth, "perceived": p, "gap": truth["driving_score"] - p["driving_score"]})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = "| scenario | driving score, truth | on perceived | gap | target | success, truth / perceived | collisions, truth / perceived |"
    lines = [head, "|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        t, p = r["truth"], r["perceived"]
        target = ""
        if r["env_id"] in TARGETS:
            met = r["gap"] <= MAX_GAP and p["collisions"] - t["collisions"] <= MAX_EXTRA_COLLISIONS
            target = f"<= {MAX_GAP}, <= +{MAX_EXTRA_COLLISIONS} collisions {'✓' if met else '✗'}"
        lines.append(
            f"| `{r['env_id']}` | {t['driving_score']:.3f} | {p['driving_score']:.3f} | {r['gap']:+.3f} | {target} | "
            f"{t['success']:.0%} / {p['success']:.0%} | {t['collisions']:.0f} / {p['collisions']:.0f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["env_id"].removeprefix("DriveSim/").removesuffix("-v0") for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows)), 3.6))
    ax.bar(x - 0.2, [r["truth"]["driving_score"] for r in rows], 0.4, label="expert on the truth", color="0.6")
    ax.bar(x + 0.2, [r["perceived"]["driving_score"] for r in rows], 0.4, label="expert on perceived", color="C0")
    for i, r in enumerate(rows):
        extra = r["perceived"]["collisions"] - r["truth"]["collisions"]
        if extra:
            ax.text(x[i] + 0.2, r["perceived"]["driving_score"] + 0.01, f"{extra:+.0f}", ha="center", fontsize=7, color="C3")
    ax.set_xticks(x, names, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("driving score")
    ax.set_title("driving score, truth vs perceived (red: collisions against the truth)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True, help="a drive-sim bench folder with expert rows")
    ap.add_argument("--fusion", default=None, help="a drive-sim fusion folder: the perceived side (default: the bench's perceived rows)")
    ap.add_argument("--out", required=True, help="the chart to write (.png)")
    args = ap.parse_args(argv)
    bench = Path(args.bench)
    if not (bench / "episodes.csv").is_file():
        print(f"fusion_driving: error: --bench {bench}: no episodes.csv there", file=sys.stderr)
        return 2
    fusion = Path(args.fusion) if args.fusion else None
    if fusion is not None and not (fusion / "fusion.json").is_file():
        print(f"fusion_driving: error: --fusion {fusion}: no fusion.json there", file=sys.stderr)
        return 2
    rows = compare(bench, fusion)
    if not rows:
        print("fusion_driving: error: no scenario has both an expert row and a perceived one", file=sys.stderr)
        return 1
    print(table(rows))
    plot(rows, Path(args.out))
    print(f"chart: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
