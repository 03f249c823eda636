"""The perception net's error table (``drive-sim perception eval``): per task, split, scenario and weather, beside the trivial baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drive_sim.files import write_json, write_text

#: The table's rows: (metric, label, target or None, higher is better).
ROWS = (
    ("lane_offset_mae_m", "lane offset MAE [m]", 0.10, False),
    ("heading_mae_deg", "heading error MAE [deg]", 1.0, False),
    ("curvature_mae_1pm", "curvature MAE [1/m]", None, False),
    ("edge_mae_m", "road edge MAE [m]", None, False),
    ("lead_distance_mae_m", "lead distance MAE, leads within 50 m [m]", 1.0, False),
    ("lead_rel_speed_mae_mps", "lead relative speed MAE [m/s]", None, False),
    ("lead_f1", "lead presence F1, leads within 50 m", 0.95, True),
    ("lead_f1_all", "lead presence F1, every frame (leads to 60 m)", None, True),
    ("stop_distance_mae_m", "stop line distance MAE, within 40 m [m]", None, False),
    ("light_accuracy", "light state accuracy, within 40 m", 0.95, True),
    ("seg_miou", "segmentation mIoU (road, marking, vehicle)", 0.85, True),
    ("iou_road", "IoU road", None, True),
    ("iou_marking", "IoU marking", None, True),
    ("iou_vehicle", "IoU vehicle", None, True),
)


def _fmt(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def meets(value: float, target: float | None, higher: bool) -> bool | None:
    """Whether ``value`` meets ``target`` (None where there is no target or no value)."""
    if target is None or math.isnan(value):
        return None
    return value >= target if higher else value <= target


def cell(group: dict[str, Any], key: str, target: float | None, higher: bool) -> str:
    """One table cell: the net's figure, ✓/✗ against the target, the baseline's in brackets."""
    v, b = group["net"].get(key, math.nan), group["baseline"].get(key, math.nan)
    ok = meets(v, target, higher)
    return f"{_fmt(v)}{'' if ok is None else (' ✓' if ok else ' ✗')} ({_fmt(b)})"


def perception_eval(
    model: str | Path | None, data: str | Path, *, splits: Sequence[str] = ("test", "holdout"), out: str | Path | None = None
) -> dict[str, Any]:
    """Score a net (a run's ``model.pt``, or the shipped one for None) on ``data``.

    Groups: each split as a whole; within the test split, each weather and each scenario; the
    held-out scenario per weather. Every group has the baseline's figures beside the net's
    (training-set mean, majority class, per-pixel commonest class). ``out`` (``.json`` or ``.md``)
    writes the result; both are written when it has no suffix.
    """
    import perception
    from agents.datasets.collect import read_manifest
    from agents.datasets.reader import load_frames
    from perception.model import baseline_metrics, metrics, predict_all

    net = perception.load(model)
    size = net.size
    train, _ = load_frames(data, ("train",), size)
    manifest = read_manifest(data)
    result: dict[str, Any] = {"model": str(model) if model else "shipped", "data": str(data), "size": size, "groups": []}
    for split in splits:
        if not any(e["split"] == split for e in manifest["episodes"]):
            continue
        frames, entries = load_frames(data, (split,), size)
        pred = predict_all(net.net, frames)
        groups: list[tuple[str, np.ndarray]] = [(split, np.ones(len(frames), bool))]
        assert frames.group is not None
        weather = np.array([entries[g]["weather"] for g in frames.group])
        scen = np.array([entries[g]["env_id"].removeprefix("DriveSim/") for g in frames.group])
        groups += [(f"{split} / {w}", weather == w) for w in dict.fromkeys(weather.tolist())]
        if split != "holdout":
            groups += [(f"{split} / {s}", scen == s) for s in dict.fromkeys(scen.tolist())]
        for name, rows in groups:
            idx = np.flatnonzero(rows)
            sub = frames.subset(idx)
            p = {k: v[idx] for k, v in pred.items()}
            result["groups"].append(
                {
                    "group": name,
                    "frames": len(idx),
                    "net": metrics(p, sub.labels, sub.names, sub.seg),
                    "baseline": baseline_metrics(train, sub),
                }
            )
    if out:
        o = Path(out)
        if o.suffix in ("", ".json"):
            write_json(o.with_suffix(".json"), result)
        if o.suffix in ("", ".md"):
            write_text(o.with_suffix(".md"), markdown(result))
    return result


def markdown(result: dict[str, Any]) -> str:
    """The error table: one block per group, net beside baseline and the acceptance target."""
    lines = [f"Perception net `{result['model']}` ({result['size']} px) on `{result['data']}`.", ""]
    lines += ["| group | frames | " + " | ".join(label for _, label, _, _ in ROWS) + " |", "|---|---:|" + "---:|" * len(ROWS)]
    for g in result["groups"]:
        cells = [cell(g, key, target, higher) for key, _, target, higher in ROWS]
        lines.append(f"| {g['group']} | {g['frames']:,} | " + " | ".join(cells) + " |")
    targets = ", ".join(f"{label} {'≥' if higher else '≤'} {t}" for _, label, t, higher in ROWS if t is not None)
    lines += ["", f"Each cell: the net (the trivial baseline in brackets); ✓/✗ against the targets: {targets}.", ""]
    return "\n".join(lines)


__all__ = ["ROWS", "cell", "markdown", "meets", "perception_eval"]
