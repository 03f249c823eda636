"""Benchmark metrics: one row per episode from its log, aggregates with seeded bootstrap intervals.

Per episode (``episode_metrics``), from an ``envs.recording.EpisodeLog``:

- ``success``, ``collided``, ``collision_kind``, ``off_road``, ``route_completion``, ``return``;
- ``driving_score`` = route completion x infraction penalty, CARLA leaderboard style: each vehicle
  collision multiplies the penalty by 0.60, a static object by 0.65, each red light run by 0.70, and
  driving off the road scales it by one minus the share of the route driven off it (the envs end an
  episode when the car leaves the road, so this share is small);
- ``infractions_per_km`` (collisions, red lights run, leaving the road), ``distance_km``;
- ``speed_ratio`` (mean speed / limit over steps), ``rms_jerk_mps3``, ``rms_lat_accel_mps2``
  (speed x yaw rate), ``max_lat_accel_mps2``;
- ``min_ttc_s``: the least time to collision with a vehicle ahead in the ego car's path (inf when
  it never closes on one).

``aggregate`` gives means (rates for the flags) and 95 % bootstrap confidence intervals over
episodes from a seeded generator, so a report is the same every time it is made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from drive_sim.traffic import VEHICLE_LENGTH_M, VEHICLE_WIDTH_M
from drive_sim.vehicle import Vehicle
from envs.recording import STOP_LINE_CODES, EpisodeLog


@dataclass(frozen=True)
class Penalties:
    """CARLA leaderboard infraction coefficients (multiplied into the driving score per infraction)."""

    vehicle_collision: float = 0.60
    static_collision: float = 0.65
    red_light: float = 0.70


def _column(log: EpisodeLog, name: str) -> np.ndarray:
    return log.arrays["info"][:, log.meta["info_fields"].index(name)]


def red_lights_run(log: EpisodeLog) -> int:
    """Times the car crossed a stop line whose signal was red on the step before."""
    fields = log.meta["info_fields"]
    if "stop_line_m" not in fields:
        return 0
    dist, kind = _column(log, "stop_line_m"), _column(log, "stop_line_kind")
    red = STOP_LINE_CODES["red"]
    runs = 0
    for t in range(1, len(dist)):
        before, after = dist[t - 1], dist[t]
        # The line was ahead and red; now it is behind (distance <= 0) or the next line is reported.
        if kind[t - 1] == red and 0.0 < before < math.inf and (after <= 0.0 or after > before + 1.0):
            runs += 1
    return runs


def min_time_to_collision(log: EpisodeLog) -> float:
    """Least time to collision [s] with a traffic vehicle ahead of the ego car and overlapping its width."""
    ego = log.arrays["ego"]
    fields = log.meta["ego_fields"]
    x, y, yaw, speed = (ego[:, fields.index(k)] for k in ("x_m", "y_m", "yaw_rad", "speed_mps"))
    txy, tyaw, tv = log.arrays["traffic_xy"], log.arrays["traffic_yaw"], log.arrays["traffic_v"]
    active = log.arrays.get("traffic_active")
    best = math.inf
    for t in range(len(ego)):
        if txy.shape[1] == 0:
            break
        c, s = math.cos(yaw[t]), math.sin(yaw[t])
        dx, dy = txy[t, :, 0] - x[t], txy[t, :, 1] - y[t]
        ahead, side = c * dx + s * dy, -s * dx + c * dy
        closing = speed[t] - tv[t] * np.cos(tyaw[t] - yaw[t])
        gap = ahead - (Vehicle.LENGTH_M + VEHICLE_LENGTH_M) / 2
        mask = (ahead > 0) & (np.abs(side) < (Vehicle.WIDTH_M + VEHICLE_WIDTH_M) / 2) & (closing > 1e-6)
        if active is not None:
            mask &= active[t]
        if mask.any():
            best = min(best, float(np.min(np.maximum(gap[mask], 0.0) / closing[mask])))
    return best


def episode_metrics(log: EpisodeLog, penalties: Penalties | None = None) -> dict[str, Any]:
    """The benchmark row of one recorded episode (see the module docstring)."""
    pen = penalties or Penalties()
    n = log.steps
    last = log.info(n)
    ego = log.arrays["ego"]
    fields = log.meta["ego_fields"]
    speed = ego[:, fields.index("speed_mps")]
    yaw_rate = ego[:, fields.index("yaw_rate_rps")]
    dt = float(log.meta["control_period_s"])
    xy = ego[:, [fields.index("x_m"), fields.index("y_m")]]
    step_m = np.hypot(*np.diff(xy, axis=0).T) if n else np.zeros(0)
    distance_m = float(step_m.sum())
    route_m = float(log.meta["config"]["scenario"]["route_length_m"])
    off_road = _column(log, "off_road")[1:] > 0.5
    kind = next((ev["value"] for ev in log.meta.get("events", []) if ev["kind"] == "collision" and ev["value"]), "")
    collided = bool(last["collided"] > 0.5)
    reds = red_lights_run(log)
    factor = 1.0
    if collided:
        factor *= pen.static_collision if kind == "static" else pen.vehicle_collision
    factor *= pen.red_light**reds
    invaded_m = float(step_m[off_road].sum()) if n else 0.0
    factor *= max(0.0, 1.0 - invaded_m / route_m)
    infractions = int(collided) + reds + int(bool(off_road.any()))
    limit = _column(log, "speed_limit_mps")[1:]
    jerk = _column(log, "jerk_mps3")[1:]
    lat = speed[1:] * yaw_rate[1:]
    completion = float(last["route_completion"])
    return {
        "steps": n,
        "return": float(log.arrays["rewards"].sum()),
        "success": bool(last["is_success"] > 0.5),
        "collided": collided,
        "collision_kind": kind,
        "off_road": bool(off_road.any()),
        "route_completion": completion,
        "red_lights_run": reds,
        "driving_score": completion * factor,
        "infraction_penalty": factor,
        "distance_km": distance_m / 1000.0,
        "infractions_per_km": infractions / max(distance_m / 1000.0, 1e-3),
        "speed_ratio": float(np.mean(speed[1:] / np.maximum(limit, 1e-6))) if n else 0.0,
        "rms_jerk_mps3": float(np.sqrt(np.mean(jerk**2))) if n else 0.0,
        "rms_lat_accel_mps2": float(np.sqrt(np.mean(lat**2))) if n else 0.0,
        "max_lat_accel_mps2": float(np.max(np.abs(lat))) if n else 0.0,
        "min_ttc_s": min_time_to_collision(log),
        "duration_s": n * dt,
    }


#: Aggregated as rates (share of episodes) rather than means of a measure.
RATES = ("success", "collided", "off_road")
MEANS = (
    "route_completion",
    "driving_score",
    "infractions_per_km",
    "speed_ratio",
    "rms_jerk_mps3",
    "rms_lat_accel_mps2",
    "max_lat_accel_mps2",
    "red_lights_run",
    "return",
)


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded: the same numbers give the same interval)."""
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return (math.nan, math.nan)
    if len(v) == 1:
        return (float(v[0]), float(v[0]))
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (resamples, len(v)))].mean(axis=1)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def aggregate(rows: Sequence[Mapping[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """Means (rates for flags) of a cell's episode rows with 95 % bootstrap intervals.

    ``min_ttc_s`` is summarised by its median over episodes with a finite value (inf otherwise).
    """
    out: dict[str, Any] = {"episodes": len(rows)}
    for key in (*RATES, *MEANS):
        vals = [float(r[key]) for r in rows]
        name = f"{key}_rate" if key in RATES else key
        out[name] = float(np.mean(vals)) if vals else math.nan
        out[f"{name}_ci"] = bootstrap_ci(vals, seed=seed)
    ttc = [float(r["min_ttc_s"]) for r in rows if math.isfinite(float(r["min_ttc_s"]))]
    out["median_min_ttc_s"] = float(np.median(ttc)) if ttc else math.inf
    return out
