"""How well the ``perceived`` observation's estimates match the truth: localisation and tracking figures.

An episode runs an agent (the expert by default) on the ``perceived`` observation and compares,
every period, the stack's estimates with the world's true state:

- localisation: position error of the filter and of the raw GNSS fix, the lateral component
  (across the lane, at the true position), heading and speed errors, and the NEES of
  (x, y, yaw, v) for the consistency test (``perception.fusion.nees_bounds``);
- tracking: every vehicle within ``TRACK_RANGE_M`` of the ego car against the confirmed tracks,
  both in the ego frame, through py-motmetrics (MOTA, IDF1, switches, misses, false positives).

The evaluation reads the world (it is the referee, not an agent); the agent sees only its
observation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Vehicles this close (centre to centre) are scored by the tracking metrics [m].
TRACK_RANGE_M = 50.0
#: A track within this distance of a vehicle can be matched to it [m] (py-motmetrics' max_d2 is its square).
MATCH_M = 2.0


@dataclass
class FusionEpisode:
    """Per-period errors of one episode (arrays over the periods after the filter started).

    Attributes:
        scenario, seed: which episode.
        time_s: (T,) episode time.
        pos_err_m, gnss_err_m, lateral_err_m, heading_err_rad, speed_err_mps: (T,) errors.
        pos_std_m: (T,) the filter's own position std along its larger axis.
        nees: (T,) NEES of (x, y, yaw, v).
        gnss_valid: (T,) whether a fix was available.
        mot: py-motmetrics' summary (mota, idf1, ...) over the vehicles a beam reached, or {} without traffic.
        mot_all: the same over every vehicle within range, hidden ones included.
        summary: the episode's driving summary (``EpisodeSummary`` fields).
    """

    scenario: str
    seed: int
    time_s: np.ndarray
    pos_err_m: np.ndarray
    gnss_err_m: np.ndarray
    lateral_err_m: np.ndarray
    heading_err_rad: np.ndarray
    speed_err_mps: np.ndarray
    pos_std_m: np.ndarray
    nees: np.ndarray
    gnss_valid: np.ndarray
    mot: dict[str, float] = field(default_factory=dict)
    mot_all: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def fusion_episode(env_id: str, seed: int, agent_spec: str = "expert", max_steps: int | None = None) -> FusionEpisode:
    """One episode of ``agent_spec`` on the ``perceived`` observation of ``env_id``, scored against the truth (``max_steps``: cut short)."""
    import motmetrics as mm

    from agents.evaluation.episodes import run_episode
    from agents.policies.base import AgentEnv
    from agents.policies.loader import load_agent

    env = AgentEnv(env_id, "perceived", "continuous").make()
    try:
        agent = load_agent(agent_spec, env)
        w = env.unwrapped.world
        obs = env.unwrapped._obs
        road = w.road
        rows: list[list[float]] = []
        acc = mm.MOTAccumulator(auto_id=True)
        acc_all = mm.MOTAccumulator(auto_id=True)
        referee_rng = np.random.default_rng(0)
        seen_traffic = [False]

        def on_step(_t: int, _info: dict[str, Any]) -> None:
            est = obs.estimate
            if est is None:
                return
            e = w.ego
            truth = np.array([e.x_m, e.y_m, e.yaw_rad, e.speed_mps])
            err = est.ego - truth
            err[2] = (err[2] + math.pi) % (2 * math.pi) - math.pi
            ref = road.centreline.locate(e.x_m, e.y_m)[2]
            lateral = -math.sin(ref) * err[0] + math.cos(ref) * err[1]
            nees = float(err @ np.linalg.solve(est.ego_cov, err))
            gnss_err = math.nan if est.gnss is None else float(np.hypot(*(est.gnss - truth[:2])))
            rows.append(
                [w.time_s, float(np.hypot(*err[:2])), gnss_err, lateral, err[2], err[3], est.ego_std[0], nees, est.gnss is not None]
            )
            # Tracking: the true vehicles in the true ego frame, the tracks in the estimated one.
            xy, _, _ = w.traffic_state()
            bodies = (
                np.asarray(w.traffic_ids, dtype=np.int64)[np.asarray(w.traffic.active, bool)] if w.traffic.count else np.zeros(0, np.int64)
            )
            c, s = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
            rel = np.stack([c * (xy[:, 0] - e.x_m) + s * (xy[:, 1] - e.y_m), -s * (xy[:, 0] - e.x_m) + c * (xy[:, 1] - e.y_m)], axis=1)
            hyp = est.tracks_ego
            near_hyp = len(hyp) and (np.hypot(hyp[:, 1], hyp[:, 2]) < TRACK_RANGE_M + MATCH_M).any()
            if (np.hypot(rel[:, 0], rel[:, 1]) < TRACK_RANGE_M).any() or near_hyp:
                seen_traffic[0] = True
            # Which vehicles some lidar or radar beam reaches this period, the beams cast again,
            # noise-free, for the referee.
            hit = set(w.lidar.read(e.x_m, e.y_m, e.yaw_rad, referee_rng).hit_ids.tolist())
            if w.radar is not None:
                hit |= set(w.radar.cast(e.x_m, e.y_m, e.yaw_rad)[1].tolist())
            reached = np.array([b in hit for b in bodies.tolist()], dtype=bool)
            for a_, args in zip((acc_all, acc), match_period(rel, bodies, reached, hyp), strict=True):
                a_.update(*args)

        summary = run_episode(env, agent, int(seed), on_step=on_step, max_steps=max_steps)
    finally:
        env.close()
    a = np.array(rows, dtype=np.float64).reshape(-1, 9)
    mot: dict[str, float] = {}
    mot_all: dict[str, float] = {}
    if seen_traffic[0]:
        mh = mm.metrics.create()
        names = ["mota", "idf1", "num_switches", "num_misses", "num_false_positives", "num_objects", "motp"]
        for a_, d_ in ((acc, mot), (acc_all, mot_all)):
            row = mh.compute(a_, metrics=names, name="e").iloc[0]
            d_.update({k: float(row[k]) for k in names})
    return FusionEpisode(
        scenario=env_id,
        seed=int(seed),
        time_s=a[:, 0],
        pos_err_m=a[:, 1],
        gnss_err_m=a[:, 2],
        lateral_err_m=a[:, 3],
        heading_err_rad=a[:, 4],
        speed_err_mps=a[:, 5],
        pos_std_m=a[:, 6],
        nees=a[:, 7],
        gnss_valid=a[:, 8] > 0.5,
        mot=mot,
        mot_all=mot_all,
        summary=dict(summary.row()),
    )


def match_period(
    rel: np.ndarray, ids: np.ndarray, reached: np.ndarray, hyp: np.ndarray
) -> tuple[tuple[list[int], list[int], np.ndarray], tuple[list[int], list[int], np.ndarray]]:
    """One period's py-motmetrics updates (vehicle ids, track ids, squared distances): every vehicle in range, and the reached ones.

    Args:
        rel: (N, 2) the true vehicles in the true ego frame [m].
        ids: (N,) their ids.
        reached: (N,) whether a lidar or radar beam reaches each this period.
        hyp: (K, >= 3) the confirmed tracks: id, x, y in the estimated ego frame.

    Vehicles within ``TRACK_RANGE_M`` are scored; a track within ``MATCH_M`` of one can match it.
    A track that can match only vehicles beyond the range (a track at 51 m on a car at 51.5 m) is
    neither a hit nor a false positive: the range cuts the vehicles, not the tracks near them. In
    the second update only reached vehicles are scored (nuScenes' convention: a box without a
    return is not scored), and a track that can match a vehicle no beam reaches is left out too.
    """
    import motmetrics as mm

    rel = np.asarray(rel, dtype=np.float64).reshape(-1, 2)
    ids = np.asarray(ids, dtype=np.int64)
    hyp = np.asarray(hyp, dtype=np.float64).reshape(len(hyp), -1) if len(hyp) else np.zeros((0, 3))

    def d2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # py-motmetrics gives (0, 0) when either side is empty; the shape here is always (len(a), len(b)).
        if len(a) == 0 or len(b) == 0:
            return np.full((len(a), len(b)), np.nan)
        return mm.distances.norm2squared_matrix(a, b, max_d2=MATCH_M**2)

    in_range = np.hypot(rel[:, 0], rel[:, 1]) < TRACK_RANGE_M
    near = hyp[np.hypot(hyp[:, 1], hyp[:, 2]) < TRACK_RANGE_M + MATCH_M]
    dist = d2(rel[in_range], near[:, 1:3])
    if (~in_range).any() and len(near):
        far = d2(rel[~in_range], near[:, 1:3])
        beyond = np.isfinite(far).any(axis=0) & ~np.isfinite(dist).any(axis=0)
        near, dist = near[~beyond], dist[:, ~beyond]
    gt_ids = ids[in_range]
    visible = np.asarray(reached, dtype=bool)[in_range]
    keep = ~np.isfinite(dist[~visible]).any(axis=0)
    hyp_ids = near[:, 0].astype(int)
    return (
        (gt_ids.tolist(), hyp_ids.tolist(), dist),
        (gt_ids[visible].tolist(), hyp_ids[keep].tolist(), dist[np.ix_(visible, keep)]),
    )


def rms(x: np.ndarray) -> float:
    """Root mean square over the finite entries (nan if none)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(np.sqrt(np.mean(x * x))) if len(x) else math.nan


