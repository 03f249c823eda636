"""The one summary of an episode and the one aggregate over episodes: what every evaluation reports.

``EpisodeSummary`` (``summarise_log``, from an ``envs.recording.EpisodeLog``) is what validation,
the final test of a run, ``drive-sim evaluate``, the expert table and the benchmark read:

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

Optional fields: ``act_ms`` (mean time in the agent's ``act`` per step, the expert table's planner
time) where the loop timed it.

``aggregate`` gives means (rates for the flags) and 95 % bootstrap confidence intervals over
episodes from a seeded generator, so a report is the same every time it is made; ``run_scores``
names its numbers as a run's ``eval.json`` and ``evaluations.csv`` keep them.
"""

from __future__ import annotations

import dataclasses
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


@dataclass(frozen=True)
class EpisodeSummary:
    """One episode, as every evaluation reports it (see the module docstring for the measures).

    ``row()`` gives it as a mapping with the benchmark's column names (``return`` for
    ``episode_return``); ``aggregate`` takes those rows.
    """

    env_id: str
    seed: int | None
    steps: int
    episode_return: float
    success: bool
    collided: bool
    collision_kind: str
    off_road: bool
    route_completion: float
    red_lights_run: int
    driving_score: float
    infraction_penalty: float
    distance_km: float
    infractions_per_km: float
    speed_ratio: float
    rms_jerk_mps3: float
    rms_lat_accel_mps2: float
    max_lat_accel_mps2: float
    min_ttc_s: float
    duration_s: float
    #: The env ended the episode (False when a step limit cut it short).
    finished: bool = True
    #: Mean time in the agent's ``act`` per step [ms], where the loop timed it.
    act_ms: float | None = None

    def brief(self) -> dict[str, Any]:
        """The columns of a run's ``eval.csv`` and of ``drive-sim evaluate``'s episodes (numbers rounded to 4 places)."""
        return {
            "seed": self.seed,
            "return": round(self.episode_return, 4),
            "steps": self.steps,
            "success": self.success,
            "collided": self.collided,
            "off_road": self.off_road,
            "route_completion": round(self.route_completion, 4),
            "speed_ratio": round(self.speed_ratio, 4),
        }

    def row(self) -> dict[str, Any]:
        """The measures by their names (``MEASURES``: ``return`` for ``episode_return``; no env id, seed or timing)."""
        return {_NAMES.get(f.name, f.name): getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _NOT_MEASURES}


#: Summary fields that are not measures of the driving (who, which episode, how it was timed).
_NOT_MEASURES = ("env_id", "seed", "finished", "act_ms")
#: Field name -> measure name where they differ (``return`` is a Python keyword).
_NAMES = {"episode_return": "return"}
#: The measures of an episode by name -> their type ("bool", "str", "int", "float"), in the order of
#: ``EpisodeSummary.row()``: the benchmark's CSV columns after the key and status.
MEASURE_TYPES: dict[str, str] = {
    _NAMES.get(f.name, f.name): str(f.type) for f in dataclasses.fields(EpisodeSummary) if f.name not in _NOT_MEASURES
}
MEASURES: tuple[str, ...] = tuple(MEASURE_TYPES)


def read_row(row: Mapping[str, str]) -> dict[str, Any]:
    """The measures of a row written as text (the benchmark's CSV), flags as bools and numbers as floats again."""
    out: dict[str, Any] = {}
    for name, kind in MEASURE_TYPES.items():
        if name in row:
            out[name] = row[name] == "True" if kind == "bool" else row[name] if kind == "str" else float(row[name])
    return out


def summarise_log(log: EpisodeLog, penalties: Penalties | None = None, *, act_ms: float | None = None) -> EpisodeSummary:
    """The summary of one recorded episode (see the module docstring); ``act_ms`` is carried as given."""
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
    return EpisodeSummary(
        env_id=log.env_id,
        seed=log.meta.get("reset", {}).get("seed"),
        steps=n,
        episode_return=float(log.arrays["rewards"].sum()),
        success=bool(last["is_success"] > 0.5),
        collided=collided,
        collision_kind=kind,
        off_road=bool(off_road.any()),
        route_completion=completion,
        red_lights_run=reds,
        driving_score=completion * factor,
        infraction_penalty=factor,
        distance_km=distance_m / 1000.0,
        infractions_per_km=infractions / max(distance_m / 1000.0, 1e-3),
        speed_ratio=float(np.mean(speed[1:] / np.maximum(limit, 1e-6))) if n else 0.0,
        rms_jerk_mps3=float(np.sqrt(np.mean(jerk**2))) if n else 0.0,
        rms_lat_accel_mps2=float(np.sqrt(np.mean(lat**2))) if n else 0.0,
        max_lat_accel_mps2=float(np.max(np.abs(lat))) if n else 0.0,
        min_ttc_s=min_time_to_collision(log),
        duration_s=n * dt,
        finished=not log.meta.get("outcome", {}).get("unfinished", False),
        act_ms=act_ms,
    )


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


def aggregate(rows: Sequence[Mapping[str, Any] | EpisodeSummary], *, seed: int = 0) -> dict[str, Any]:
    """Means (rates for flags) of episodes with 95 % bootstrap intervals: the one aggregate.

    ``rows`` are summaries or their rows (``EpisodeSummary.row``, the benchmark's CSV rows, a run's
    ``eval.csv`` rows); a measure is aggregated when every row has it, so a table of fewer columns
    gives fewer numbers. ``min_ttc_s`` is summarised by its median over episodes with a finite value
    (inf otherwise); ``act_ms`` (optional) by its mean where every episode was timed.
    """
    rs = [{**r.row(), "act_ms": r.act_ms} if isinstance(r, EpisodeSummary) else r for r in rows]
    out: dict[str, Any] = {"episodes": len(rs)}
    for key in (*RATES, *MEANS):
        if not all(key in r for r in rs):
            continue
        vals = [float(r[key]) for r in rs]
        name = f"{key}_rate" if key in RATES else key
        out[name] = float(np.mean(vals)) if vals else math.nan
        out[f"{name}_ci"] = bootstrap_ci(vals, seed=seed)
    if rs and all("min_ttc_s" in r for r in rs):
        ttc = [float(r["min_ttc_s"]) for r in rs if math.isfinite(float(r["min_ttc_s"]))]
        out["median_min_ttc_s"] = float(np.median(ttc)) if ttc else math.inf
    if rs and all(r.get("act_ms") is not None for r in rs):
        out["act_ms"] = float(np.mean([float(r["act_ms"]) for r in rs]))
    return out


#: A run's test and validation scores (``eval.json``, ``evaluations.csv``) by their names there -> the aggregate's.
RUN_SCORES = {
    "success_rate": "success_rate",
    "collision_rate": "collided_rate",
    "off_road_rate": "off_road_rate",
    "mean_route_completion": "route_completion",
    "mean_speed_ratio": "speed_ratio",
    "mean_return": "return",
}


def run_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The scores a run records for its test and validation episodes (``EpisodeSummary.brief`` rows), from ``aggregate``.

    Means over the rows as written (rounded), so ``eval.json`` is what anyone gets again from ``eval.csv``.
    """
    if not rows:
        return {"episodes": 0}
    agg = aggregate(rows)
    return {"episodes": len(rows), "seeds": [r["seed"] for r in rows], **{name: agg[key] for name, key in RUN_SCORES.items()}}
