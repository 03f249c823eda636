"""Traffic: IDM car-following and MOBIL lane changes, computed for all vehicles at once.

Vehicles live in Frenet coordinates (s, d) on the road's forward lanes. Every quantity is an
array over vehicles; leaders and followers come from one (N, N+1) gap matrix per query lane
(the ego car is the extra column, so traffic reacts to it), never from per-pair Python loops.

References: Treiber, Hennecke & Helbing (2000), "Congested traffic states in empirical observations
and microscopic simulations" (IDM); Kesting, Treiber & Helbing (2007), "General lane-changing model
MOBIL for car-following models". The parameter names follow highway-env's ``IDMVehicle``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drive_sim.config import require
from drive_sim.road.geometry import Road

VEHICLE_LENGTH_M = 4.5
VEHICLE_WIDTH_M = 1.8

#: Driver profiles as multipliers of the IDM parameters (time headway, maximum acceleration, jam
#: distance, desired speed) and an absolute MOBIL politeness.
PROFILES = {
    "cautious": {"headway": 1.5, "accel": 0.7, "min_gap": 1.5, "speed": 0.9, "politeness": 0.5},
    "normal": {"headway": 1.0, "accel": 1.0, "min_gap": 1.0, "speed": 1.0, "politeness": -1.0},  # -1: cfg.politeness
    "aggressive": {"headway": 0.6, "accel": 1.4, "min_gap": 0.6, "speed": 1.1, "politeness": 0.0},
}

#: ``PROFILES`` as rows (in its order) of headway, accel, min_gap, speed, politeness multipliers.
PROFILE_TABLE = np.array([[p["headway"], p["accel"], p["min_gap"], p["speed"], p["politeness"]] for p in PROFILES.values()])


@dataclass(frozen=True)
class BehaviourMix:
    """Shares of driver profiles among the traffic (normalised; see ``PROFILES``)."""

    cautious: float = 0.0
    normal: float = 1.0
    aggressive: float = 0.0

    def __post_init__(self) -> None:
        shares = (self.cautious, self.normal, self.aggressive)
        require(min(shares) >= 0 and sum(shares) > 0, "traffic.mix", f"shares must be non-negative and not all 0, got {shares}")

    def probabilities(self) -> np.ndarray:
        """Shares as probabilities, in ``PROFILES`` order."""
        p = np.array([self.cautious, self.normal, self.aggressive], dtype=np.float64)
        return p / p.sum()


@dataclass(frozen=True)
class TrafficConfig:
    """Traffic population and driver-model parameters.

    Attributes:
        count: number of other vehicles kept around the ego car.
        density_per_km_per_lane: if above 0, the count is derived from it: vehicles per km per
            forward lane over the spawn window (it then overrides ``count``).
        mix: shares of cautious, normal and aggressive drivers.
        speed_min_mps, speed_max_mps: range of desired speeds drawn per vehicle [m/s].
        spawn_ahead_m: vehicles are kept within this distance ahead of the ego car [m].
        spawn_behind_m: ... and this distance behind it [m].
        min_spawn_gap_m: smallest bumper-to-bumper gap at spawn [m].
        accel_max_mps2: IDM maximum acceleration a [m/s^2].
        decel_comfort_mps2: IDM comfortable deceleration b [m/s^2].
        decel_max_mps2: hardest braking a driver model may use [m/s^2].
        time_headway_s: IDM desired time headway T [s].
        min_gap_m: IDM jam distance s0 [m].
        delta: IDM acceleration exponent.
        politeness: MOBIL politeness p.
        lane_change_threshold_mps2: MOBIL incentive threshold [m/s^2].
        safe_decel_mps2: MOBIL safety limit b_safe for the new follower [m/s^2].
        keep_right_bias_mps2: MOBIL bias towards the right lane [m/s^2]; above the threshold, so a
            vehicle with nothing to gain returns to the right (Kesting et al., asymmetric MOBIL).
        lane_change_cooldown_s: time between two lane changes of one vehicle [s].
        lateral_speed_mps: largest lateral speed during a lane change [m/s].
        lane_changes: whether vehicles change lanes at all (MOBIL on/off).
        decision_period_s: how often MOBIL lane choices are re-evaluated [s] (drivers do not
            reconsider lanes every control step; this also keeps MOBIL off most steps).
    """

    count: int = 20
    density_per_km_per_lane: float = 0.0
    mix: BehaviourMix = field(default_factory=BehaviourMix)
    speed_min_mps: float = 22.0
    speed_max_mps: float = 30.0
    spawn_ahead_m: float = 250.0
    spawn_behind_m: float = 120.0
    min_spawn_gap_m: float = 15.0
    accel_max_mps2: float = 2.0
    decel_comfort_mps2: float = 3.0
    decel_max_mps2: float = 8.0
    time_headway_s: float = 1.5
    min_gap_m: float = 2.5
    delta: float = 4.0
    politeness: float = 0.2
    lane_change_threshold_mps2: float = 0.2
    safe_decel_mps2: float = 4.0
    keep_right_bias_mps2: float = 0.3
    lane_change_cooldown_s: float = 4.0
    lateral_speed_mps: float = 1.5
    lane_changes: bool = True
    decision_period_s: float = 0.5

    def __post_init__(self) -> None:
        require(self.count >= 0, "traffic.count", f"must be 0 or more, got {self.count}")
        require(self.count <= 200, "traffic.count", f"must be at most 200, got {self.count}")
        require(
            self.density_per_km_per_lane >= 0, "traffic.density_per_km_per_lane", f"must be 0 or more, got {self.density_per_km_per_lane}"
        )
        require(0 < self.speed_min_mps <= self.speed_max_mps, "traffic.speed_min_mps", "must be positive and at most speed_max_mps")
        require(self.spawn_ahead_m > 0 and self.spawn_behind_m > 0, "traffic.spawn_ahead_m", "spawn distances must be positive")
        for name in (
            "accel_max_mps2",
            "decel_comfort_mps2",
            "decel_max_mps2",
            "time_headway_s",
            "delta",
            "lateral_speed_mps",
            "decision_period_s",
        ):
            require(getattr(self, name) > 0, f"traffic.{name}", f"must be positive, got {getattr(self, name)}")


def idm_acceleration(
    v: np.ndarray,
    v0: np.ndarray,
    gap: np.ndarray,
    dv: np.ndarray,
    cfg: TrafficConfig,
    params: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """IDM acceleration [m/s^2].

    Args:
        v: speeds [m/s].
        v0: desired speeds [m/s]; below 0.1 the vehicle brakes to a stop.
        gap: bumper gaps to the leaders [m] (``inf`` for a free road).
        dv: approach rates ``v - v_leader`` [m/s].
        cfg: IDM parameters.
        params: per-vehicle (time headway [s], maximum acceleration [m/s^2], jam distance [m]),
            broadcastable against ``v``; ``cfg``'s values when None.
    """
    headway, a, s0 = params if params is not None else (cfg.time_headway_s, cfg.accel_max_mps2, cfg.min_gap_m)
    b = cfg.decel_comfort_mps2
    ratio = v / np.maximum(v0, 0.1)
    # A vehicle whose desired speed is ~0 (parked) brakes to a stop instead of creeping.
    free = np.where(v0 > 0.1, 1.0 - ratio**cfg.delta, -1.0)
    s_star = s0 + np.maximum(0.0, v * headway + v * dv * (0.5 / np.sqrt(a * b)))
    # gap = inf (no leader) gives (s*/inf)^2 = 0: the free-road term alone.
    interaction = (s_star / np.maximum(gap, 0.1)) ** 2
    return np.maximum(a * (free - interaction), -cfg.decel_max_mps2)


def cah_blend(
    acc_idm: np.ndarray,
    v: np.ndarray,
    v_lead: np.ndarray,
    a_lead: np.ndarray,
    gap: np.ndarray,
    a_max: np.ndarray | float,
    b: float,
    coolness: float = 0.99,
) -> np.ndarray:
    """IDM acceleration tempered by the constant-acceleration heuristic (the ACC model).

    Kesting, Treiber & Helbing (2010), "Enhanced intelligent driver model to access the impact of
    driving strategies on traffic capacity", eqs. (7)-(9): where a vehicle appears close ahead (a
    cut-in or a merge), plain IDM brakes as if the gap had to be restored at once; the heuristic
    asks only what avoids a collision if both keep their accelerations, so the driver brakes
    about as hard as the situation needs. Where IDM is not below the heuristic it is unchanged.
    """
    # As in Treiber's reference implementation (traffic-simulation.de): a strict inequality and a
    # floor on the leader's speed, so a stopped leader takes the second branch, not 0 / 0.
    al = np.minimum(a_lead, a_max)
    s = np.maximum(gap, 0.1)
    vl = np.maximum(v_lead, 1e-4)
    dvp = np.maximum(v - v_lead, 0.0)
    denom = vl * vl - 2.0 * s * al
    first = (vl * dvp < -2.0 * s * al) & (denom != 0.0)
    cah = np.where(first, v * v * al / np.where(first, denom, 1.0), al - 0.5 * dvp * dvp / s)
    blended = (1.0 - coolness) * acc_idm + coolness * (cah + b * np.tanh((acc_idm - cah) / b))
    return np.where(acc_idm >= cah, acc_idm, blended)


class Traffic:
    """All non-ego vehicles of one world, as arrays.

    Attributes:
        s, d: Frenet position [m] of each vehicle (rear-to-front centre).
        v: longitudinal speed [m/s]; v0: desired speed [m/s].
        lane: lane index each vehicle drives in or changes into.
        d_rate: lateral speed [m/s] (for the body heading).
    """

    def __init__(self, road: Road, cfg: TrafficConfig) -> None:
        self.road = road
        self.cfg = cfg
        n = cfg.count
        self.s = np.zeros(n)
        self.d = np.zeros(n)
        self.v = np.zeros(n)
        self.v0 = np.zeros(n)
        self.lane = np.zeros(n, dtype=np.int64)
        self.d_rate = np.zeros(n)
        self.accel = np.zeros(n)
        self.cooldown = np.zeros(n)
        self.lane_changes = 0
        self._lanes = np.asarray(road.forward_lanes(), dtype=np.int64)
        self._offsets = np.asarray(road.lane_offsets_m)
        self._lane_allowed = np.zeros(len(self._offsets), dtype=bool)
        self._lane_allowed[self._lanes] = True
        self._occ_half_m = road.lane_width_m / 2 + VEHICLE_WIDTH_M / 2 - 0.3
        self._decision_clock = 0.0
        self._active = np.ones(n, dtype=bool)

    @property
    def count(self) -> int:
        """Number of vehicles."""
        return len(self.s)

    @property
    def active(self) -> np.ndarray:
        """Every vehicle is on the road (the window recycles them instead of removing any)."""
        if len(self._active) != self.count:
            self._active = np.ones(self.count, dtype=bool)
        return self._active

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        """World position (n, 2) and body heading (n,), turned into a lane change by its lateral speed."""
        xy, heading = self.road.centreline.to_world(self.s, self.d)
        return xy, heading + np.arctan2(self.d_rate, np.maximum(self.v, 1.0))

    # ------------------------------------------------------------------ spawning
    def set_state(self, s: np.ndarray, lane: np.ndarray, v: np.ndarray, v0: np.ndarray) -> None:
        """Place vehicles explicitly (tests, scripted scenarios)."""
        self.s = np.asarray(s, dtype=np.float64).copy()
        self.lane = np.asarray(lane, dtype=np.int64).copy()
        self.d = self._offsets[self.lane].copy()
        self.v = np.asarray(v, dtype=np.float64).copy()
        self.v0 = np.asarray(v0, dtype=np.float64).copy()
        n = len(self.s)
        self.d_rate = np.zeros(n)
        self.accel = np.zeros(n)
        self.cooldown = np.zeros(n)
        self._decision_clock = 0.0
        self.style = np.full(n, 1, dtype=np.int64)
        self._refresh_params()

    def set_styles(self, styles: list[str]) -> None:
        """Give each vehicle a driver profile by name (``PROFILES``), e.g. for scripted tests."""
        names = list(PROFILES)
        bad = [s for s in styles if s not in PROFILES]
        require(not bad and len(styles) == self.count, "traffic styles", f"need {self.count} of {', '.join(names)}, got {styles}")
        self.style = np.array([names.index(s) for s in styles], dtype=np.int64)
        self._refresh_params()

    def _refresh_params(self) -> None:
        """Per-body IDM parameters and politeness from the styles (the ego car, last, counts as normal)."""
        cfg = self.cfg
        table = PROFILE_TABLE[np.append(self.style, 1)]
        self._params = (cfg.time_headway_s * table[:, 0], cfg.accel_max_mps2 * table[:, 1], cfg.min_gap_m * table[:, 2])
        self._politeness = np.where(table[:, 4] < 0, cfg.politeness, table[:, 4])

    def _draw_styles(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Profile indices and desired-speed multipliers for ``n`` new drivers."""
        style = rng.choice(len(PROFILES), size=n, p=self.cfg.mix.probabilities())
        return style, PROFILE_TABLE[style, 3]

    def reset(self, rng: np.random.Generator, ego_s: float, ego_d: float) -> None:
        """Spawn ``count`` vehicles around the ego car with random lanes, gaps and speeds."""
        cfg, n = self.cfg, self.cfg.count
        self.set_state(np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n), np.zeros(n))
        self.style, speed_factor = self._draw_styles(rng, n)
        self.v0 = rng.uniform(cfg.speed_min_mps, cfg.speed_max_mps, n) * speed_factor
        self.v = self.v0 * rng.uniform(0.85, 1.0, n)
        self._refresh_params()
        ego_lane = int(self.road.lane_index(ego_d))
        placed_s: list[float] = [ego_s]
        placed_lane: list[int] = [ego_lane]
        for i in range(n):  # sequential rejection sampling at reset only; step() is fully vectorised
            for _ in range(50):
                s = ego_s + rng.uniform(-cfg.spawn_behind_m, cfg.spawn_ahead_m)
                lane = int(rng.choice(self._lanes))
                s = float(np.clip(s, 5.0, self.road.length_m - 5.0))
                same = np.asarray(placed_lane) == lane
                if not np.any(np.abs(np.asarray(placed_s)[same] - s) < VEHICLE_LENGTH_M + cfg.min_spawn_gap_m):
                    break
            self.s[i], self.lane[i] = s, lane
            placed_s.append(s)
            placed_lane.append(lane)
        self.d = self._offsets[self.lane].copy()
        self.cooldown = rng.uniform(0.0, cfg.lane_change_cooldown_s, n)

    # ------------------------------------------------------------------ neighbours
    def _occupancy(self, d: np.ndarray) -> np.ndarray:
        """(..., M, L) bool: lanes each body overlaps (a car straddling a line occupies both lanes)."""
        return np.abs(d[..., :, None] - self._offsets) < self._occ_half_m

    def _lane_of(self, d: np.ndarray) -> np.ndarray:
        """Nearest lane index for lateral offsets ``d`` (lanes are evenly spaced)."""
        lane = np.rint((d - self._offsets[0]) / self.road.lane_width_m).astype(np.int64)
        return np.minimum(np.maximum(lane, 0), len(self._offsets) - 1)

    def neighbour_tables(self, all_s: np.ndarray, all_d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Leader and follower of every traffic vehicle in every lane, from one gap tensor.

        Args:
            all_s: arc lengths of the traffic vehicles followed by any extra bodies (the ego car)
                that traffic must see [m].
            all_d: their lateral offsets [m].

        Returns:
            (lead, lead_gap, follow, follow_gap), each (n, L): body index (-1 for none) and
            bumper-to-bumper gap [m] (``inf`` for none).
        """
        out = _neighbour_tables(self, all_s[None], all_d[None])
        return out[0][0], out[1][0], out[2][0], out[3][0]

    # ------------------------------------------------------------------ stepping
    def step(self, dt_s: float, ego_s: float, ego_d: float, ego_v: float) -> None:
        """Advance every vehicle by ``dt_s``: IDM accelerations, MOBIL decisions, lateral motion."""
        step_traffic([self], dt_s, [ego_s], [ego_d], [ego_v])

    def recycle(self, rng: np.random.Generator, ego_s: float) -> np.ndarray:
        """Move vehicles that left the window around the ego car to its other end, keeping density.

        Returns the indices that were moved.
        """
        cfg = self.cfg
        rel = self.s - ego_s
        end = self.road.length_m - 10.0
        gone = np.flatnonzero((rel < -cfg.spawn_behind_m) | (rel > cfg.spawn_ahead_m) | (self.s > end))
        for i in gone:  # rare (a few per second at most): cheap enough as a loop
            ahead = rel[i] < 0 or self.s[i] > end
            lane = int(rng.choice(self._lanes))
            if ahead:
                s_new = ego_s + cfg.spawn_ahead_m - rng.uniform(0.0, 30.0)
            else:
                s_new = ego_s - cfg.spawn_behind_m + rng.uniform(0.0, 30.0)
            s_new = float(np.clip(s_new, 5.0, end - 5.0))
            others = np.delete(np.arange(self.count), i)
            same = np.abs(self.d[others] - self._offsets[lane]) < self.road.lane_width_m * 0.75
            if np.any(np.abs(self.s[others][same] - s_new) < VEHICLE_LENGTH_M + cfg.min_spawn_gap_m):
                continue  # try again next step
            self.s[i], self.lane[i], self.d[i] = s_new, lane, self._offsets[lane]
            style, speed_factor = self._draw_styles(rng, 1)
            self.style[i] = style[0]
            self.v0[i] = rng.uniform(cfg.speed_min_mps, cfg.speed_max_mps) * speed_factor[0]
            self.v[i] = self.v0[i] * rng.uniform(0.85, 1.0)
            self.d_rate[i] = 0.0
            self.cooldown[i] = cfg.lane_change_cooldown_s
        if len(gone):
            self._refresh_params()  # once for all respawned drivers, not per vehicle
        return gone


def _neighbour_tables(t: Traffic, all_s: np.ndarray, all_d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``Traffic.neighbour_tables`` for W worlds at once: ``all_s``, ``all_d`` (W, M); each result (W, n, L).

    Every operation is elementwise or reduces the last axis, so a world's rows are bit-identical
    to what it gets alone (the batched vector env relies on it; a test checks it).
    """
    w, n = all_s.shape[0], t.count
    ds = all_s[:, None, :] - all_s[:, :n, None]  # (W, n, M)
    m = all_s.shape[1]
    ds.reshape(w, n * m)[:, :: m + 1] = np.nan  # a vehicle is not its own neighbour (each world's diagonal)
    # (W, n, L, M), built by adding 0 / nan per (lane, body) so no broadcasting ``where`` is needed;
    # reductions run over the last, contiguous axis (several times faster in numpy than over a
    # middle axis at these sizes).
    lanes = len(t._offsets)
    occupied = t._occupancy(all_d).transpose(0, 2, 1)  # (W, L, M)
    gaps = ds[:, :, None, :] + np.where(occupied, 0.0, np.nan)[:, None, :, :]
    ahead = np.where(gaps >= 0, gaps, np.inf).reshape(w * n * lanes, -1)
    behind = np.where(gaps < 0, -gaps, np.inf).reshape(w * n * lanes, -1)
    lead, follow = ahead.argmin(axis=1), behind.argmin(axis=1)
    flat = np.arange(w * n * lanes)
    lead_gap = (ahead[flat, lead] - VEHICLE_LENGTH_M).reshape(w, n, lanes)
    follow_gap = (behind[flat, follow] - VEHICLE_LENGTH_M).reshape(w, n, lanes)
    lead, follow = lead.reshape(w, n, lanes), follow.reshape(w, n, lanes)
    lead[lead_gap == np.inf] = -1
    follow[follow_gap == np.inf] = -1
    return lead, lead_gap, follow, follow_gap


def _rows(arrays: list[np.ndarray]) -> np.ndarray:
    """(W, ...) from W worlds' arrays: a view for one world, a stacked copy for several."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


_GRIDS: dict[tuple[int, int], tuple[Any, np.ndarray, Any, np.ndarray]] = {}


def _grids(nw: int, n: int) -> tuple[Any, np.ndarray, Any, np.ndarray]:
    """Index grids for gathers over (W, n) and (W, n, 2): world (W, 1), vehicle (1, n), world (W, 1, 1), vehicle (1, n, 1).

    Fancy indexing with them is what ``table[rows, index]`` is for one world, and several times
    cheaper than ``np.take_along_axis`` at these sizes (which builds the grids on every call). One
    world's grid is the integer 0 (one index array fewer: the single env's step stays as fast as it
    was before batching).
    """
    key = (nw, n)
    if key not in _GRIDS:
        world: Any = 0 if nw == 1 else np.arange(nw)[:, None]
        world3: Any = 0 if nw == 1 else np.arange(nw)[:, None, None]
        _GRIDS[key] = (world, np.arange(n)[None, :], world3, np.arange(n)[None, :, None])
    return _GRIDS[key]


def _pick(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``table[w, i, index[w, i]]`` for a (W, n, L) table and (W, n) index (one world's ``table[rows, index]``)."""
    w, i, _, _ = _grids(*index.shape)
    return table[w, i, index]


