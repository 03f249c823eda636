"""A Frenet-frame lattice planner (after Werling et al., ICRA 2010).

Every call samples a lattice of candidate trajectories relative to a reference path (the ego
lane's centre) and returns the cheapest one that is feasible and collision-free, or a safe stop.

Candidates are the product of
- lateral motions: a quintic ``d(sigma)`` over the distance travelled ``sigma``, from the current
  offset and heading to each allowed lane centre (reached after ``v * T`` metres for each
  ``T`` in ``lateral_times_s``, at least ``min_change_m``), so a stopped car never moves sideways;
- longitudinal motions in time: velocity keeping (quartic to a fraction of the desired speed),
  following the leader of the target lane (quintic to a point a time gap behind its predicted
  position, at its speed), and stopping at a stop or give-way line (quintic to rest).

Each candidate is scored for progress, speed against the desired speed and the curve speed the
friction allows, comfort (longitudinal and lateral jerk), lane changes and lane preference, and
clearance to the other vehicles, predicted at constant velocity; it is rejected when it needs
more acceleration, braking or lateral acceleration than the friction allows, runs a red light,
or overlaps a predicted vehicle (five circles per car). The arrays are (candidates, time steps)
and every step is vectorised; a call takes about 1-3 ms (``drive-sim perf`` reports it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from drive_sim.config import require
from drive_sim.road.geometry import Centreline, dedupe_points

#: ``PlanRequest.lead_brake_mps2``: the share of its braking limit the car plans to stop behind a
#: braking leader with, and its reaction time [s] (the replanning period plus the brake's lag).
LEAD_BRAKE_SHARE = 0.8
LEAD_REACTION_S = 0.3

GRAVITY_MPS2 = 9.81


@dataclass(frozen=True)
class LatticeConfig:
    """Lattice sampling, limits and cost weights.

    Attributes:
        dt_s: time step of the trajectories [s].
        horizon_s: length of every trajectory [s].
        durations_s: durations of the longitudinal manoeuvres [s].
        lateral_times_s: lane changes take ``speed * T`` metres for each of these [s].
        min_change_m: shortest lateral manoeuvre [m].
        min_lateral_s: shortest lateral manoeuvre in time at the current speed [s].
        speed_fractions: velocity-keeping targets as fractions of the desired speed.
        time_gap_s: following distance behind a leader, per unit of its speed [s].
        standstill_gap_m: bumper gap kept behind a stopped leader [m].
        stop_margin_m: the car's front stops this far before a stop line [m].
        lateral_grip_fraction: lateral acceleration is kept below this fraction of mu * g.
        max_curvature: largest path curvature the car can drive [1/m].
        ego_length_m, ego_width_m: the ego car's footprint [m].
        other_length_m, other_width_m: footprint of every other vehicle [m].
        safety_margin_m: extra clearance between footprints for a candidate to count as free [m].
        circles: circles per car in the fine collision check. Each covers 1/circles of the car's
            length and its full width, so the model overstates the half-width by
            ``hypot(L / (2 circles), W / 2) - W / 2``: 0.27 m with 3 circles, 0.11 m with 5. Three
            made a car turning out of a junction refuse to pass a car waiting at the opposite
            stop line 1.5 m away.
        w_progress, w_speed, w_jerk, w_lane_change, w_lane_preference, w_clearance: cost weights.
        clearance_scale_m: distance over which the clearance cost decays [m].
    """

    dt_s: float = 0.2
    horizon_s: float = 5.0
    durations_s: tuple[float, ...] = (2.5, 5.0)
    lateral_times_s: tuple[float, ...] = (3.0, 4.5)
    min_change_m: float = 12.0
    min_lateral_s: float = 1.5
    speed_fractions: tuple[float, ...] = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)
    time_gap_s: float = 1.5
    standstill_gap_m: float = 4.0
    stop_margin_m: float = 1.5
    lateral_grip_fraction: float = 0.6
    max_curvature: float = 0.2
    ego_length_m: float = 4.5
    ego_width_m: float = 1.8
    other_length_m: float = 4.5
    other_width_m: float = 1.8
    safety_margin_m: float = 0.4
    circles: int = 5
    w_progress: float = 0.5
    w_speed: float = 2.0
    w_jerk: float = 0.01
    w_lane_change: float = 0.3
    w_lane_preference: float = 0.1
    w_clearance: float = 1.0
    clearance_scale_m: float = 0.5

    def __post_init__(self) -> None:
        require(1 <= self.circles <= 9, "planner.circles", f"must be in [1, 9], got {self.circles}")
        require(0 < self.dt_s <= self.horizon_s, "planner.dt_s", f"must be positive and at most horizon_s, got {self.dt_s}")
        require(all(0 < t <= self.horizon_s for t in self.durations_s), "planner.durations_s", "each must be in (0, horizon_s]")
        require(all(t > 0 for t in self.lateral_times_s), "planner.lateral_times_s", "each must be positive")
        require(all(0 <= f <= 1.5 for f in self.speed_fractions), "planner.speed_fractions", "each must be in [0, 1.5]")


@dataclass(frozen=True)
class Obstacles:
    """Other vehicles, in the frame of the reference path.

    Attributes:
        xy: (M, 2) centre positions [m].
        velocity: (M, 2) velocities [m/s].
        yaw_rad: (M,) headings [rad].
    """

    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    yaw_rad: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class PlanRequest:
    """What the planner knows at one instant (any planar frame; the path sets it).

    Attributes:
        path: reference path, the centre of the ego car's lane; it should reach at least
            ``horizon_s * speed`` metres ahead (it is extended straight beyond its end).
        s_m, d_m: the ego car's arc length along ``path`` and offset from it (left positive) [m].
        heading_error_rad: ego heading minus the path heading [rad].
        speed_mps: ego speed [m/s].
        accel_mps2: current longitudinal acceleration [m/s^2].
        lane_offsets_m: offsets of the lane centres the car may end in, relative to ``path``.
        desired_speed_mps: the speed the driver wants (the limit, or a meta action's target).
        speed_limit_mps: never planned above this [m/s].
        friction: tyre-road friction the driver is told or estimates.
        max_accel_mps2, max_decel_mps2: what the car can do on this friction (both >= 0).
        obstacles: other vehicles.
        stop_s_m: arc length of a line the car must stop before (a red or amber signal), or None.
        yield_s_m: arc length of a give-way line, or None (stopping there is offered, not forced).
        preferred_offset_m: lane centre the driver prefers (keep right, a meta action), or None.
        time_gap_scale: the following gap is ``time_gap_s`` times this (a driver unsure of what
            it perceives keeps longer gaps).
        lead_brake_mps2: the leader in the car's lane may brake this hard at any moment (what
            lies beyond it is unseen: a queue it hides): the desired speed is capped so that the
            car, braking at ``LEAD_BRAKE_SHARE`` of its own limit after ``LEAD_REACTION_S``, stops
            behind it (the longitudinal safe distance of RSS, Shalev-Shwartz et al. 2017). None:
            the leader keeps its speed, as the constant-velocity predictions have it.
    """

    path: Centreline
    s_m: float
    d_m: float
    heading_error_rad: float
    speed_mps: float
    accel_mps2: float
    lane_offsets_m: tuple[float, ...]
    desired_speed_mps: float
    speed_limit_mps: float
    friction: float
    max_accel_mps2: float
    max_decel_mps2: float
    obstacles: Obstacles = field(default_factory=Obstacles)
    stop_s_m: float | None = None
    yield_s_m: float | None = None
    preferred_offset_m: float | None = None
    time_gap_scale: float = 1.0
    lead_brake_mps2: float | None = None


@dataclass(frozen=True)
class Trajectory:
    """The chosen plan, sampled every ``dt_s``.

    Attributes:
        t_s, s_m, d_m, x_m, y_m, v_mps, a_mps2: (K,) samples (s, d relative to the request's path).
        geometry: the planned path ahead in the request's frame (for the path controller).
        target_offset_m: the lane centre the plan ends in.
        kind: "keep", "follow", "stop" (velocity keeping, car following, stopping at a line) or
            "emergency" (no candidate was free: brake as hard as the friction allows).
        cost: its cost (inf for an emergency stop).
        candidates: how many candidates were scored.
        free: how many of them were feasible and collision-free.
    """

    t_s: np.ndarray
    s_m: np.ndarray
    d_m: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    v_mps: np.ndarray
    a_mps2: np.ndarray
    geometry: Centreline
    target_offset_m: float
    kind: str
    cost: float
    candidates: int
    free: int


def rss_speed(gap_m: np.ndarray | float, lead_mps: float, brake_mps2: float, lead_brake_mps2: float, reaction_s: float) -> np.ndarray:
    """The highest speed from which a car ``gap_m`` behind a leader at ``lead_mps`` stops behind it if the leader brakes at once.

    The car reacts after ``reaction_s`` and brakes at ``brake_mps2``; the leader brakes at
    ``lead_brake_mps2``: the car's speed ``v`` satisfies ``v t_r + v^2 / 2b <= gap + v_l^2 / 2b_l``.
    """
    b = max(brake_mps2, 0.1)
    room = np.maximum(gap_m, 0.0) + lead_mps * lead_mps / (2.0 * max(lead_brake_mps2, 0.1))
    return b * (-reaction_s + np.sqrt(reaction_s * reaction_s + 2.0 * room / b))


def _quartic(v0: float, a0: float, v1: np.ndarray, T: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance, speed and acceleration over ``t`` (N, K) for quartics from (v0, a0) to (v1, 0) at T, then constant speed."""
    T = T[:, None]
    v1 = v1[:, None]
    # s(t) = v0 t + a0 t^2 / 2 + c3 t^3 + c4 t^4 with v(T) = v1, a(T) = 0.
    c3 = (3 * (v1 - v0) - 2 * a0 * T) / (3 * T**2)
    c4 = (2 * (v0 - v1) + a0 * T) / (4 * T**3)
    tc = np.minimum(t, T)
    s = v0 * tc + 0.5 * a0 * tc**2 + c3 * tc**3 + c4 * tc**4
    v = v0 + a0 * tc + 3 * c3 * tc**2 + 4 * c4 * tc**3
    a = a0 + 6 * c3 * tc + 12 * c4 * tc**2
    after = t > T
    s = s + np.where(after, v1 * (t - T), 0.0)
    a = np.where(after, 0.0, a)
    return s, v, a


def _quintic_stop(
    v0: float, a0: float, s1: np.ndarray, v1: np.ndarray, T: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance, speed and acceleration for quintics from (0, v0, a0) to (s1, v1, 0) at T, then constant speed v1."""
    T = T[:, None]
    s1, v1 = s1[:, None], v1[:, None]
    # Solve for c3, c4, c5 of s = v0 t + a0 t^2/2 + c3 t^3 + c4 t^4 + c5 t^5.
    r0 = s1 - v0 * T - 0.5 * a0 * T**2
    r1 = v1 - v0 - a0 * T
    r2 = -a0
    c3 = (10 * r0 - 4 * r1 * T + 0.5 * r2 * T**2) / T**3
    c4 = (-15 * r0 + 7 * r1 * T - r2 * T**2) / T**4
    c5 = (6 * r0 - 3 * r1 * T + 0.5 * r2 * T**2) / T**5
    tc = np.minimum(t, T)
    s = v0 * tc + 0.5 * a0 * tc**2 + c3 * tc**3 + c4 * tc**4 + c5 * tc**5
    v = v0 + a0 * tc + 3 * c3 * tc**2 + 4 * c4 * tc**3 + 5 * c5 * tc**4
    a = a0 + 6 * c3 * tc + 12 * c4 * tc**2 + 20 * c5 * tc**3
    after = t > T
    s = s + np.where(after, v1 * (t - T), 0.0)
    a = np.where(after, 0.0, a)
    return s, v, a


def _lateral(d0: float, slope0: float, d1: np.ndarray, length: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offset d and its second derivative [1/m] over ``sigma`` (N, K): quintics (d0, slope0, 0) -> (d1, 0, 0)."""
    L = length[:, None]
    d1 = d1[:, None]
    r0 = d1 - d0 - slope0 * L
    r1 = -slope0
    c3 = (10 * r0 - 4 * r1 * L) / L**3
    c4 = (-15 * r0 + 7 * r1 * L) / L**4
    c5 = (6 * r0 - 3 * r1 * L) / L**5
    x = np.minimum(np.maximum(sigma, 0.0), L)
    d = d0 + slope0 * x + c3 * x**3 + c4 * x**4 + c5 * x**5
    dpp = 6 * c3 * x + 12 * c4 * x**2 + 20 * c5 * x**3
    dpp = np.where(sigma >= L, 0.0, dpp)
    return d, dpp


class LatticePlanner:
    """Samples, scores and picks a trajectory; see the module docstring."""

    def __init__(self, cfg: LatticeConfig | None = None) -> None:
        self.cfg = cfg or LatticeConfig()
        c = self.cfg
        self.t = np.arange(0.0, c.horizon_s + 1e-9, c.dt_s)
        # Circle centres along a car's length, and the radius covering its footprint.
        k = c.circles
        centres = (np.arange(k) - (k - 1) / 2) / k  # circle centres as fractions of the length
        self._ego_off = centres * c.ego_length_m
        self._ego_r = math.hypot(c.ego_length_m / (2 * k), c.ego_width_m / 2)
        self._oth_off = centres * c.other_length_m
        self._oth_r = math.hypot(c.other_length_m / (2 * k), c.other_width_m / 2)

    # ------------------------------------------------------------------ candidates
    def _leaders(
        self, req: PlanRequest, ob_s: np.ndarray, ob_d: np.ndarray, ob_v: np.ndarray, offsets: np.ndarray
    ) -> list[tuple[float, float] | None]:
        """Per lane offset: (arc length, speed along the path) of the nearest vehicle ahead in it."""
        out: list[tuple[float, float] | None] = []
        half = 0.5 * (self.cfg.other_width_m + self.cfg.ego_width_m) * 0.9
        for off in offsets:
            ahead = (ob_s > req.s_m) & (np.abs(ob_d - off) < half)
            if not np.any(ahead):
                out.append(None)
                continue
            i = int(np.flatnonzero(ahead)[np.argmin(ob_s[ahead])])
            out.append((float(ob_s[i]), float(ob_v[i])))
        return out

    def plan(self, req: PlanRequest) -> Trajectory:
        """The best trajectory for ``req`` (or an emergency stop when no candidate is free)."""
        c = self.cfg
        t = self.t
        K = len(t)
        v0 = max(req.speed_mps, 0.0)
        a0 = min(max(req.accel_mps2, -req.max_decel_mps2), req.max_accel_mps2)
        # A braking car near standstill stops braking: no plan starts by reversing.
        a0 = max(a0, -v0 / 1.5)
        v_des = max(min(req.desired_speed_mps, req.speed_limit_mps), 0.0)
        # Speed envelope along the path: at every point no faster than lets the car slow, at half
        # its braking power, to every curve speed further ahead (over its braking distance plus
        # 50 m). It anticipates bends beyond the 5 s horizon, which matters on ice.
        mu_g = req.friction * GRAVITY_MPS2
        b = 0.5 * max(req.max_decel_mps2, 0.1)
        grid = np.linspace(0.0, max(v0, v_des) ** 2 / (2 * b) + 50.0, 50)
        _, _, k_grid = req.path.interpolate(req.s_m + grid)
        v_curve_grid = np.sqrt(c.lateral_grip_fraction * mu_g / np.maximum(np.abs(k_grid), 1e-4))
        gap = grid[None, :] - grid[:, None]  # (from, to)
        reach = np.sqrt(v_curve_grid[None, :] ** 2 + 2 * b * np.maximum(gap, 0.0))
        envelope = np.min(np.where(gap >= 0, reach, np.inf), axis=1)
        v_des = min(v_des, float(envelope[0]))
        path = req.path
        # Obstacles in Frenet coordinates of the path (for leaders only; collisions are checked in xy).
        ob = req.obstacles
        if len(ob.xy):
            ob_s, ob_d, ob_h = path.project(ob.xy)
            ob_v = ob.velocity[:, 0] * np.cos(ob_h) + ob.velocity[:, 1] * np.sin(ob_h)
        else:
            ob_s = ob_d = ob_v = np.zeros(0)
        offsets = np.asarray(req.lane_offsets_m, dtype=np.float64)
        leaders = self._leaders(req, ob_s, ob_d, ob_v, offsets)
        # The leader that may brake (PlanRequest.lead_brake_mps2): the one ahead where the car is now.
        rss_lead = None
        if req.lead_brake_mps2 is not None:
            rss_lead = self._leaders(req, ob_s, ob_d, ob_v, np.array([req.d_m]))[0]
        if rss_lead is not None:
            rss_gap0 = rss_lead[0] - req.s_m - 0.5 * (c.other_length_m + c.ego_length_m) - c.standstill_gap_m
            rss_lv = max(rss_lead[1], 0.0)
            rss_b = LEAD_BRAKE_SHARE * req.max_decel_mps2
            assert req.lead_brake_mps2 is not None
            v_des = min(v_des, float(rss_speed(rss_gap0, rss_lv, rss_b, req.lead_brake_mps2, LEAD_REACTION_S)))

        # ---- longitudinal profiles, shared by all lateral motions except following (per lane)
        durations = np.asarray(c.durations_s)
        fr = np.asarray(c.speed_fractions)
        # Targets: fractions of the desired speed, plus the current speed and what the car can
        # reach up or down within each duration (so a car far from the desired speed, on ice
        # say, always has a feasible way towards it).
        up = np.minimum(v0 + 0.6 * req.max_accel_mps2 * durations, v_des)
        down = np.maximum(v0 - 0.6 * req.max_decel_mps2 * durations, 0.0)
        vk_v1 = np.concatenate([np.repeat(fr * v_des, len(durations)), np.full(len(durations), min(v0, v_des)), up, down])
        vk_T = np.concatenate([np.tile(durations, len(fr)), durations, durations, durations])
        lon_s, lon_v, lon_a = _quartic(v0, a0, vk_v1, vk_T, t[None, :])
        lon_kind = ["keep"] * len(vk_v1)
        lon_lane = [-1] * len(vk_v1)  # -1: any lane
        extra_s, extra_v, extra_T = [], [], []
        front = c.ego_length_m / 2
        for line_s in (req.stop_s_m, req.yield_s_m):
            if line_s is None:
                continue
            if line_s - front - req.s_m < -0.3:
                continue  # the front is already past the line
            # Never ask for a shorter stop than a comfortable one (inside the margin: stop soon).
            dist = max(line_s - c.stop_margin_m - front - req.s_m, v0 * v0 / max(req.max_decel_mps2, 0.1))
            t_min = max(2.0 * dist / max(v0, 0.5), 1.0)
            for T in (t_min, 1.5 * t_min):
                extra_s.append(dist)
                extra_v.append(0.0)
                extra_T.append(min(T, 30.0))
                lon_kind.append("stop")
                lon_lane.append(-1)
        for k, lead in enumerate(leaders):
            if lead is None:
                continue
            ls, lv = lead
            lv = max(lv, 0.0)
            for T in durations:
                target = (
                    ls + lv * T - (c.other_length_m / 2 + front) - c.standstill_gap_m - c.time_gap_s * req.time_gap_scale * lv - req.s_m
                )
                extra_s.append(max(target, 0.0))
                extra_v.append(min(lv, v_des))
                extra_T.append(T)
                lon_kind.append("follow")
                lon_lane.append(k)
        if extra_s:
            es, ev, ea = _quintic_stop(v0, a0, np.asarray(extra_s), np.asarray(extra_v), np.asarray(extra_T), t[None, :])
            # Stopping profiles hold still after T instead of creeping on at v1 = 0.
            lon_s, lon_v, lon_a = np.vstack([lon_s, es]), np.vstack([lon_v, ev]), np.vstack([lon_a, ea])
        n_lon = len(lon_s)

        # ---- lateral motions
        slope0 = math.tan(max(min(req.heading_error_rad, 1.2), -1.2))
        lane_w = float(np.min(np.diff(np.sort(offsets)))) if len(offsets) > 1 else 3.5
        lat_d1, lat_len, lat_lane = [], [], []
        for k, off in enumerate(offsets):
            # The manoeuvre's length shrinks with the offset still to cover, so replanning every
            # step continues a lane change instead of postponing it; it never gets shorter than
            # ``min_lateral_s`` of driving, which keeps the lateral acceleration low.
            share = min(abs(off - req.d_m) / lane_w, 1.0)
            times = c.lateral_times_s[:1] if share < 0.1 else c.lateral_times_s
            for T in times:
                lat_d1.append(off)
                lat_len.append(max(v0 * T * share, v0 * c.min_lateral_s, c.min_change_m))
                lat_lane.append(k)
        # Holding the present offset: offered only to a car already closer to a vehicle than the
        # margin (below), for whom going back to the lane centre may mean going nearer it.
        hold_lat = len(lat_d1)
        lat_d1.append(req.d_m)
        lat_len.append(max(v0 * c.lateral_times_s[0], c.min_change_m))
        lat_lane.append(int(np.argmin(np.abs(offsets - req.d_m))) if len(offsets) else 0)
        n_lat = len(lat_d1)

        # ---- combine: candidate (i_lat, i_lon), skipping follow profiles of other lanes
        pairs = [(i, j) for i in range(n_lat) for j in range(n_lon) if lon_lane[j] in (-1, lat_lane[i])]
        li = np.array([p[0] for p in pairs])
        lj = np.array([p[1] for p in pairs])
        n = len(pairs)
        S = lon_s[lj]  # (n, K) distance travelled
        V = lon_v[lj]
        A = lon_a[lj]
        D, Dpp = _lateral(req.d_m, slope0, np.asarray(lat_d1)[li], np.asarray(lat_len)[li], S)
        s_abs = req.s_m + S
        xy, _ = path.to_world(s_abs.ravel(), D.ravel())
        X, Y = xy[:, 0].reshape(n, K), xy[:, 1].reshape(n, K)
        _, href, kref = path.interpolate(s_abs.ravel())
        kref = kref.reshape(n, K)
        href = href.reshape(n, K)
        # Heading: the path's plus the slope of d(sigma); curvature: the path's plus d''.
        dslope = np.gradient(D, axis=1) / np.maximum(np.gradient(S, axis=1), 1e-3)
        moving = np.gradient(S, axis=1) > 1e-3
        dslope = np.where(moving, dslope, slope0 if abs(slope0) < 0.3 else 0.0)
        H = href + np.arctan(dslope)
        kappa = kref + Dpp

        # ---- feasibility
        decel, accel = req.max_decel_mps2, req.max_accel_mps2
        lat_acc = V**2 * np.abs(kappa)
        ok = np.all(V >= -0.2, axis=1)
        ok &= np.all(A <= accel + 0.3, axis=1)
        ok &= np.all(A >= -decel - 0.3, axis=1)
        ok &= np.all(lat_acc <= 1.15 * c.lateral_grip_fraction * mu_g + 0.1, axis=1)
        ok &= np.all(np.abs(kappa) <= c.max_curvature, axis=1) | (v0 < 2.0)
        if req.stop_s_m is not None:
            # Never past a red line, unless the car can no longer stop before it (amber dilemma).
            gap = req.stop_s_m - front - req.s_m
            can_stop = gap > v0 * v0 / (2.0 * max(decel, 0.1)) - 0.5
            if can_stop:
                ok &= (s_abs.max(axis=1) + front <= req.stop_s_m - 0.3) | (S.max(axis=1) < 0.05)

        # ---- collisions with constant-velocity predictions
        clearance = np.full(n, np.inf)
        if len(ob.xy):
            ox = ob.xy[:, 0][:, None] + ob.velocity[:, 0][:, None] * t[None, :]  # (M, K)
            oy = ob.xy[:, 1][:, None] + ob.velocity[:, 1][:, None] * t[None, :]
            # Coarse pass on the car centres: a lower bound of the footprint clearance.
            reach = self._ego_r + self._oth_r + float(self._ego_off[-1] + self._oth_off[-1])
            cdx = X[:, None, :] - ox[None, :, :]
            cdy = Y[:, None, :] - oy[None, :, :]
            pair_clear = np.sqrt(cdx * cdx + cdy * cdy).min(axis=2) - reach  # (n, M)
            near_c, near_m = np.nonzero(pair_clear < c.safety_margin_m + 4.0 * c.clearance_scale_m)
            if len(near_c):
                # Fine pass (``circles`` per car) only for the pairs that come close.
                ch, sh = np.cos(H[near_c]), np.sin(H[near_c])
                ex = X[near_c][:, :, None] + ch[:, :, None] * self._ego_off  # (P, K, circles)
                ey = Y[near_c][:, :, None] + sh[:, :, None] * self._ego_off
                oyaw = ob.yaw_rad[near_m][:, None, None]
                ocx = ox[near_m][:, :, None] + np.cos(oyaw) * self._oth_off  # (P, K, circles)
                ocy = oy[near_m][:, :, None] + np.sin(oyaw) * self._oth_off
                dx = ex[:, :, :, None] - ocx[:, :, None, :]
                dy = ey[:, :, :, None] - ocy[:, :, None, :]
                fine = np.sqrt((dx * dx + dy * dy).min(axis=(1, 2, 3))) - (self._ego_r + self._oth_r)
                pair_clear[near_c, near_m] = fine
            # A vehicle behind the car in its own lane is that vehicle's to avoid: candidates that
            # stay in the lane ignore it (otherwise a fast follower would make the car brake).
            cur_off = offsets[np.argmin(np.abs(offsets - req.d_m))] if len(offsets) else 0.0
            lane_half = 0.5 * lane_w
            follower = (ob_s < req.s_m - 1.0) & (np.abs(ob_d - cur_off) < lane_half)
            stays = np.abs(np.asarray(lat_d1)[li] - cur_off) < 0.1
            pair_clear = np.where(stays[:, None] & follower[None, :], np.inf, pair_clear)
            clearance = pair_clear.min(axis=1)
            # Standing still is always allowed: a stopped car cannot avoid what drives into it.
            still = np.max(V, axis=1) < 0.1
            strict = ok & ((clearance > c.safety_margin_m) | still) & (li != hold_lat)
            # A car standing closer to a vehicle than the margin, with no plan but standing (a car
            # waiting in the junction box beside it, or its own estimate a few tenths off), may
            # take a plan that keeps its present clearance (within 5 cm), holding its offset if need be:
            # the margin alone froze it there for good, the other car waiting for it in turn
            # (Intersection-v0 on perceived, tuning seed 1005). Anywhere else the candidates and
            # their feasibility are as before (offered whenever tight, the offset-holding plan won
            # on its low jerk and drifted a car off a roundabout, a fraction of a metre a replan).
            if v0 < 0.5 and not np.any(strict & ~still):
                now = self._clearance_now(X[0, 0], Y[0, 0], H[0, 0], ob)
                if now < c.safety_margin_m:
                    strict = ok & (((clearance >= now - 0.05) & (clearance > 0.1)) | still)
            ok = strict
        else:
            ok &= li != hold_lat

        # ---- costs
        horizon = t[-1]
        v_curve = np.sqrt(c.lateral_grip_fraction * mu_g / np.maximum(np.abs(kref), 1e-4))
        v_env = np.minimum(np.interp(S, grid, envelope), v_curve)
        if rss_lead is not None:
            # Along each plan, the leader (moving on at its speed) must stay far enough ahead to
            # stop behind it should it brake: the curve envelope's weight makes that near-binding.
            gap_t = rss_gap0 + rss_lv * t[None, :] - S
            v_env = np.minimum(v_env, rss_speed(gap_t, rss_lv, rss_b, req.lead_brake_mps2, LEAD_REACTION_S))
        v_ref = np.minimum(v_des, v_env)
        scale = max(v_des, 5.0)
        # Above the limit or the curve envelope is far dearer than below it.
        over_limit = np.maximum(V - req.speed_limit_mps - 0.5, 0.0) / scale
        over_env = np.maximum(V - v_env - 0.3, 0.0) / scale
        speed_cost = np.mean(((V - v_ref) / scale) ** 2 + 10.0 * over_limit**2 + 50.0 * over_env**2, axis=1)
        # Progress counts only up to what the reference speed would cover: beyond it, going further
        # means going too fast (a bend on ice), which must not pay.
        s_ref = np.sum(v_ref[:, 1:], axis=1) * c.dt_s
        progress_cost = -np.minimum(S[:, -1], s_ref) / (scale * horizon)
        jerk = np.diff(A, axis=1) / c.dt_s
        lat_jerk = np.diff(Dpp * V**2, axis=1) / c.dt_s
        jerk_cost = np.mean(jerk**2 + lat_jerk**2, axis=1) / 100.0
        d_end = np.asarray(lat_d1)[li]
        cur = offsets[np.argmin(np.abs(offsets - req.d_m))] if len(offsets) else 0.0
        lane_cost = np.abs(d_end - cur) / 3.5
        pref_cost = np.abs(d_end - req.preferred_offset_m) / 3.5 if req.preferred_offset_m is not None else np.zeros(n)
        clear_cost = np.exp(-np.maximum(clearance, 0.0) / c.clearance_scale_m) if len(ob.xy) else np.zeros(n)
        cost = (
            c.w_speed * speed_cost
            + c.w_progress * progress_cost
            + c.w_jerk * jerk_cost
            + c.w_lane_change * lane_cost
            + c.w_lane_preference * pref_cost
            + c.w_clearance * clear_cost
        )
        free = int(np.count_nonzero(ok))
        if free:
            best = int(np.flatnonzero(ok)[np.argmin(cost[ok])])
            kind = lon_kind[lj[best]]
            return self._trajectory(
                req, S[best], D[best], X[best], Y[best], V[best], A[best], float(d_end[best]), kind, float(cost[best]), n, free
            )
        return self._emergency(req, cur, n)

    def _clearance_now(self, x: float, y: float, heading: float, ob: Obstacles) -> float:
        """The gap between the car's footprint and the nearest vehicle's as they stand [m] (the circles' model)."""
        ex = x + math.cos(heading) * self._ego_off
        ey = y + math.sin(heading) * self._ego_off
        ox = ob.xy[:, 0][:, None] + np.cos(ob.yaw_rad)[:, None] * self._oth_off
        oy = ob.xy[:, 1][:, None] + np.sin(ob.yaw_rad)[:, None] * self._oth_off
        d = np.hypot(ex[None, :, None] - ox[:, None, :], ey[None, :, None] - oy[:, None, :])
        return float(d.min()) - (self._ego_r + self._oth_r)

    # ------------------------------------------------------------------ outputs
    def _geometry(self, req: PlanRequest, S: np.ndarray, D: np.ndarray) -> Centreline:
        """The planned path from 5 m behind to at least 40 m ahead, for the path controller."""
        sigma = np.linspace(-5.0, max(float(S[-1]), 0.0) + 40.0, 60)
        d = np.interp(sigma, S, D) if float(S[-1]) > 1e-3 else np.full_like(sigma, D[-1])
        # Beyond the plan the lane offset holds; behind the car the current offset holds.
        d = np.where(sigma > S[-1], D[-1], d)
        xy, _ = req.path.to_world(req.s_m + sigma, d)
        return Centreline(dedupe_points(xy))

    def _trajectory(self, req: PlanRequest, S, D, X, Y, V, A, d_end: float, kind: str, cost: float, n: int, free: int) -> Trajectory:  # noqa: ANN001
        return Trajectory(self.t, req.s_m + S, D, X, Y, V, A, self._geometry(req, S, D), d_end, kind, cost, n, free)

    def _emergency(self, req: PlanRequest, lane_offset: float, n: int) -> Trajectory:
        """Brake as hard as the friction allows, steering to the current lane's centre."""
        t = self.t
        v0 = max(req.speed_mps, 0.0)
        b = max(req.max_decel_mps2, 0.5)
        tc = np.minimum(t, v0 / b)
        S = v0 * tc - 0.5 * b * tc**2
        V = np.maximum(v0 - b * t, 0.0)
        A = np.where(V > 0, -b, 0.0)
        D, _ = _lateral(req.d_m, 0.0, np.array([lane_offset]), np.array([max(v0 * 2.0, 10.0)]), S[None, :])
        xy, _ = req.path.to_world(req.s_m + S, D[0])
        return Trajectory(
            t, req.s_m + S, D[0], xy[:, 0], xy[:, 1], V, A, self._geometry(req, S, D[0]), lane_offset, "emergency", math.inf, n, 0
        )
