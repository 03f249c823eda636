"""docs/results.md: the learning table, its curves and the training throughput, from finished run folders.

Each row of the table is a shipped config trained by one command (``drive-sim train --scenario S
--algo A --obs O``) and scored on its final test (seeds 0, 1, ...; the model is the best validated
one, picked on seeds 100-199). The targets are the agents issue's.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agents.training.runs import read_status
from drive_sim.files import atomic_write, copy_file, write_json, write_text

#: The light records of a run kept beside the page (the models go to the zoo, the rest stays out of git).
KEPT = ("config.yaml", "status.json", "eval.json", "eval.csv", "evaluations.csv", "train_episodes.csv", "learning_curve.png")


@dataclass(frozen=True)
class Row:
    """One benchmark row: which shipped config, what it must reach."""

    config: str
    title: str
    target: str
    met: Callable[[Mapping[str, Any]], bool]
    metric: Callable[[Mapping[str, Any]], str]


ROWS = (
    Row(
        "lanekeep-q-lidar",
        "Q-learning, LaneKeep-v0, discrete steering",
        "route completion >= 90 % on 20 seeds, <= 15 min on one core",
        lambda s: s["mean_route_completion"] >= 0.90 and s.get("train_wall_s", 1e9) <= 900,
        lambda s: f"route completion {s['mean_route_completion']:.1%}, success {s['success_rate']:.1%}",
    ),
    Row(
        "highway-dqn-kinematics",
        "DQN, Highway-v0, meta actions, kinematics",
        "success >= 90 % and speed >= 75 % of the limit on 50 seeds, <= 100k steps",
        lambda s: s["success_rate"] >= 0.90 and s["mean_speed_ratio"] >= 0.75 and s["model_steps"] <= 100_000,
        lambda s: f"success {s['success_rate']:.1%}, speed {s['mean_speed_ratio']:.1%} of limit",
    ),
    Row(
        "highway-ppo-lidar",
        "PPO, Highway-v0, lidar, continuous",
        "success >= 85 % on 50 seeds, <= 1M steps",
        lambda s: s["success_rate"] >= 0.85 and s["model_steps"] <= 1_000_000,
        lambda s: f"success {s['success_rate']:.1%}, collisions {s['collision_rate']:.1%}, off road {s['off_road_rate']:.1%}",
    ),
    Row(
        "lanekeep-ppo-camera",
        "PPO, LaneKeep-v0, camera 84x84, continuous",
        "route completion >= 80 % on 20 seeds",
        lambda s: s["mean_route_completion"] >= 0.80,
        lambda s: f"route completion {s['mean_route_completion']:.1%}, success {s['success_rate']:.1%}",
    ),
)


def run_summary(run: Path) -> dict[str, Any]:
    """The final test summary of a run with its steps, the tested model's steps and training wall-clock.

    ``model_steps`` is the step count the tested model had: its validation round's for the best
    validated model (the first round with the best score, as the callback keeps it), else the run's.
    """
    from agents.training.callbacks import score_row

    summary = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    status = read_status(run)
    steps = int(status.get("steps", 0))
    model_steps = steps
    evaluations = run / "evaluations.csv"
    if str(summary.get("model", "")).startswith("best_model") and evaluations.is_file():
        with evaluations.open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if rows:
            best = max(score_row(r) for r in rows)
            model_steps = next(int(r["step"]) for r in rows if score_row(r) == best)
    return {**summary, "steps": steps, "model_steps": model_steps, "train_wall_s": float(status.get("train_wall_s", float("nan")))}


def _command(run: Path) -> str:
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    t = cfg["train"]
    return f"drive-sim train --scenario {t['scenario']} --algo {t['algo']} --obs {t['obs']}"


def _plot(runs: Mapping[str, Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agents.training.curves import draw_rates

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), squeeze=False)
    for ax, (name, run) in zip(axes[0], runs.items(), strict=True):
        draw_rates(ax, run)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=90, format="png"))
    plt.close(fig)


def write_results(
    runs: Mapping[str, Path],
    throughput: Mapping[str, Any] | None,
    out: Path,
    machine: Mapping[str, Any],
    notes: Sequence[str] = (),
) -> str:
    """Write ``out`` (markdown) and ``images/results_curves.png`` beside it; returns the markdown."""
    lines = [
        "# Learning results",
        "",
        f"Measured {dt.date.today().isoformat()} on {machine.get('cpu', '?')} ({machine.get('cores', '?')} cores), "
        f"Python {machine.get('python', '?')}, torch {machine.get('torch', '?')}, stable-baselines3 {machine.get('sb3', '?')}. "
        "The machine is a shared 2-core VM; wall-clock times were taken while other jobs ran and are upper bounds.",
        "",
        "Each row is one command; it writes a run folder whose `eval.json` is the row. The score is the final test on seeds "
        "0, 1, ... of the model with the best validation score (validation on seeds 100-199 during training; training seeds "
        "from 1000), so the reported seeds never took part in picking the model.",
        "",
        "| row | command | steps (tested model) | train wall-clock | test | target | met |",
        "|---|---|---:|---:|---|---|---|",
    ]
    shown: dict[str, Path] = {}
    for row in ROWS:
        run = runs.get(row.config)
        if run is None or not (run / "eval.json").is_file():
            lines.append(f"| {row.title} | `drive-sim train` with `{row.config}` | - | - | not run | {row.target} | - |")
            continue
        s = run_summary(run)
        shown[row.config] = run
        wall = s["train_wall_s"]
        lines.append(
            f"| {row.title} | `{_command(run)}` | {s['steps']:,} ({s['model_steps']:,}) "
            f"| {wall / 60:.1f} min | {row.metric(s)} ({s['episodes']} seeds) "
            f"| {row.target} | {'yes' if row.met(s) else '**no**'} |"
        )
    lines += [
        "",
        "Reading the rows:",
        "",
        "- Steps: the run's total (SB3 finishes the rollout under way, so 1,000,000 becomes 1,001,472) and, in brackets, "
        "the steps of the model tested, the best validated one; the step limits of the targets apply to it.",
        "- Q-learning drives with nine steering values and cruise control (`action.speed: cruise`, see docs/design.md); its table "
        "is indexed by where the lane centre lies 10 m and 20 m ahead in the car's frame (13 x 13 states). The wall-clock is the "
        "run's own `train_wall_s` (one process, one core, validation rounds included), taken while other trainings shared the machine.",
        "- DQN picks meta actions that the lattice planner and controllers carry out, so collisions are rare from the start; "
        "what it has to learn is to ask for speed. For scale, a constant `faster` policy scored 100 % success at 83 % of the "
        "limit on seeds 0-7, a constant `keep` 100 % at 75 %.",
        "- PPO on lidar drives the car directly (steering and pedals) among 20 IDM/MOBIL vehicles; a collision ends the episode.",
        "- Validation scores swing between rounds for the Q table, DQN and PPO alike; the best validated model is the one tested.",
    ]
    if notes:
        lines += ["", "Earlier attempts and changes:", ""] + [f"- {n}" for n in notes]
    if shown:
        img = out.parent / "images" / "results_curves.png"
        _plot(shown, img)
        lines += ["", f"![learning curves](images/{img.name})", ""]
        lines += [
            "Curves: training episodes (rolling means) and validation rounds, from each run's `train_episodes.csv` and `evaluations.csv`."
        ]
    if throughput and throughput.get("rates"):
        lines += [
            "",
            "## Training throughput",
            "",
            "PPO, 2 subprocess envs, one torch thread, same hyperparameters; median of repeats.",
            "",
        ]
        lines += ["| env | timesteps/s | repeats |", "|---|---:|---|"]
        for name, rate in throughput["rates"].items():
            lines.append(f"| {name} | {rate:,.0f} | {', '.join(f'{x:,.0f}' for x in throughput['samples'][name])} |")
        ref = next((v for k, v in throughput["rates"].items() if k.startswith("highway-env")), None)
        ours = throughput["rates"].get("drive-sim Highway-v0 lidar")
        if ours:
            verdict = "met" if ours >= 500 else f"**not met** ({ours:,.0f})"
            lines += ["", f"Target: at least 500 timesteps/s with 2 subprocess envs: {verdict}."]
        if ref and ours:
            lines += [f"drive-sim trains {ours / ref:.1f}x as many timesteps per second as highway-env's highway-fast-v0."]
        lines += [
            "",
            f"Measured {throughput.get('date', '?')} with `python scripts/results.py --out {out.as_posix()} --throughput` "
            "(quiet machine, nothing else running).",
        ]
    text = "\n".join(lines) + "\n"
    write_text(out, text)
    return text


def update_results(
    run_dirs: Sequence[str | Path], *, out: str | Path = "docs/results.md", throughput: bool = False, notes: Sequence[str] = ()
) -> str:
    """Rebuild ``out`` from finished runs of shipped configs (records kept in ``docs/runs/<config>``), saved ones and throughput.

    ``out``'s ``.json`` keeps the runs shown, the notes and the last throughput measurement, so the
    page can be rebuilt with only the runs that changed; ``throughput`` measures PPO timesteps/s again.

    Raises:
        ValueError: a folder that is not a run folder.
    """
    from agents.reports.perf import machine_info

    out = Path(out)
    runs = {}
    for folder in map(Path, run_dirs):
        cfg_path = folder / "config.yaml"
        if not cfg_path.is_file():
            raise ValueError(f"results: {folder} is not a run folder (no config.yaml)")
        source = str(yaml.safe_load(cfg_path.read_text()).get("source", ""))
        if source.startswith("shipped:"):
            name = source.split(":", 1)[1]
            keep = out.parent / "runs" / name
            keep.mkdir(parents=True, exist_ok=True)
            for item in KEPT:
                if (folder / item).is_file():
                    copy_file(folder / item, keep / item)
            runs[name] = keep
    saved = out.with_suffix(".json")
    data = json.loads(saved.read_text()) if saved.is_file() else {}
    if throughput:
        from agents.reports.throughput import ThroughputConfig, measure_training_throughput

        res = measure_training_throughput(ThroughputConfig())
        data["throughput"] = {**dataclasses.asdict(res), "date": dt.date.today().isoformat()}
    data["runs"] = {**data.get("runs", {}), **{k: str(v) for k, v in runs.items()}}
    data["notes"] = [*data.get("notes", []), *notes]
    write_json(saved, data)
    import stable_baselines3
    import torch

    info = machine_info()
    machine = {"cpu": info.get("cpu", platform.processor()), "cores": info.get("logical_cores", "?"), "python": platform.python_version()}
    machine.update(torch=torch.__version__, sb3=stable_baselines3.__version__)
    all_runs = {k: Path(v) for k, v in data["runs"].items() if Path(v).is_dir()}
    return write_results(all_runs, data.get("throughput"), out, machine, data["notes"])