def step_traffic(
    traffics: list[Traffic], dt_s: float, ego_s: list[float] | np.ndarray, ego_d: list[float] | np.ndarray, ego_v: list[float] | np.ndarray
) -> None:
    """Advance the traffic of W worlds by ``dt_s`` at once: IDM, MOBIL, lateral motion (``Traffic.step`` is W = 1).

    The worlds share one configuration and road (a vector env of one id); each world's vehicles
    are one row of (W, n) arrays, and every operation is elementwise or reduces within a row, so a
    world's result is bit-identical to stepping it alone. Numpy's per-call cost, not the
    arithmetic, is what a step of 20 vehicles spends: one call for 16 worlds costs about what one
    call for one world does (docs/performance.md).
    """
    first = traffics[0]
    n = first.count
    if n == 0:
        return
    cfg = first.cfg
    nw = len(traffics)
    offsets = first._offsets
    if nw == 1:  # the single env's step: views, no stacking
        s, v, v0, d, lane_now = first.s[None], first.v[None], first.v0[None], first.d[None], first.lane[None]
        params = [first._params[k][None] for k in range(3)]
        cooldown = first.cooldown[None]
    else:
        s, v, v0, d = (
            _rows([t.s for t in traffics]),
            _rows([t.v for t in traffics]),
            _rows([t.v0 for t in traffics]),
            _rows([t.d for t in traffics]),
        )
        lane_now = _rows([t.lane for t in traffics])
        params = [_rows([t._params[k] for t in traffics]) for k in range(3)]  # (W, n + 1) each
        cooldown = _rows([t.cooldown for t in traffics])
    # Traffic plus the ego car as the last body.
    bodies = np.empty((4, nw, n + 1))
    bodies[0, :, :n], bodies[1, :, :n], bodies[2, :, :n], bodies[3, :, :n] = s, v, v0, d
    ego_v = np.asarray(ego_v, dtype=np.float64)
    bodies[:, :, n] = (ego_s, ego_v, np.maximum(ego_v, 0.1), ego_d)
    all_s, all_v, all_v0, all_d = bodies
    lead, lead_gap, follow, follow_gap = _neighbour_tables(first, all_s, all_d)
    cur_lane = first._lane_of(d)
    # Longitudinal: the nearer of the leaders in the current lane and (mid lane-change) the target lane.
    g_cur, g_tgt = _pick(lead_gap, cur_lane), _pick(lead_gap, lane_now)
    use_t = g_tgt < g_cur
    front = np.where(use_t, _pick(lead, lane_now), _pick(lead, cur_lane))
    gap = np.minimum(g_cur, g_tgt)
    v_front = np.where(front >= 0, all_v[_grids(nw, n)[0], front], v)
    acc = idm_acceleration(v, v0, gap, v - v_front, cfg, (params[0][:, :n], params[1][:, :n], params[2][:, :n]))

    deciding = []
    for i, t in enumerate(traffics):
        t._decision_clock -= dt_s
        if t._decision_clock <= 0.0 and cfg.lane_changes:
            t._decision_clock += cfg.decision_period_s
            deciding.append(i)
    if deciding:
        sel = np.asarray(deciding) if len(deciding) < nw else slice(None)
        new_lane, new_cool, changes = _mobil(
            first,
            s[sel], v[sel], v0[sel], d[sel], lane_now[sel], cooldown[sel],
            all_v[sel], all_v0[sel], lead[sel], lead_gap[sel], follow[sel], follow_gap[sel], acc[sel], gap[sel], v_front[sel],
            [p[sel] for p in params], _rows([t._politeness for t in traffics])[sel],  # only when some world decides
        )  # fmt: skip
        lane_now, cooldown = lane_now.copy(), cooldown.copy()  # one world's rows are views of its own arrays
        lane_now[sel], cooldown[sel] = new_lane, new_cool
        for i, c in zip(deciding, changes.tolist(), strict=True):
            traffics[i].lane_changes += c
    cooldown = cooldown - dt_s

    # Integrate: speeds never go negative; lateral motion towards the target lane centre.
    v_new = np.maximum(v + acc * dt_s, 0.0)
    s_new = s + 0.5 * (v + v_new) * dt_s
    # Constant lateral speed, easing in over the last half metre.
    d_rate = np.minimum(np.maximum(2.0 * (offsets[lane_now] - d), -cfg.lateral_speed_mps), cfg.lateral_speed_mps)
    d_new = d + d_rate * dt_s
    for i, t in enumerate(traffics):
        t.s, t.v, t.d, t.d_rate, t.accel, t.cooldown = s_new[i], v_new[i], d_new[i], d_rate[i], acc[i], cooldown[i]
        if deciding:
            t.lane = lane_now[i]


