"""Traffic on a lane graph: vehicles follow routes through merges, intersections and roundabouts.

Each vehicle has a route (entry lane to exit lane), its position on the route and an IDM driver
(the same ``idm_acceleration`` and driver profiles as the open-road ``Traffic``). Per step, every
vehicle's leader is the nearest of:

- a vehicle ahead on its own route (one (N, N+1) table of route distances; the ego car is the
  extra body);
- a vehicle approaching the same merge node from another lane and nearer to it ("first come,
  first served"); a vehicle that must give way is invisible to the others until it has accepted a
  gap, so the priority road never stops for a car waiting at the give-way line;
- any body in a short band straight ahead in the world frame (diverging lanes right after a
  split, and the ego car wherever it drives);
- a stop point: the give-way line while no gap has been accepted, a stop line on amber or red
  when the vehicle can still stop.

Give way: a vehicle nearing the end of a yielding lane accepts the gap when every priority
vehicle heading for the same node would arrive later than the time it needs to reach and clear
the node plus its critical gap. Signals: one phase per group (green, amber, then all-red until the
junction box is empty and no vehicle is still running the red), so crossing paths are never
occupied together. Vehicles leave at the end of their exit lane (counted per exit) and new ones
enter at free entry lanes. There are no lane changes on a lane graph (routes fix the lanes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drive_sim.road.network import LaneGraph, SignalConfig
from drive_sim.traffic import PROFILE_TABLE, PROFILES, VEHICLE_LENGTH_M, VEHICLE_WIDTH_M, TrafficConfig, cah_blend, idm_acceleration

GREEN, AMBER, RED = 0, 1, 2
#: Merge nodes are watched from this far upstream [m]; a follower watches at least this many
#: seconds of its own driving ahead.
NODE_LOOKAHEAD_M = 80.0
NODE_LOOKAHEAD_S = 5.0
#: The world-frame band straight ahead in which any body is a leader: length and half width [m].
BAND_AHEAD_M, BAND_HALF_M = 12.0, 1.9
#: The band's curvature is the lane's heading change over this distance ahead [m].
BAND_CURVE_M = 6.0


@dataclass(frozen=True)
class EgoOnGraph:
    """The ego car as traffic sees it: its lane (-1 when off every lane), route and motion."""

    lane: int
    s_m: float
    route: int
    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float


class NetworkTraffic:
    """All non-ego vehicles on a lane graph, as arrays over ``count`` slots.

    Attributes:
        active: which slots hold a vehicle (the others wait to enter).
        route, k: route index and position within it; ``lane`` is the current lane.
        s: arc length on the current lane [m]; v, v0: speed and desired speed [m/s].
        exited: vehicles that reached the end of each lane (non-zero only for exit lanes).
    """

    def __init__(self, graph: LaneGraph, cfg: TrafficConfig, signals: SignalConfig) -> None:
        self.graph = graph
        self.cfg = cfg
        self.signals = signals
        n = cfg.count
        self.active = np.zeros(n, dtype=bool)
        self.route = np.zeros(n, dtype=np.int64)
        self.k = np.zeros(n, dtype=np.int64)
        self.lane = np.zeros(n, dtype=np.int64)
        self.s = np.zeros(n)
        self.v = np.zeros(n)
        self.v0 = np.zeros(n)
        self.accel = np.zeros(n)
        self.committed = np.zeros(n, dtype=bool)
        self.style = np.ones(n, dtype=np.int64)
        self.exited = np.zeros(len(graph.lanes), dtype=np.int64)
        self.phase, self.stage, self.stage_t = 0, GREEN, 0.0
        self._merges = np.asarray(graph.merges, dtype=np.int64)
        self._merge_col = np.full(len(graph.lanes), -1, dtype=np.int64)
        self._merge_col[self._merges] = np.arange(len(self._merges))
        self._entries = np.asarray(sorted({r[0] for r in graph.routes}), dtype=np.int64)
        self._refresh_params()
        self._poses: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def count(self) -> int:
        """Number of vehicle slots."""
        return len(self.s)

    def _refresh_params(self) -> None:
        cfg = self.cfg
        table = PROFILE_TABLE[self.style]
        self._params = (cfg.time_headway_s * table[:, 0], cfg.accel_max_mps2 * table[:, 1], cfg.min_gap_m * table[:, 2])

    def _new_driver(self, rng: np.random.Generator, i: int) -> None:
        cfg = self.cfg
        self.style[i] = rng.choice(len(PROFILES), p=cfg.mix.probabilities())
        self.v0[i] = rng.uniform(cfg.speed_min_mps, cfg.speed_max_mps) * PROFILE_TABLE[self.style[i], 3]

    # ------------------------------------------------------------------ signals
    def signal_states(self) -> np.ndarray:
        """GREEN / AMBER / RED for every signal group."""
        out = np.full(self.graph.signal_groups, RED, dtype=np.int64)
        if self.graph.signal_groups and self.stage != RED:
            out[self.phase] = self.stage
        return out

    def _update_signals(self, dt_s: float, box_busy: bool, demand: np.ndarray) -> None:
        """Fixed green, amber and minimum all-red times; all-red holds while the box is busy.

        The next green goes to the next group in turn that has a vehicle waiting (``demand``),
        as a demand-actuated controller would; with no demand anywhere the turn simply passes.
        """
        sc = self.signals
        self.stage_t += dt_s
        if self.stage == GREEN and self.stage_t >= sc.green_s:
            self.stage, self.stage_t = AMBER, 0.0
        elif self.stage == AMBER and self.stage_t >= sc.amber_s:
            self.stage, self.stage_t = RED, 0.0
        elif self.stage == RED and self.stage_t >= sc.all_red_s and not box_busy:
            groups = self.graph.signal_groups
            order = [(self.phase + j) % groups for j in range(1, groups + 1)]
            self.phase = next((p for p in order if demand[p]), order[0])
            self.stage, self.stage_t = GREEN, 0.0

    # ------------------------------------------------------------------ spawning
    def reset(self, rng: np.random.Generator, ego: EgoOnGraph | None = None) -> None:
        """Fill the slots with vehicles on random routes, spread over the non-junction lanes.

        Nobody starts inside a junction, within reach of a give-way or stop line, or near the ego car.
        """
        g, cfg = self.graph, self.cfg
        self.active[:] = False
        self.committed[:] = False
        self.exited[:] = 0
        self.phase, self.stage, self.stage_t = 0, GREEN, 0.0
        placed: list[tuple[int, float]] = []  # (lane, s)
        if ego is not None and ego.lane >= 0:
            placed.append((ego.lane, ego.s_m))
        gap = VEHICLE_LENGTH_M + cfg.min_spawn_gap_m
        for i in range(self.count):
            self._new_driver(rng, i)
            for _ in range(50):
                r = int(rng.integers(len(g.routes)))
                spots = [
                    (k, lane)
                    for k, lane in enumerate(g.routes[r])
                    if not g.internal[lane] and g.length[lane] > self._keep_clear(lane) + 10.0
                ]
                if not spots:
                    continue
                k, lane = spots[int(rng.integers(len(spots)))]
                s = float(rng.uniform(5.0, g.length[lane] - self._keep_clear(lane)))
                if all(ln != lane or abs(ps - s) >= gap for ln, ps in placed):
                    break
            else:
                continue  # no room: the slot stays empty and enters later
            placed.append((lane, s))
            self.active[i], self.route[i], self.k[i], self.lane[i], self.s[i] = True, r, k, lane, s
            self.v[i] = min(self.v0[i], g.speed_limit[lane]) * rng.uniform(0.6, 0.9)
        self.accel[:] = 0.0
        self._refresh_params()
        self._poses = None
        if self.signals.random_start and g.signal_groups:
            sc = self.signals
            self.phase = int(rng.integers(g.signal_groups))
            t = float(rng.uniform(0.0, sc.green_s + sc.amber_s))
            self.stage, self.stage_t = (GREEN, t) if t < sc.green_s else (AMBER, t - sc.green_s)

    def _keep_clear(self, lane: int) -> float:
        """Distance before a lane's end where nobody is spawned [m]."""
        g = self.graph
        if g.signal_group[lane] >= 0:
            return 60.0
        if g.yield_m[lane] >= 0:
            return g.yield_m[lane] + 40.0
        return 5.0 if g.lanes[lane].successors else 20.0

    def recycle(self, rng: np.random.Generator, ego: EgoOnGraph | None = None) -> np.ndarray:
        """Let waiting slots enter at the start of a random route when its entry lane has room.

        Returns the slots that entered.
        """
        g = self.graph
        entered = []
        for i in np.flatnonzero(~self.active):
            r = int(rng.integers(len(g.routes)))
            lane = g.routes[r][0]
            on = self.active & (self.lane == lane)
            first = float(np.min(self.s[on])) if np.any(on) else math.inf
            if ego is not None and ego.lane == lane:
                first = min(first, ego.s_m)
            self._new_driver(rng, i)
            speed = min(self.v0[i], g.speed_limit[lane])
            if first < VEHICLE_LENGTH_M + self.cfg.min_gap_m + speed * self.cfg.time_headway_s + 5.0:
                continue  # the entry is busy; try again later
            self.active[i], self.route[i], self.k[i], self.lane[i], self.s[i], self.v[i] = True, r, 0, lane, 0.0, speed
            self.committed[i] = False
            entered.append(i)
        if entered:
            self._refresh_params()
        return np.asarray(entered, dtype=np.int64)

    # ------------------------------------------------------------------ poses
    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        """World position (n, 2) and heading (n,) of every slot (inactive slots: meaningless)."""
        if self._poses is None:
            self._poses = self.graph.poses(self.lane, self.s)
        return self._poses

    # ------------------------------------------------------------------ stepping
    def step(self, dt_s: float, ego: EgoOnGraph | None = None) -> None:
        """Advance every active vehicle by ``dt_s`` and the signals with them."""
        g, cfg, n = self.graph, self.cfg, self.count
        act = self.active
        lane, s, v = self.lane, self.s, self.v
        L = VEHICLE_LENGTH_M
        xy, yaw = self.poses()
        has_ego = ego is not None
        e_lane = ego.lane if has_ego else -1
        b_lane = np.append(lane, max(e_lane, 0))
        b_s = np.append(s, ego.s_m if has_ego else 0.0)
        b_v = np.append(v, ego.speed_mps if has_ego else 0.0)
        b_on_lane = np.append(act, e_lane >= 0)
        b_xy = np.vstack([xy, [[ego.x_m, ego.y_m]] if has_ego else [[1e9, 1e9]]])
        b_route = np.append(self.route, ego.route if has_ego and ego.route >= 0 else 0)
        b_routed = b_on_lane & np.append(
            np.ones(n, bool), has_ego and ego.route >= 0 and np.isfinite(g.route_start[max(ego.route, 0), max(e_lane, 0)])
        )

        start = g.route_start[self.route]  # (n, lanes)
        pos = start[np.arange(n), lane] + s  # distance travelled along each own route
        # 1. Leaders on the own route.
        dist = start[:, b_lane] + b_s[None, :] - pos[:, None]  # (n, m) centre distance along the route
        dist[:, ~b_on_lane] = np.inf
        dist[dist <= 0.0] = np.inf
        dist[np.arange(n), np.arange(n)] = np.inf

        # Signals now: a body waiting at a red or amber line (it can still stop there) is not
        # converging on anything beyond it, so nobody with a green defers to it at a merge node.
        to_end = g.length[lane] - s
        held = np.zeros(n + 1, dtype=bool)
        if g.signal_groups:
            states = self.signal_states()
            grp = g.signal_group[lane]
            state = np.where(grp >= 0, states[np.maximum(grp, 0)], GREEN)
            line_gap = to_end - 1.0 - L / 2
            need = v * v / (2.0 * np.maximum(line_gap, 0.1))
            controlled = act & (state != GREEN)
            stop = controlled & (need <= 5.0) & (line_gap > -L / 2)
            held[:n] = stop
            if has_ego and e_lane >= 0 and g.signal_group[e_lane] >= 0:
                # The ego car counts as held only once it is nearly stopped before a line that is not green.
                held[n] = states[g.signal_group[e_lane]] != GREEN and ego.speed_mps < 1.0 and ego.s_m < g.length[e_lane]

        # 2. Merge nodes: vehicles converging from other lanes, nearer to the node, that are visible.
        if len(self._merges):
            b_start = g.route_start[b_route][:, self._merges]  # (m, K)
            b_pos = np.append(pos, g.route_start[b_route[-1], b_lane[-1]] + b_s[-1])
            with np.errstate(invalid="ignore"):  # inf - inf where a body is not on that route
                dn = b_start - b_pos[:, None]
            dn[~b_routed[:, None] | ~np.isfinite(dn)] = np.inf
            approach = (dn > 0.0) & (dn < NODE_LOOKAHEAD_M)
            pred = g.route_prev[b_route][:, self._merges]  # (m, K)
            minor = g.yield_m[pred] >= 0.0
            seen = approach & (~minor | np.append(self.committed, True)[:, None]) & ~held[:, None]
            # A follower looks further ahead the faster it goes (NODE_LOOKAHEAD_S), so a fast car
            # on the main road brakes gently for a committed merging car instead of at its limit.
            look = np.maximum(NODE_LOOKAHEAD_M, v * NODE_LOOKAHEAD_S)[:, None]
            follows = (dn[:n] > 0.0) & (dn[:n] < look)
            cond = follows[:, None, :] & seen[None, :, :] & (dn[None, :, :] < dn[:n, None, :]) & (pred[None, :, :] != pred[:n, None, :])
            finite = np.where(np.isfinite(dn), dn, 1e9)
            node_gap = np.where(cond, finite[:n, None, :] - finite[None, :, :], np.inf).min(axis=2)
            node_gap[np.arange(n), np.arange(n)] = np.inf
            dist = np.minimum(dist, node_gap)
        else:
            dn = approach = pred = minor = None

        # 3. Anything in a short band straight ahead in the world frame.
        c, sn = np.cos(yaw), np.sin(yaw)
        rel = b_xy[None, :, :] - xy[:, None, :]  # (n, m, 2)
        ahead = rel[..., 0] * c[:, None] + rel[..., 1] * sn[:, None]
        side = -rel[..., 0] * sn[:, None] + rel[..., 1] * c[:, None]
        # The band bends with the lane (its heading change over the next few metres): a car turning
        # right must not stop for a car waiting at the opposite stop line, straight ahead of its
        # current heading but outside the turn (that deadlocked a junction behind an all-red).
        _, yaw_ahead = g.poses(lane, s + BAND_CURVE_M)
        span = np.maximum(np.minimum(g.length[lane] - s, BAND_CURVE_M), 1.0)
        kappa = ((yaw_ahead - yaw + math.pi) % (2.0 * math.pi) - math.pi) / span
        side = side - 0.5 * kappa[:, None] * np.minimum(np.maximum(ahead, 0.0), BAND_AHEAD_M) ** 2
        band = (ahead > 0.0) & (ahead < BAND_AHEAD_M) & (np.abs(side) < BAND_HALF_M)
        band[np.arange(n), np.arange(n)] = False
        # Among traffic only bodies going the same way (a queue on a crossing arm lies across a
        # turning path's band but is not in the way); the ego car counts whichever way it points.
        same_way = np.cos(yaw[None, :] - yaw[:, None]) > math.cos(math.radians(45.0))
        band[:, :n] &= act[None, :] & same_way
        dist = np.minimum(dist, np.where(band, ahead, np.inf))

        lead = np.argmin(dist, axis=1)
        rows = np.arange(n)
        gap = dist[rows, lead] - L
        v_lead = np.where(np.isfinite(gap), b_v[lead], v)
        # Leaders that are another lane's vehicle nearer to a merge node (a cut-in, in effect).
        via_node = np.zeros(n, dtype=bool) if dn is None else np.isfinite(gap) & (node_gap[rows, lead] <= dist[rows, lead])

        # 4. Give way: decide for vehicles nearing the end of a yielding lane without a gap yet.
        ylane = act & (g.yield_m[lane] >= 0.0) & ~self.committed
        if dn is not None and np.any(ylane):
            nxt = g.route_next[self.route, lane]
            for i in np.flatnonzero(ylane & (to_end < g.yield_m[lane] + v * v / (2 * cfg.decel_comfort_mps2) + 25.0)):
                col = self._merge_col[nxt[i]]
                if col < 0:
                    continue
                a_i = self._params[1][i]
                x = to_end[i] + L
                t_i = (math.sqrt(v[i] * v[i] + 2.0 * a_i * x) - v[i]) / a_i
                others = approach[:, col] & ~minor[:, col] & (pred[:, col] != pred[i, col])
                others[i] = False
                reach = b_v * (t_i + self.signals.critical_gap_s) + L + cfg.min_gap_m
                if not np.any(others & (dn[:, col] <= reach)):
                    self.committed[i] = True
            wait = ylane & ~self.committed
            stop_gap = to_end - g.yield_m[lane] - L / 2
            use = wait & (stop_gap < gap)
            gap = np.where(use, stop_gap, gap)
            v_lead = np.where(use, 0.0, v_lead)
            via_node &= ~use

        # 5. Signals: stop at the line on amber/red when still possible.
        running = np.zeros(n, dtype=bool)
        if g.signal_groups:
            running = controlled & ~stop & (to_end < 40.0)
            use = stop & (line_gap < gap)
            gap = np.where(use, line_gap, gap)
            v_lead = np.where(use, 0.0, v_lead)
            via_node &= ~use
            box_busy = bool(np.any(act & g.internal[lane]) or np.any(running))
            if has_ego and e_lane >= 0 and g.internal[e_lane]:
                box_busy = True
            demand = np.zeros(g.signal_groups, dtype=bool)
            demand[grp[act & (grp >= 0)]] = True
            if has_ego and e_lane >= 0 and g.signal_group[e_lane] >= 0:
                demand[g.signal_group[e_lane]] = True
            self._update_signals(dt_s, box_busy, demand)

        # Desired speed: the lane's, and slowing in time for the next lane's.
        nxt_lane = g.route_next[self.route, lane]
        nxt_limit = np.where(nxt_lane >= 0, g.speed_limit[np.maximum(nxt_lane, 0)], np.inf)
        v0 = np.minimum(np.minimum(self.v0, g.speed_limit[lane]), np.sqrt(nxt_limit**2 + 2.0 * cfg.decel_comfort_mps2 * to_end))
        T, A, S0 = self._params
        acc = idm_acceleration(v, v0, gap, v - v_lead, cfg, (T, A, S0))
        i = np.flatnonzero(via_node)
        if len(i):
            # Behind a car merging in ahead, brake as the ACC model does, not at IDM's limit.
            a_lead = np.append(self.accel, 0.0)[lead[i]]
            acc[i] = cah_blend(acc[i], v[i], v_lead[i], a_lead, gap[i], A[i], cfg.decel_comfort_mps2)
        acc = np.where(act, acc, 0.0)
        v_new = np.maximum(v + acc * dt_s, 0.0)
        s_new = s + 0.5 * (v + v_new) * dt_s
        self.v, self.accel = np.where(act, v_new, 0.0), acc
        self.s = np.where(act, s_new, s)
        self._advance_lanes()
        self._poses = None

    def _advance_lanes(self) -> None:
        g = self.graph
        for _ in range(3):  # a vehicle crosses at most a couple of short lanes per step
            over = self.active & (self.s >= g.length[self.lane])
            if not np.any(over):
                return
            last = over & (self.k + 1 >= g.route_size[self.route])
            if np.any(last):
                np.add.at(self.exited, self.lane[last], 1)
                self.active &= ~last
            move = over & ~last
            self.s = np.where(move, self.s - g.length[self.lane], self.s)
            self.k = np.where(move, self.k + 1, self.k)
            self.lane = g.route_lanes[self.route, self.k]
            self.committed &= ~move


def footprint_overlaps(
    xy: np.ndarray, yaw: np.ndarray, length_m: float = VEHICLE_LENGTH_M, width_m: float = VEHICLE_WIDTH_M
) -> list[tuple[int, int]]:
    """Pairs of car footprints (oriented rectangles) that overlap, by the separating-axis test."""
    n = len(xy)
    if n < 2:
        return []
    axes = np.stack([np.stack([np.cos(yaw), np.sin(yaw)], 1), np.stack([-np.sin(yaw), np.cos(yaw)], 1)], 1)  # (n, 2, 2)
    half = np.array([length_m / 2, width_m / 2])
    corners_local = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]]) * half  # (4, 2)
    corners = xy[:, None, :] + corners_local @ axes  # (n, 4, 2)
    i, j = np.triu_indices(n, 1)
    close = np.hypot(*(xy[i] - xy[j]).T) < math.hypot(length_m, width_m)
    i, j = i[close], j[close]
    out = []
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        separated = False
        for ax in (*axes[a], *axes[b]):
            pa, pb = corners[a] @ ax, corners[b] @ ax
            if pa.max() < pb.min() or pb.max() < pa.min():
                separated = True
                break
        if not separated:
            out.append((a, b))
    return out
