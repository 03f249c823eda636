"""docs/perception.md: the perception net's dataset, learning curves, error tables and sample frames.

Reads what the commands wrote (a dataset's ``manifest.json`` and ``collect.json``, a training run's
``epochs.csv``, ``status.json`` and ``test.json``, and an evaluation's JSON from ``drive-sim
perception eval``) and draws two pictures: the learning curves and test frames with the predicted
segmentation laid over them, predicted and true figures underneath.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.datasets.perception_compress import COMPARE
from agents.datasets.perception_eval import ROWS, _fmt, cell, meets
from drive_sim.files import atomic_write, copy_file, read_json, read_yaml, write_image, write_text
from perception.model import LEAD_BINS_M

#: Colours of the segmentation classes in the overlay (background, road, marking, vehicle, verge).
SEG_COLOURS = np.array([[0, 0, 0], [90, 90, 255], [255, 255, 0], [255, 40, 40], [40, 200, 40]], np.uint8)


def _read_epochs(run: Path) -> list[dict[str, float]]:
    with open(run / "epochs.csv", newline="") as fh:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in r.items()} for r in csv.DictReader(fh)]


def plot_curves(rows: Sequence[dict[str, float]], path: Path) -> None:
    """Training losses and validation figures per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for k in ("loss_total", "loss_regression", "loss_presence", "loss_light", "loss_segmentation"):
        if k in rows[0]:
            axes[0].plot(ep, [r[k] for r in rows], label=k.removeprefix("loss_"))
    axes[0].set_yscale("log")
    axes[0].set_title("training loss", fontsize=9)
    for k, label in (("val_lane_offset_mae_m", "lane offset MAE [m]"), ("val_heading_mae_deg", "heading MAE [deg] / 10")):
        if k in rows[0]:
            scale = 0.1 if "heading" in k else 1.0
            axes[1].plot(ep, [r[k] * scale for r in rows], label=label)
    axes[1].axhline(0.1, color="k", lw=0.8, ls=":")
    axes[1].set_title("validation: lane (target 0.1 dotted)", fontsize=9)
    for k, label in (("val_lead_f1", "lead F1"), ("val_light_accuracy", "light accuracy (<40 m)"), ("val_seg_miou", "seg mIoU")):
        if k in rows[0]:
            axes[2].plot(ep, [r[k] for r in rows], label=label)
    axes[2].set_ylim(0, 1.02)
    axes[2].set_title("validation: detection and segmentation", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def sample_frames(model: Any, data: str | Path, path: Path, per_weather: int = 1, scale: int = 3) -> None:
    """A grid of test frames (one per weather, and one held-out), each above its overlay, with predicted vs true figures."""
    import cv2

    from agents.datasets.reader import load_frames
    from envs.labels import LIGHT_STATES

    frames, entries = load_frames(data, ("test",), model.size)
    assert frames.group is not None
    col = {n: i for i, n in enumerate(frames.names)}
    picks: list[int] = []
    rng = np.random.default_rng(0)
    for weather in ("dry", "rain", "fog", "night", "ice"):
        idx = np.flatnonzero([entries[g]["weather"] == weather for g in frames.group])
        # Prefer frames with a lead or a light in range: they show the most.
        busy = idx[(frames.labels[idx, col["lead_present"]] > 0) | (frames.labels[idx, col["light_state"]] > 0)]
        pool = busy if len(busy) else idx
        picks += rng.choice(pool, size=min(per_weather, len(pool)), replace=False).tolist() if len(pool) else []
    sub = frames.subset(np.asarray(picks, int))
    pred = model(sub.rgb)
    tiles = []
    s = model.size * scale
    for i in range(len(sub)):
        rgb = cv2.resize(sub.rgb[i], (s, s), interpolation=cv2.INTER_NEAREST)
        cls = cv2.resize(pred["segmentation"][i], (s, s), interpolation=cv2.INTER_NEAREST)
        over = np.where(cls[..., None] > 0, 0.55 * rgb + 0.45 * SEG_COLOURS[cls], rgb).astype(np.uint8)  # background left as it is
        text = np.full((78, s, 3), 255, np.uint8)
        lab = sub.labels[i]
        lines = [
            entries[sub.group[i]]["env_id"].removeprefix("DriveSim/") + " / " + entries[sub.group[i]]["weather"],
            f"offset {pred['lane_offset_m'][i]:+.2f} m (true {lab[col['lane_offset_m']]:+.2f})",
            f"lead {'yes' if pred['lead_present'][i] else 'no'} {pred['lead_distance_m'][i]:.1f} m"
            f" (true {'yes' if lab[col['lead_present']] else 'no'} {lab[col['lead_distance_m']]:.1f})",
            f"light {LIGHT_STATES[int(pred['light_state'][i])]} (true {LIGHT_STATES[int(lab[col['light_state']])]})",
        ]
        for k, line in enumerate(lines):
            cv2.putText(text, line, (4, 16 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([rgb, over, text], axis=0))
    grid = np.concatenate(tiles, axis=1) if tiles else np.zeros((8, 8, 3), np.uint8)
    write_image(path, grid)


def _table(groups: Sequence[dict[str, Any]]) -> list[str]:
    """Rows: metrics; columns: groups (net, baseline in brackets)."""
    head = "| figure | target | " + " | ".join(f"{g['group']} ({g['frames']:,})" for g in groups) + " |"
    out = [head, "|---|---:|" + "---:|" * len(groups)]
    for key, label, target, higher in ROWS:
        cells = [cell(g, key, target, higher) for g in groups]
        t = "" if target is None else f"{'≥' if higher else '≤'} {target}"
        out.append(f"| {label} | {t} | " + " | ".join(cells) + " |")
    return out


def missed(groups: Sequence[dict[str, Any]], names: Sequence[str] = ("test", "test / dry")) -> list[str]:
    """One line per acceptance target the net misses in the named groups."""
    out = []
    for g in groups:
        if g["group"] not in names:
            continue
        for key, label, target, higher in ROWS:
            v = g["net"].get(key, math.nan)
            if meets(v, target, higher) is False:
                out.append(
                    f"- {g['group']}: {label} {v:.3f} (target {'≥' if higher else '≤'} {target}; baseline {_fmt(g['baseline'].get(key))})"
                )
    return out


#: The figures of the study tables: the compression table's rows (test.json key, label, higher is better) for the acceptance figures.
STUDY_KEYS = tuple(
    row
    for row in COMPARE
    if row[0] in ("lane_offset_mae_m", "heading_mae_deg", "lead_distance_mae_m", "lead_f1", "light_accuracy", "seg_miou")
)
#: Which single-task net gives each figure.
SINGLE_TASK = {
    "lane_offset_mae_m": "regression",
    "heading_mae_deg": "regression",
    "lead_distance_mae_m": "regression",
    "lead_f1": "presence",
    "light_accuracy": "light",
    "seg_miou": "segmentation",
}
FRACTIONS = (("0.01", "1 %"), ("0.1", "10 %"), ("1.0", "100 %"))


def _test(run: Path) -> dict[str, float] | None:
    path = run / "test.json"
    return read_json(path, "test figures")["test"]["net"] if path.is_file() else None


def _frames_used(run: Path) -> int | None:
    from perception import read_net_file

    try:
        return int(read_net_file(run / "model.pt")["meta"]["train_frames"])
    except (ValueError, KeyError):
        return None


def label_efficiency(studies: Path) -> list[str]:
    """The label-efficiency table from ``le-{scratch,pre}-{fraction}`` run folders (missing runs say so)."""
    head = "| labels | frames with labels | start | " + " | ".join(label for _, label, _ in STUDY_KEYS) + " |"
    lines = [head, "|---|---:|---|" + "---:|" * len(STUDY_KEYS)]
    for frac, label in FRACTIONS:
        for start, name in (("scratch", "from scratch"), ("pre", "pre-trained")):
            run = studies / f"le-{start}-{frac}"
            t = _test(run)
            if t is None:
                lines.append(f"| {label} | | {name} | " + " | ".join("not run" for _ in STUDY_KEYS) + " |")
                continue
            n = _frames_used(run)
            lines.append(f"| {label} | {n:,} | {name} | " + " | ".join(_fmt(t.get(k, math.nan)) for k, _, _ in STUDY_KEYS) + " |")
    return lines


def task_study(studies: Path) -> list[str]:
    """Single-task vs multi-task (fixed and uncertainty weights) on the same step budget."""
    multi, unc = _test(studies / "le-scratch-1.0"), _test(studies / "mt-uncertainty")
    single = {t: _test(studies / f"st-{t}") for t in set(SINGLE_TASK.values())}
    lines = [
        "| figure | multi-task, fixed weights | multi-task, uncertainty weights | single-task net (its head) |",
        "|---|---:|---:|---:|",
    ]
    for key, label, _ in STUDY_KEYS:
        task = SINGLE_TASK[key]
        st = single.get(task)
        cells = [_fmt(m.get(key, math.nan)) if m else "not run" for m in (multi, unc)]
        cells.append(f"{_fmt(st.get(key, math.nan))} ({task})" if st else f"not run ({task})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


#: The page's sections, in page order: the key ``only`` takes, and the headings each writes.
SECTIONS = {
    "commands": ("Commands",),
    "dataset": ("Dataset",),
    "training": ("Training",),
    "test": ("Test figures (held-out seeds), beside the trivial baseline", "Targets missed"),
    "samples": ("Sample test frames",),
    "size": ("Nets side by side: lead head, regression loss, camera size",),
    "studies": ("Multi-task vs single-task", "Self-supervised pre-training and label efficiency"),
    "rl": ("Pre-training for RL: PPO from camera frames on LaneKeep-v0",),
    "compress": ("Compression",),
}
#: Headings a section had on earlier pages: rewriting the section replaces them.
FORMER_HEADINGS = {"Camera size: 84 against a larger frame": "Nets side by side: lead head, regression loss, camera size"}


def _blocks(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """A page as (lines before the first ``## `` heading, {heading: its lines, heading included})."""
    head: list[str] = []
    blocks: dict[str, list[str]] = {}
    current = head
    for line in text.splitlines():
        if line.startswith("## "):
            current = blocks.setdefault(line[3:].strip(), [])
        current.append(line)
    return head, blocks


def merge_sections(old: str, new: str, note: str) -> str:
    """``old`` with each ``## `` section of ``new`` put in its place (new ones in ``SECTIONS`` order) and ``note`` under its date line.

    The page's other sections keep what the runs that made them measured; ``note`` says which
    sections this run rewrote, and when.
    """
    head, blocks = _blocks(old)
    _, fresh = _blocks(new)
    blocks = {h: b for h, b in blocks.items() if FORMER_HEADINGS.get(h) not in fresh}
    order = [h for hs in SECTIONS.values() for h in hs]
    unknown = [h for h in fresh if h not in order]
    if unknown:
        raise ValueError(f"sections: {unknown[0]!r} is not a heading of the page")
    merged = {**blocks, **fresh}
    known = [h for h in order if h in merged]
    rest = [h for h in blocks if h not in order]  # headings of an older page layout stay where they were, at the end
    head = [line for line in head if not line.startswith("Sections rewritten ")]
    at = next((k + 1 for k, line in enumerate(head) if line.startswith("Page made ")), len(head))
    head = [*head[:at], "", note, "", *head[at:]]
    lines = [line for k, line in enumerate(head) if line or (k and head[k - 1])]  # no double blank lines
    for h in (*known, *rest):
        lines += merged[h]
    return "\n".join(lines).rstrip() + "\n"


def size_study(compare: Sequence[tuple[str | Path, str | Path | None]], groups: Sequence[str] = ("test", "test / dry")) -> list[str]:
    """Nets side by side: ``compare`` holds (evaluation JSON, its run folder, a column label, or None for the shipped net).

    A run folder's column says its epochs, training time, regression loss and lead head; a label
    stands for a net whose run is not at hand (a former shipped net).
    """
    cols = []
    for evaluation, run in compare:
        ev = read_json(Path(evaluation), "evaluation")
        if run is not None and Path(run).is_dir():
            status = read_json(Path(run) / "status.json", "status")
            conf = read_yaml(Path(run) / "config.yaml", "config") if (Path(run) / "config.yaml").is_file() else {}
            beta = float(conf.get("reg_beta", 1.0))
            what = f"{int(status.get('steps', 0))} epochs, {status.get('train_wall_s', 0) / 60:.0f} min"
            what += f", reg-beta {beta:g}" if beta != 1.0 else ""
            what += f", {conf['lead_head']} lead head" if conf.get("lead_head", "fc") != "fc" else ""
        elif run is not None:
            if "/" in str(run) or "\\" in str(run):  # a path, not a label: a mistyped run folder must not become a column title
                raise ValueError(f"compare: {run} is not a run folder (give an existing run folder, or a label without a slash)")
            what = str(run)
        else:
            what = "the shipped net"
        by = {g["group"]: g for g in ev["groups"]}
        missing = [g for g in groups if g not in by]
        if missing:
            raise ValueError(f"{evaluation}: no group {missing[0]!r} (drive-sim perception eval writes it)")
        cols += [(f"{ev['size']} px, {what}: {g} ({by[g]['frames']:,})", by[g]) for g in groups]
    lines = ["| figure | target | " + " | ".join(c for c, _ in cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    bins = tuple((f"lead_distance_mae_m_{a:g}_{b:g}", f"lead distance MAE, leads {a:g}-{b:g} m [m]", None, False) for a, b in LEAD_BINS_M)
    for key, label, target, higher in (*ROWS, *bins):
        t = "" if target is None else f"{'≥' if higher else '≤'} {target}"
        lines.append(f"| {label} | {t} | " + " | ".join(cell(g, key, target, higher) for _, g in cols) + " |")
    return lines


def perception_page(
    run: str | Path | None,
    data: str | Path | None,
    evaluation: str | Path | None,
    out: str | Path,
    *,
    commands: Sequence[str] = (),
    notes: Sequence[str] = (),
    compress: str | Path | None = None,
    studies: str | Path | None = None,
    rl: str | Path | None = None,
    study_notes: Sequence[str] = (),
    compress_notes: Sequence[str] = (),
    compare: Sequence[tuple[str | Path, str | Path | None]] = (),
    size_notes: Sequence[str] = (),
    only: Sequence[str] = (),
) -> Path:
    """Write the page to ``out`` (its pictures beside it in ``images/perception/``).

    ``only``: rewrite just these sections (keys of ``SECTIONS``) of the page already at ``out``
    and keep the rest as the runs that made them left it, with a line under the date that says
    which sections were rewritten and when; only those sections' inputs are read.
    """
    import torch

    from agents.reports.perf import machine_info

    bad = [k for k in only if k not in SECTIONS]
    if bad:
        raise ValueError(f"only: unknown section {bad[0]!r}; allowed: {', '.join(SECTIONS)}")
    want = set(only or SECTIONS)
    out = Path(out)
    if only and not out.is_file():
        raise ValueError(f"out: {out} does not exist; --only rewrites sections of an existing page")
    for key, given, flag in (
        ("training", run, "run"),
        ("test", evaluation, "eval"),
        ("samples", run, "run"),
        ("dataset", data, "data"),
        ("samples", data, "data"),
    ):
        if key in want and given is None:
            raise ValueError(f"{flag}: the {key} section needs it")
    images = out.parent / "images" / "perception"
    m = machine_info()
    lines: list[str] = []
    model = None
    if run is not None and want & {"training", "samples"}:
        import perception

        model = perception.load(Path(run) / "model.pt")
    if not only:
        size = model.size if model is not None else 84
        lines += [
            "# Camera perception",
            "",
            f"The multi-task net reads the {size}x{size} ego camera frame and gives the lane (offset, heading, curvature,",
            "edges), the lead vehicle (present, gap, relative speed), the next stop line (distance, light state) and a",
            "per-pixel segmentation (road, marking, vehicle, verge, background). `perception.load()` gives the shipped net.",
            "",
            f"Page made {m['date']} on {m['cpu']} ({m['logical_cores']} cores), Python {m['python']}, torch {torch.__version__}.",
            "",
        ]
    if "commands" in want:
        lines += ["## Commands", "", "```bash", *commands, "```", ""]
    if "dataset" in want:
        data = Path(data)
        manifest = read_json(data / "manifest.json", "dataset manifest")
        collect = read_json(data / "collect.json", "collect timings") if (data / "collect.json").exists() else {}
        cfg = manifest["config"]
        lines += [
            "## Dataset",
            "",
            f"{len(manifest['episodes'])} episodes over {len(set(e['env_id'] for e in manifest['episodes']))} scenarios "
            f"(held out: {cfg.get('holdout') or 'none'}), weathers {', '.join(cfg['weathers'])}, sizes {cfg['sizes']} px, "
            f"one frame every {cfg['every']} control steps, up to {cfg['max_steps']} steps; frames: "
            + ", ".join(f"{k} {v:,}" for k, v in manifest["frames"].items())
            + ".",
        ]
        if collect:
            lines.append(
                f"Collected in {collect['wall_s'] / 60:.1f} min with {collect['workers']} workers ({collect['frames_per_s']:.0f} frames/s)."
            )
        lines.append("")
    if "training" in want:
        assert model is not None
        status = read_json(Path(run) / "status.json", "status")
        plot_curves(_read_epochs(Path(run)), images / "curves.png")
        lines += [
            "## Training",
            "",
            f"{int(status.get('steps', 0))} epochs, {status.get('train_wall_s', 0) / 60:.1f} min on 2 threads; model.pt is epoch "
            f"{model.meta.get('epoch')} (best validation score).",
            "",
            "![learning curves](images/perception/curves.png)",
            "",
        ]
    if "test" in want:
        groups = read_json(Path(evaluation), "evaluation")["groups"]
        whole = [g for g in groups if "/" not in g["group"]]
        weathers = [
            g for g in groups if g["group"].startswith("test / ") and g["group"].split(" / ")[1] in ("dry", "rain", "fog", "night", "ice")
        ]
        held = [g for g in groups if g["group"].startswith("holdout")]
        scen = [g for g in groups if g["group"].startswith("test / ") and g not in weathers]
        lines += [
            "## Test figures (held-out seeds), beside the trivial baseline",
            "",
            "Each cell: the net, then in brackets the baseline (training-set mean, majority class, per-pixel commonest class).",
            "",
            *_table(whole),
            "",
            "### By weather (test split)",
            "",
            *_table(weathers),
            "",
        ]
        if held:
            lines += ["### The held-out scenario, by weather", "", *_table(held), ""]
        if scen:
            lines += ["### By scenario (test split)", "", *_table(scen), ""]
        miss = missed(groups)
        lines += ["## Targets missed", "", *(miss or ["None on the test split or in clear weather."]), "", *notes, ""]
    if "samples" in want:
        sample_frames(model, data, images / "samples.png")
        lines += [
            "## Sample test frames",
            "",
            "Frame, predicted segmentation over it, predicted vs true figures:",
            "",
            "![samples](images/perception/samples.png)",
            "",
        ]
    if "size" in want and compare:
        lines += [
            "## Nets side by side: lead head, regression loss, camera size",
            "",
            "Nets trained on the same episodes and scored on the same test seeds: the shipped net beside the one it replaced",
            "and shorter runs; the dataset holds every frame at each collected size (the render cost of each: docs/performance.md).",
            "",
            *size_study(compare),
            "",
            *size_notes,
            "",
        ]
    if "studies" in want and studies is not None:
        st = Path(studies)
        ref = st / "le-scratch-1.0"
        conf = read_yaml(ref / "config.yaml", "config") if (ref / "config.yaml").is_file() else {}
        steps, batch = int(conf.get("steps", 0)), int(conf.get("batch_size", 64))
        frames = _frames_used(ref) if (ref / "model.pt").is_file() else None
        passes = f", {steps * batch / frames:.2f} passes over the training split" if frames and steps else ""
        lines += [
            "## Multi-task vs single-task",
            "",
            f"Every net here trains for the same {steps:,} optimiser steps of {batch} frames (`--steps {steps}`{passes}), so the",
            "figures compare the heads at one small budget, far below the shipped net's 8 full epochs.",
            "",
            *task_study(st),
            "",
            "## Self-supervised pre-training and label efficiency",
            "",
            "The encoder is pre-trained by masked reconstruction on the training split's frames without labels",
            "(`drive-sim perception pretrain`; why this method: `perception/pretrain.py`), then the whole net is trained on a",
            "seeded share of the training episodes' labels (`--label-fraction`), for the same number of steps whatever the share.",
            "",
            *label_efficiency(st),
            "",
        ]
        if (st / "pretrain-s0" / "reconstructions.png").is_file():
            copy_file(st / "pretrain-s0" / "reconstructions.png", images / "reconstructions.png")
            lines += [
                "Validation frames: masked input, reconstruction, original:",
                "",
                "![reconstructions](images/perception/reconstructions.png)",
                "",
            ]
    if "rl" in want and rl is not None:
        rl = Path(rl)
        lines += ["## Pre-training for RL: PPO from camera frames on LaneKeep-v0", "", (rl / "rl_pretrain.md").read_text().strip(), ""]
        copy_file(rl / "rl_pretrain.png", images / "rl_pretrain.png")
        lines += ["![PPO validation curves](images/perception/rl_pretrain.png)", ""]
    if "rl" in want and study_notes:
        lines += [*study_notes, ""]
    if "compress" in want and compress is not None:
        from agents.datasets.perception_compress import markdown as compress_markdown

        res = read_json(Path(compress) / "compress.json", "compression run")
        lines += ["## Compression", "", compress_markdown(res).strip(), "", *compress_notes, ""]
    text = "\n".join(lines)
    if only:
        names = ", ".join(h for k in SECTIONS if k in want for h in SECTIONS[k])
        by = f"`perception_page.py --only {','.join(only)}`"
        note = f"Sections rewritten {m['date']} on {m['cpu']} ({m['logical_cores']} cores) by {by}: {names}."
        text = merge_sections(out.read_text(encoding="utf-8"), text, note)
    write_text(out, text)
    return out


__all__ = ["SECTIONS", "label_efficiency", "merge_sections", "perception_page", "plot_curves", "sample_frames", "size_study", "task_study"]