def _mobil(
    t: Traffic,
    s: np.ndarray,
    v1: np.ndarray,
    v0: np.ndarray,
    d: np.ndarray,
    lane: np.ndarray,
    cooldown: np.ndarray,
    all_v: np.ndarray,
    all_v0: np.ndarray,
    lead: np.ndarray,
    lead_gap: np.ndarray,
    follow: np.ndarray,
    follow_gap: np.ndarray,
    acc: np.ndarray,
    gap: np.ndarray,
    v_front: np.ndarray,
    params: list[np.ndarray],
    politeness: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MOBIL lane choice for all settled vehicles of W worlds, both sides at once (arrays (W, n, 2)).

    Returns the new lanes and cooldowns (W, n) and each world's number of lane changes (W,).
    """
    cfg, n = t.cfg, t.count
    offsets = t._offsets
    n_lanes = len(offsets)
    nw = s.shape[0]
    settled = (np.abs(d - offsets[lane]) < 0.2) & (cooldown <= 0.0)
    target = lane[:, :, None] + np.array([-1, 1])[None, None, :]  # (W, n, 2): right, left
    valid = settled[:, :, None] & (target >= 0) & (target < n_lanes)
    tgt = np.minimum(np.maximum(target, 0), n_lanes - 1)
    valid &= t._lane_allowed[tgt]
    if not np.any(valid):
        return lane, cooldown, np.zeros(nw, dtype=np.int64)
    w2, _, wi, ri = _grids(nw, n)  # world index for (W, n) and (W, n, 2) gathers, vehicle index for (W, n, 2)
    v = v1[:, :, None]
    T, A, S0 = params
    own = (T[:, :n, None], A[:, :n, None], S0[:, :n, None])
    nl, nlgap = lead[wi, ri, tgt], lead_gap[wi, ri, tgt]
    nf, nfgap = follow[wi, ri, tgt], follow_gap[wi, ri, tgt]
    acc_new = idm_acceleration(v, v0[:, :, None], nlgap, v - np.where(nl >= 0, all_v[wi, nl], v), cfg, own)
    # New follower: before (following the new leader) and after (following this vehicle).
    has_nf = nf >= 0
    vf, v0f = all_v[wi, nf], all_v0[wi, nf]
    pf = (T[wi, nf], A[wi, nf], S0[wi, nf])
    af_old = idm_acceleration(
        vf, v0f, np.where(has_nf, nfgap + nlgap + VEHICLE_LENGTH_M, np.inf), vf - np.where(nl >= 0, all_v[wi, nl], vf), cfg, pf
    )
    af_new = idm_acceleration(vf, v0f, np.where(has_nf, nfgap, np.inf), vf - v, cfg, pf)
    safe = (~has_nf | (af_new >= -cfg.safe_decel_mps2)) & (nfgap > 1.0) & (nlgap > 1.0)
    # Old follower: following this vehicle now, its leader after the change.
    of, ofgap = _pick(follow, lane), _pick(follow_gap, lane)
    has_of = of >= 0
    vo, v0o = all_v[w2, of], all_v0[w2, of]
    po = (T[w2, of], A[w2, of], S0[w2, of])
    ao_old = idm_acceleration(vo, v0o, np.where(has_of, ofgap, np.inf), vo - v1, cfg, po)
    ao_new = idm_acceleration(vo, v0o, np.where(has_of, ofgap + gap + VEHICLE_LENGTH_M, np.inf), vo - v_front, cfg, po)
    # Only traffic vehicles count in the politeness term: the ego car's acceleration is the agent's.
    # Keep-right (asymmetric) MOBIL: the old follower's gain counts only for moves to the right,
    # so a slow vehicle never pulls out to the left to let a faster one by.
    nf_w = (has_nf & (nf < n)).astype(np.float64)
    of_w = (has_of & (of < n)).astype(np.float64)[:, :, None] * np.array([1.0, 0.0])[None, None, :]
    polite = politeness[:, :n, None]
    gain = acc_new - acc[:, :, None] + polite * (nf_w * (af_new - af_old) + of_w * (ao_new - ao_old)[:, :, None])
    gain = gain + np.array([cfg.keep_right_bias_mps2, -cfg.keep_right_bias_mps2])[None, None, :]
    gain = np.where(valid & safe & (gain > cfg.lane_change_threshold_mps2), gain, -np.inf)
    best = np.argmax(gain, axis=2)
    change = np.isfinite(_pick(gain, best))
    new_lane = _pick(tgt, best)
    if np.count_nonzero(change) > 1:
        # Two vehicles deciding on the same step into the same lane close together: only the front
        # one goes (each safety check saw the lane before the other's move). A world with at most
        # one change has no clashing pair, so checking every world when any has two changes nothing.
        ds = s[:, None, :] - s[:, :, None]  # ds[w, i, j] = s_j - s_i
        clash = change[:, :, None] & change[:, None, :] & (new_lane[:, :, None] == new_lane[:, None, :])
        clash &= (ds > 0) & (ds < VEHICLE_LENGTH_M + cfg.min_spawn_gap_m)
        change &= ~np.any(clash, axis=2)
    return np.where(change, new_lane, lane), np.where(change, cfg.lane_change_cooldown_s, cooldown), np.count_nonzero(change, axis=1)
