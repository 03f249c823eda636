"""PPO from camera frames on LaneKeep-v0: the perception encoder pre-trained vs from scratch vs random-shift augmentation.

    python scripts/rl_pretrain.py --encoder runs/pretrain-s0/encoder.pt --out runs/rl-pretrain --seeds 0 1 2

Each variant is the shipped camera config (agents/training/configs/lanekeep-ppo-camera.yaml) with
the perception net's encoder as the policy CNN (``policy.cnn: perception``, stages 16/32/64/64):

- ``scratch``: random initial weights;
- ``pretrained``: the encoder of a ``drive-sim perception pretrain`` run (masked reconstruction);
- ``shift``: random initial weights, frames randomly shifted by up to 4 px in every update (DrQ/RAD).

Validation every ``--eval-every`` steps on ``--val-episodes`` seeds; the figure is the number of
environment steps to the first validation round with mean route completion >= 90 %. Runs that
finished are kept (the script continues where it stopped). Writes OUT/rl_pretrain.json,
OUT/rl_pretrain.md and OUT/rl_pretrain.png (validation route completion against steps).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import yaml

from drive_sim.files import write_json, write_text

SHIPPED = Path(__file__).resolve().parents[1] / "agents" / "training" / "configs" / "lanekeep-ppo-camera.yaml"
VARIANTS = ("scratch", "pretrained", "shift")


def config(variant: str, encoder: str, steps: int, eval_every: int, val_episodes: int) -> dict:
    cfg = yaml.safe_load(SHIPPED.read_text())
    cfg["train"].update(total_steps=steps, eval_every_steps=eval_every, val_episodes=val_episodes, eval_episodes=10)
    cfg["train"]["checkpoint_every_steps"] = max(eval_every, 10240)
    cfg["policy"].update(cnn="perception", cnn_channels=[16, 32, 64, 64], cnn_features_dim=128)
    if variant == "pretrained":
        cfg["policy"]["cnn_weights"] = str(Path(encoder).resolve())
    if variant == "shift":
        cfg["policy"]["shift_pad"] = 4
    return cfg


def steps_to(rows: list[dict], key: str, level: float) -> float:
    for r in rows:
        if float(r[key]) >= level:
            return float(r["step"])
    return math.nan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", required=True, help="a pre-training run's encoder.pt")
    ap.add_argument("--out", required=True, help="output folder (run folders, configs, the table)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=30720, help="environment steps per run (default 30720)")
    ap.add_argument("--eval-every", type=int, default=3072, help="validation period in steps (default 3072)")
    ap.add_argument("--val-episodes", type=int, default=5, help="validation episodes per round (default 5)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = ap.parse_args(argv)
    if not Path(args.encoder).is_file():
        print(f"rl_pretrain: encoder: {args.encoder} does not exist (drive-sim perception pretrain writes encoder.pt)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "encoder": args.encoder,
        "steps": args.steps,
        "eval_every": args.eval_every,
        "val_episodes": args.val_episodes,
        "runs": [],
    }
    for seed in args.seeds:
        for variant in args.variants:
            name = f"{variant}-s{seed}"
            run = out / name
            if not (run / "eval.json").is_file():
                cfg_path = out / f"{variant}.yaml"
                cfg_path.write_text(
                    yaml.safe_dump(config(variant, args.encoder, args.steps, args.eval_every, args.val_episodes), sort_keys=False)
                )
                print(f"rl_pretrain: training {name} ({args.steps:,} steps) -> {run}", flush=True)
                cmd = ["drive-sim", "train", "--config", str(cfg_path), "--seed", str(seed), "--out-dir", str(out), "--name", name]
                r = subprocess.run([*cmd, "--no-progress"], stdout=(out / f"{name}.log").open("w"), stderr=subprocess.STDOUT)
                if r.returncode != 0:
                    print(f"rl_pretrain: {name} failed (exit {r.returncode}); see {out / (name + '.log')}", file=sys.stderr)
                    return r.returncode
            rows = list(csv.DictReader((run / "evaluations.csv").open()))
            test = json.loads((run / "eval.json").read_text())
            status = json.loads((run / "status.json").read_text())
            result["runs"].append(
                {
                    "variant": variant,
                    "seed": seed,
                    "steps_to_90": steps_to(rows, "mean_route_completion", 0.9),
                    "best_val_route": max(float(r["mean_route_completion"]) for r in rows),
                    "curve": [(int(float(r["step"])), float(r["mean_route_completion"])) for r in rows],
                    "test": test.get("scores", test),
                    "train_wall_s": status.get("train_wall_s"),
                }
            )
    write_json(out / "rl_pretrain.json", result)
    lines = [
        f"PPO camera, LaneKeep-v0, {args.steps:,} steps per run, validation every {args.eval_every:,} steps on {args.val_episodes} seeds.",
        "",
        "| variant | seed | steps to 90 % route completion | best validation route | train wall-clock [min] |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        s = "not reached" if math.isnan(r["steps_to_90"]) else f"{r['steps_to_90']:,.0f}"
        wall = r["train_wall_s"]
        lines.append(f"| {r['variant']} | {r['seed']} | {s} | {r['best_val_route']:.2f} | {wall / 60 if wall else math.nan:.1f} |")
    write_text(out / "rl_pretrain.md", "\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    colours = dict(zip(VARIANTS, ("tab:gray", "tab:blue", "tab:orange"), strict=True))
    for r in result["runs"]:
        xs, ys = zip(*r["curve"], strict=True) if r["curve"] else ((), ())
        ax.plot(xs, ys, marker="o", ms=3, color=colours[r["variant"]], label=f"{r['variant']} s{r['seed']}")
    ax.axhline(0.9, color="k", lw=0.8, ls="--")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("validation route completion")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "rl_pretrain.png", dpi=120)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
