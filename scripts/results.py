"""Write docs/results.md from finished benchmark run folders (and measure PPO throughput).

python scripts/results.py --runs /path/to/runs/*            # the table and curves
python scripts/results.py --runs ... --throughput           # also measure PPO timesteps/s
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import shutil
import sys
from pathlib import Path

import yaml

from agents.perf import machine_info
from agents.results import write_results
from agents.runs import write_json

KEPT = ("config.yaml", "status.json", "eval.json", "eval.csv", "evaluations.csv", "train_episodes.csv", "learning_curve.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="*", default=[], help="finished run folders of shipped configs")
    ap.add_argument("--throughput", action="store_true", help="measure PPO training throughput (a few minutes)")
    ap.add_argument("--out", default="docs/results.md")
    ap.add_argument("--note", action="append", default=[], help="a line for 'Earlier attempts and changes' (kept)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    runs = {}
    for folder in map(Path, args.runs):
        cfg_path = folder / "config.yaml"
        if not cfg_path.is_file():
            print(f"results: {folder} is not a run folder (no config.yaml)", file=sys.stderr)
            return 2
        source = str(yaml.safe_load(cfg_path.read_text()).get("source", ""))
        if source.startswith("shipped:"):
            # Keep the run's light records beside the page (the models go to the zoo, the rest stays out of git).
            name = source.split(":", 1)[1]
            keep = out.parent / "runs" / name
            keep.mkdir(parents=True, exist_ok=True)
            for item in KEPT:
                if (folder / item).is_file():
                    shutil.copyfile(folder / item, keep / item)
            runs[name] = keep
    saved = out.with_suffix(".json")
    data = json.loads(saved.read_text()) if saved.is_file() else {}
    if args.throughput:
        from agents.throughput import ThroughputConfig, measure_training_throughput

        res = measure_training_throughput(ThroughputConfig())
        data["throughput"] = {**dataclasses.asdict(res), "date": dt.date.today().isoformat()}
    data["runs"] = {**data.get("runs", {}), **{k: str(v) for k, v in runs.items()}}
    data["notes"] = [*data.get("notes", []), *args.note]
    write_json(saved, data)
    info = machine_info()
    import stable_baselines3
    import torch

    machine = {"cpu": info.get("cpu", platform.processor()), "cores": info.get("logical_cores", "?"), "python": platform.python_version()}
    machine.update(torch=torch.__version__, sb3=stable_baselines3.__version__)
    all_runs = {k: Path(v) for k, v in data["runs"].items() if Path(v).is_dir()}
    print(write_results(all_runs, data.get("throughput"), out, machine, data["notes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