def summarise(episodes: Sequence[FusionEpisode]) -> dict[str, Any]:
    """One scenario's figures over its episodes (RMSEs pooled over every period of every episode)."""
    from perception.fusion import nees_bounds

    cat = {
        k: np.concatenate([getattr(e, k) for e in episodes])
        for k in ("pos_err_m", "gnss_err_m", "lateral_err_m", "heading_err_rad", "speed_err_mps", "nees")
    }
    pos, gnss = rms(cat["pos_err_m"]), rms(cat["gnss_err_m"])
    lo, hi = nees_bounds(4, len(episodes))
    # The NEES test per period over the runs (Bar-Shalom 5.4.2): the share of periods whose average over the episodes is inside the bounds.
    steps = min(len(e.nees) for e in episodes)
    per_t = np.mean(np.stack([e.nees[:steps] for e in episodes]), axis=0) if steps else np.zeros(0)
    out: dict[str, Any] = {
        "episodes": len(episodes),
        "position_rmse_m": pos,
        "gnss_rmse_m": gnss,
        "gnss_over_filter": gnss / pos if pos > 0 else math.nan,
        "lateral_rmse_m": rms(cat["lateral_err_m"]),
        "heading_rmse_deg": math.degrees(rms(cat["heading_err_rad"])),
        "speed_rmse_mps": rms(cat["speed_err_mps"]),
        "max_position_err_m": float(np.nanmax(cat["pos_err_m"])) if len(cat["pos_err_m"]) else math.nan,
        "nees_mean": float(np.mean(cat["nees"])) if len(cat["nees"]) else math.nan,
        "nees_bounds": [lo, hi],
        "nees_share_inside": float(np.mean((per_t >= lo) & (per_t <= hi))) if len(per_t) else math.nan,
    }
    outage = [e.pos_err_m[~e.gnss_valid] for e in episodes if (~e.gnss_valid).any()]
    if outage:
        out["outage_max_err_m"] = float(max(np.max(x) for x in outage))
        out["outage_rmse_m"] = rms(np.concatenate(outage))
        # What the outage itself costs: the error's rise above its value at the last fix before it.
        growth = []
        for e in episodes:
            lost = np.flatnonzero(~e.gnss_valid)
            if len(lost) and lost[0] > 0:
                growth.append(float(np.max(e.pos_err_m[lost]) - e.pos_err_m[lost[0] - 1]))
        if growth:
            out["outage_growth_max_m"] = float(max(growth))
            out["outage_growth_median_m"] = float(np.median(growth))
    for key, prefix in (("mot", ""), ("mot_all", "all_")):
        mots = [getattr(e, key) for e in episodes if getattr(e, key)]
        if not mots:
            continue
        # Pooled over episodes the way MOTA is defined: 1 - (misses + false positives + switches) / objects.
        n = sum(m["num_objects"] for m in mots)
        errs = sum(m["num_misses"] + m["num_false_positives"] + m["num_switches"] for m in mots)
        out[prefix + "mota"] = 1.0 - errs / n if n else math.nan
        out[prefix + "idf1_mean"] = float(np.mean([m["idf1"] for m in mots]))
        out[prefix + "id_switches"] = int(sum(m["num_switches"] for m in mots))
        out[prefix + "misses"] = int(sum(m["num_misses"] for m in mots))
        out[prefix + "false_positives"] = int(sum(m["num_false_positives"] for m in mots))
        out[prefix + "objects"] = int(n)
    out["route_completion"] = float(np.mean([e.summary.get("route_completion", math.nan) for e in episodes]))
    out["collisions"] = int(sum(bool(e.summary.get("collided", False)) for e in episodes))
    # The same episodes as ``drive-sim bench --agents expert@perceived`` (run_episode, the same seeds),
    # aggregated by the bench's own ``aggregate``.
    from agents.evaluation.metrics import aggregate

    agg = aggregate([e.summary for e in episodes])
    out["driving_score"] = agg.get("driving_score", math.nan)
    out["success"] = agg.get("success_rate", math.nan)
    out["red_lights_run"] = agg.get("red_lights_run", math.nan)
    return out


__all__ = ["MATCH_M", "TRACK_RANGE_M", "FusionEpisode", "fusion_episode", "rms", "summarise"]
