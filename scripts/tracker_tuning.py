"""Tracker settings compared on the same detections: record once, replay each variant.

    python scripts/tracker_tuning.py --scenario highway --seeds 1000-1015 \
        --variant "max_coast_s=0.5,report_coast_s=none,birth_clearance_m=4.5,birth_clearance_lateral_m=none" \
        --variant "max_coast_s=3.0,report_coast_s=0.5"

The expert drives ``--scenario`` on ``perceived`` for each seed (use tuning seeds, 1000+, never
the test seeds) with the shipped tracker; every period's detections, the ego motion the tracker is
given and the referee's truth (the true vehicles in the ego frame, and which ones a beam reaches)
are kept in memory. Each variant (``TrackerConfig`` fields, ``none`` for None; the shipped settings
first, always) then runs a fresh tracker over the same detections, scored with the fusion
evaluation's own matching (``agents.evaluation.fusion_eval.match_period``, py-motmetrics): MOTA
over the vehicles a beam reaches, IDF1 as the mean over episodes, misses, false positives, id
switches. Open loop: a variant's tracks would change the driving and so the detections; the
closed-loop figures come from ``drive-sim fusion``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_seeds(text: str) -> list[int]:
    """``1000-1015`` or ``1000,1003``: the seeds."""
    if "-" in text:
        lo, hi = text.split("-", 1)
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def parse_variant(text: str) -> dict[str, Any]:
    """``field=value,...`` -> TrackerConfig overrides (``none`` is None); one clear line for an unknown field."""
    from perception.fusion import TrackerConfig

    fields = {f.name: f for f in dataclasses.fields(TrackerConfig)}
    out: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"variant: {key!r} is not a TrackerConfig field; allowed: {', '.join(fields)}")
        default = getattr(TrackerConfig(), key)
        if value.lower() == "none":
            out[key] = None
        elif isinstance(default, bool):
            out[key] = value.lower() in ("1", "true", "yes")
        elif isinstance(default, int):
            out[key] = int(value)
        else:
            out[key] = float(value)
    return out


def record(env_id: str, seed: int) -> list[dict[str, Any]]:
    """One expert episode on ``perceived``: per period, the tracker's inputs and the referee's truth."""
    from agents.evaluation.episodes import run_episode
    from agents.policies.base import AgentEnv
    from agents.policies.loader import load_agent

    env = AgentEnv(env_id, "perceived", "continuous").make()
    periods: list[dict[str, Any]] = []
    try:
        agent = load_agent("expert", env)
        w = env.unwrapped.world
        tracker = env.unwrapped._obs.tracker
        step = tracker.step
        referee_rng = np.random.default_rng(0)

        def recorded(dt: float, v: float, r: float, dets: list[Any]) -> list[Any]:
            e = w.ego
            xy, _, _ = w.traffic_state()
            ids = (
                np.asarray(w.traffic_ids, dtype=np.int64)[np.asarray(w.traffic.active, bool)] if w.traffic.count else np.zeros(0, np.int64)
            )
            hit = set(w.lidar.read(e.x_m, e.y_m, e.yaw_rad, referee_rng).hit_ids.tolist())
            if w.radar is not None:
                hit |= set(w.radar.cast(e.x_m, e.y_m, e.yaw_rad)[1].tolist())
            c, s = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
            dx, dy = xy[:, 0] - e.x_m, xy[:, 1] - e.y_m
            periods.append(
                {
                    "args": (dt, v, r),
                    "dets": list(dets),  # Detections are frozen and their arrays new each period
                    "rel": np.stack([c * dx + s * dy, -s * dx + c * dy], axis=1),
                    "ids": ids,
                    "reached": np.array([b in hit for b in ids.tolist()], dtype=bool),
                }
            )
            return step(dt, v, r, dets)

        tracker.step = recorded
        run_episode(env, agent, seed)
    finally:
        env.close()
    return periods


def replay(episodes: list[list[dict[str, Any]]], overrides: dict[str, Any]) -> dict[str, float]:
    """A fresh tracker with ``overrides`` over the recorded detections: MOTA, mean IDF1 and the error counts."""
    import motmetrics as mm

    from agents.evaluation.fusion_eval import match_period
    from perception.fusion import Tracker, TrackerConfig

    cfg = dataclasses.replace(TrackerConfig(), **overrides)
    mh = mm.metrics.create()
    names = ["num_misses", "num_false_positives", "num_switches", "num_objects", "idf1"]
    totals = dict.fromkeys(names[:4], 0.0)
    idf1 = []
    for periods in episodes:
        tracker = Tracker(cfg)
        acc = mm.MOTAccumulator(auto_id=True)
        for p in periods:
            tracks = tracker.step(*p["args"], p["dets"])
            hyp = np.array([[t.id, t.x[0], t.x[1]] for t in tracks]).reshape(-1, 3)
            acc.update(*match_period(p["rel"], p["ids"], p["reached"], hyp)[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # py-motmetrics' pandas deprecation notices
            row = mh.compute(acc, metrics=names, name="e").iloc[0]
        for k in totals:
            totals[k] += float(row[k])
        idf1.append(float(row["idf1"]))
    errors = totals["num_misses"] + totals["num_false_positives"] + totals["num_switches"]
    return {"mota": 1.0 - errors / max(totals["num_objects"], 1.0), "idf1": float(np.mean(idf1)), **totals}


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    import envs

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="highway", help="scenario name or id (default highway)")
    p.add_argument("--seeds", default="1000-1007", help="seeds, 1000-1007 or 1000,1003 (tuning seeds: 1000+)")
    p.add_argument("--variant", action="append", default=[], help="TrackerConfig overrides, field=value,... (repeatable)")
    a = p.parse_args(argv)
    try:
        env_id = envs.env_id(a.scenario)
    except ValueError as err:  # ConfigError: names the known scenarios
        print(err, file=sys.stderr)
        return 2
    variants = [("shipped", {})] + [(v, parse_variant(v)) for v in a.variant]
    seeds = parse_seeds(a.seeds)
    print(f"recording {env_id}, seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} episodes) ...")
    episodes = [record(env_id, s) for s in tqdm(seeds, desc="episodes")]
    print("| variant | MOTA (reached) | IDF1 (mean) | misses | false positives | id switches | objects |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, overrides in variants:
        r = replay(episodes, overrides)
        print(
            f"| {name} | {r['mota']:.3f} | {r['idf1']:.3f} | {r['num_misses']:.0f} | {r['num_false_positives']:.0f} | "
            f"{r['num_switches']:.0f} | {r['num_objects']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
