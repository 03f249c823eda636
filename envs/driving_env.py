"""``DrivingEnv``: the Gymnasium adapter over a drive_sim ``World``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec
from gymnasium.utils import EzPickle

from drive_sim.config import merge
from drive_sim.render import EstimateView, FrameData, RoadSketch, compose_frame
from drive_sim.scenarios import Scenario
from drive_sim.types import VehicleState
from drive_sim.world import World
from envs.actions import make_action
from envs.config import EnvConfig, make_config
from envs.highway_compat import deep_merge, translate
from envs.observations import StateFeatures, make_observation
from envs.rewards import StepOutcome, reward_terms, total_reward


class DrivingEnv(gym.Env, EzPickle):
    """A driving task in a PyBullet world.

    ## Description
    The ego car is a jointed PyBullet multibody (4.5 m, 1490 kg, rear-wheel drive) on a road
    drawn as PyBullet bodies, among IDM/MOBIL traffic. Physics runs at ``physics_dt_s``; the
    policy acts every ``control_period_s`` (0.1 s by default) and the action is held in between.

    ## Action Space
    ``continuous``: Box(-1, 1, (2,)) [steer (+1 = full left), acceleration (+ throttle, - brake)];
    out-of-range values are clipped and counted in ``info["action_clipped"]``, NaN raises.
    ``discrete``: Discrete(steer_bins * accel_bins) over an evenly spaced grid.
    ``meta``: Discrete(5) keep / left / right / faster / slower, executed by the lattice planner
    and the path and speed controllers (impossible ones are no-ops, counted in ``info``).

    ## Observation Space
    ``lidar``: float32 vector in [-1, 1]: lidar ranges / max range, then the state vector
    (``envs.observations.state_feature_names``). ``camera``: uint8 (H, W, C) channel-last.
    ``multi``: Dict of ``camera``, ``lidar`` and ``state``.
    ``kinematics``: float32 vector of the nearest vehicles and route features in the ego frame.
    ``perceived``: the same vector filled from the perception net, the localisation filter and the
    tracker (``envs.perceived``); ``info["perceived"]`` has the estimates.

    ## Rewards
    Weighted sum of named terms (``envs.rewards.TERMS``: progress, speed, lane_centring,
    collision, off_road, comfort), each reported unweighted in ``info["reward_terms"]``.

    ## Starting State
    The ego car starts in a (random or configured) forward lane at the scenario's start
    arc length plus a random jitter, at a random speed; traffic is spawned around it. All
    randomness comes from the generator seeded by ``reset(seed=...)``.

    ## Episode End
    Terminated on collision (vehicle or barrier), leaving the road (ego centre beyond an edge
    line) or completing the route. Truncated at the scenario's time limit.

    ## Arguments
    ``scenario`` (library name or ``Scenario``), ``obs_type``, ``action_type``, ``cfg`` (a
    mapping deep-merged over the ``EnvConfig`` built from the scenario; unknown keys raise),
    ``render_mode`` (``"rgb_array"``: chase-camera frames).

    ## Version History
    - v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    @property
    def spec(self) -> EnvSpec | None:  # type: ignore[override]
        """The spec ``gym.make`` gave the env, with ``max_episode_steps``: the steps of this env's own time limit."""
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        if value is not None and value.max_episode_steps is None:
            value = dataclasses.replace(value, max_episode_steps=self.horizon_steps)
        self._spec = value

    @property
    def horizon_steps(self) -> int:
        """Steps of the time limit (the episode is truncated after them)."""
        return round(self.scenario.time_limit_s / self.scenario.world.control_period_s)

    def __init__(
        self,
        scenario: str | Scenario = "highway",
        obs_type: str | None = None,
        action_type: str | None = None,
        cfg: EnvConfig | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self._spec: EnvSpec | None = None
        EzPickle.__init__(self, scenario, obs_type, action_type, cfg, render_mode, config)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: {render_mode!r} is not allowed; allowed: None, {', '.join(self.metadata['render_modes'])}")
        built = make_config(scenario, None, None, cfg)
        if config is not None:  # highway-env's keys (envs.highway_compat), under the explicit obs_type / action_type
            built = merge(built, translate(config, lanes=built.scenario.world.road.lanes), path="config")
        self.render_mode = render_mode
        self._pending: dict[str, Any] = {}
        self._build(make_config(scenario, obs_type, action_type, built))

    def configure(self, config: Mapping[str, Any]) -> None:
        """highway-env's ``configure``: its keys (``envs.highway_compat``), taking effect at the next ``reset``.

        The one exception to drive-sim's no-configure rule (docs/design.md), for highway-env users;
        drive-sim's own way is ``gym.make(id, cfg=...)``. A key drive-sim has nothing for is refused
        here, in one line, not at the reset.
        """
        lanes = self._pending.get("scenario", {}).get("world", {}).get("road", {}).get("lanes", self.config.scenario.world.road.lanes)
        self._pending = deep_merge(self._pending, translate(config, lanes=lanes))

    def _build(self, config: EnvConfig) -> None:
        """The world and the observation and action components for ``config`` (at construction and after ``configure``)."""
        self.config: EnvConfig = config
        self.scenario = self.config.scenario
        self.world = World(self.scenario.world)
        self._obs = make_observation(self.world, self.scenario, self.config.observation)
        self._act = make_action(self.config.action, self.world, self.scenario, self.config.observation)
        self.observation_space = self._obs.space
        #: Entry names of a flat vector observation (``lidar``, ``kinematics``); None for images and dicts.
        self.observation_names: tuple[str, ...] | None = getattr(self._obs, "names", None)
        self.action_space = self._act.space
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.scenario.world.control_period_s)}
        self._lane_centre = StateFeatures(self.world, self.scenario, self.config.observation).lane_centre
        self._clipped_total = 0
        # The step in progress between begin_step and end_step.
        self._step_pose: VehicleState | None = None
        self._step_control: Any = None
        self._step_action: Any = None
        self._step_clipped = 0
        self._prev_s = 0.0
        self._prev_v = 0.0
        self._prev_a = 0.0
        # What the last step did, for frame_data() and render(); references, no copies on the step path.
        self._last_obs: Any = None
        self._last_action: Any = None
        self._last_reward = 0.0
        self._return = 0.0
        self._last_info: dict[str, Any] = {}
        self._plan_pose: VehicleState | None = None
        self._has_reset = False
        self._sketch: RoadSketch | None = None
        self._display_rng = np.random.default_rng(0)

    # ------------------------------------------------------------------ template
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode; ``seed`` seeds the one generator behind all randomness."""
        if self._pending:  # highway-env's configure(): a new world for the new settings, then the episode
            config = merge(self.config, self._pending, path="config")
            self._pending = {}
            self.world.close()
            self._build(config)
            self._ezpickle_args = (*self._ezpickle_args[:3], config, *self._ezpickle_args[4:5], None)  # an unpickled copy has it too
        super().reset(seed=seed)
        self._has_reset = True
        self._reset_scene()
        reset_obs = getattr(self._obs, "reset", None)
        if reset_obs is not None:  # an observation with state of its own (perceived): a stream spawned from the seed
            reset_obs(self.np_random.spawn(1)[0])
            obs = self._obs.observe()
            self._see(obs)
            self._act.reset()
        else:
            self._act.reset()
            obs = self._obs.observe()
        info = self._info({name: 0.0 for name in self.config.reward.weights()}, 0, 0.0, self._lane_offset(), False)
        self._last_obs, self._last_action, self._last_reward, self._return, self._last_info = obs, None, 0.0, 0.0, info
        self._plan_pose = None
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` for one control period: simulate, observe, reward, check the end."""
        ego_on_road = self.begin_step(action)
        if ego_on_road is not None:
            self.world.traffic.step(self.world.cfg.control_period_s, *ego_on_road)
        return self.end_step()

    def begin_step(self, action: Any) -> tuple[float, float, float] | None:
        """``step`` up to the open road's traffic step, which it leaves to the caller (``World.begin_period``).

        ``step`` is ``begin_step``, ``Traffic.step`` with what it returns (unless None), then
        ``end_step``; the batched vector env (``envs.vector``) makes the middle call once for all
        of its worlds.
        """
        if not self._has_reset:  # Gymnasium's own error, also for an env unpickled (re-made) without a reset
            raise gym.error.ResetNeeded("Cannot call env.step() before calling env.reset()")
        self._step_pose = self.world.ego
        control, clipped = self._act.to_control(action)
        self._step_control, self._step_action, self._step_clipped = control, action, clipped
        self._clipped_total += clipped
        return self.world.begin_period()

    def end_step(self) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """The rest of ``step`` after the traffic moved: physics, observation, reward, the end, info."""
        self.world.end_period(self._step_control)
        obs = self._obs.observe()
        self._see(obs)
        lane_offset = self._lane_offset()
        terms, jerk = self._reward_terms(lane_offset)
        reward = total_reward(terms, self.config.reward)
        terminated = self._is_terminated()
        truncated = self._is_truncated() and not terminated
        info = self._info(terms, self._step_clipped, jerk, lane_offset, terminated or truncated)
        self._plan_pose = self._step_pose  # the frame the action's plan (if it has one) was made in
        action = self._step_action
        self._last_obs, self._last_action, self._last_reward, self._last_info = obs, action, reward, info
        self._return += reward
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------ hooks
    def _see(self, obs: Any) -> None:
        """Hand the observation to an action that plans from it (``meta`` on ``perceived``)."""
        see = getattr(self._act, "see", None)
        if see is not None:
            see(obs)

    def _reset_scene(self) -> None:
        self.world.reset(self.np_random)
        self._clipped_total = 0
        self._prev_s = self.world.frenet.s_m
        self._prev_v = self.world.ego.vx_mps
        self._prev_a = 0.0

    def _lane_offset(self) -> float:
        """Offset of the ego centre from the nearest forward lane centre [m]."""
        d = self.world.frenet.d_m
        return d - self._lane_centre(d)

    def _reward_terms(self, lane_offset_m: float) -> tuple[dict[str, float], float]:
        w = self.world
        e, f = w.ego, w.frenet
        dt = w.cfg.control_period_s
        a = (e.vx_mps - self._prev_v) / dt
        jerk = (a - self._prev_a) / dt if w.steps > 1 else 0.0
        outcome = StepOutcome(
            progress_m=f.s_m - self._prev_s,
            speed_mps=e.speed_mps,
            speed_limit_mps=self.scenario.speed_limit_at(f.s_m),
            control_period_s=dt,
            lane_offset_m=lane_offset_m,
            lane_width_m=w.road.lane_width_m,
            collided=w.collided_with is not None,
            off_road=f.off_road,
            jerk_mps3=jerk,
        )
        self._prev_s, self._prev_v, self._prev_a = f.s_m, e.vx_mps, a
        return reward_terms(outcome, self.config.reward), jerk

    def _route_completion(self) -> float:
        done = (self.world.frenet.s_m - self.world.start_s_m) / self.scenario.route_length_m
        return min(1.0, max(0.0, done))

    def _is_terminated(self) -> bool:
        w = self.world
        return w.collided_with is not None or w.frenet.off_road or self._route_completion() >= 1.0

    def _is_truncated(self) -> bool:
        return self.world.time_s >= self.scenario.time_limit_s - 1e-9

    def _info(self, terms: dict[str, float], clipped: int, jerk: float, lane_offset_m: float, done: bool) -> dict[str, Any]:
        w = self.world
        e, f = w.ego, w.frenet
        completion = self._route_completion()
        failed = w.collided_with is not None or f.off_road
        if self.scenario.success == "route":
            success = completion >= 1.0 and not failed
        else:
            success = done and not failed
        return {
            "route_completion": completion,
            "collided": w.collided_with is not None,
            "collision_kind": w.collided_with or "",
            "off_road": f.off_road,
            "speed_mps": e.speed_mps,
            "speed_limit_mps": self.scenario.speed_limit_at(f.s_m),
            "lane_offset_m": lane_offset_m,
            "lane": f.lane,
            "jerk_mps3": jerk,
            "time_s": w.time_s,
            "friction": w.friction,
            "sensor_valid": w.sensor_valid(),
            "visibility_m": min(w.conditions.visibility_m, 1e4),
            "night": w.conditions.night,
            "rain": w.conditions.rain,
            "signal": w.signal_ahead(),
            **dict(zip(("stop_line", "stop_line_m"), w.stop_line_ahead(), strict=True)),
            "action_clipped": clipped,
            "actions_clipped_total": self._clipped_total,
            "is_success": bool(success),
            "reward_terms": terms,
            **self._act.info(),
            **self._perceived_info(),
        }

    @property
    def perceived_estimate(self) -> Any:
        """The ``perceived`` observation's ``Estimate`` of this period (None for other observations or before the filter starts).

        What the car believes, never the truth: a driver may read its uncertainty (the expert's caution).
        """
        return getattr(self._obs, "estimate", None) if self.config.observation.type == "perceived" else None

    def _perceived_info(self) -> dict[str, Any]:
        """The ``perceived`` observation's estimates beside the truth (nothing for other observations)."""
        if self.config.observation.type != "perceived":
            return {}
        est = self._obs.estimate
        if est is None:
            return {"perceived": {}}
        x, y, yaw, v = est.ego.tolist()
        return {
            "perceived": {
                "x_m": x,
                "y_m": y,
                "yaw_rad": yaw,
                "speed_mps": v,
                "position_std_m": est.ego_std[0],
                "yaw_std_rad": est.ego_std[1],
                "lateral_std_m": est.lateral_std_m,
                "along_std_m": est.along_std_m,
                "lane_rate": est.lane_rate,
                "caution": est.caution,
                "tracks": len(est.tracks),
            }
        }

    # ------------------------------------------------------------------ rendering
    def render(self) -> np.ndarray | None:
        """The composed video frame of ``config.render`` (``render_mode="rgb_array"``), else None.

        The same frame ``drive-sim replay`` writes: chase view, map, agent camera, lidar and HUD
        (``cfg={"render": {"panels": ["chase"]}}`` for the chase view alone).
        """
        if self.render_mode != "rgb_array":
            return None
        if self._sketch is None:
            self._sketch = RoadSketch(self.world)
        return compose_frame(self.world, self._sketch, self.frame_data(), self.config.render)

    def frame_data(self, *, title: str | None = None, plan_xy: np.ndarray | None = None) -> FrameData:
        """What a video frame shows now beside the 3-D view (nothing here touches the episode's generator).

        The lidar and camera panels show what the agent observed when its observation holds them;
        otherwise the lidar panel shows an ideal sweep (a generator of its own) and the camera panel
        stays empty.
        ``plan_xy``: a planned path in the world frame (the expert's); a ``meta`` action's own plan is
        shown when none is given.
        """
        w, info = self.world, self._last_info
        e = w.ego
        state = w.state_arrays()
        obs, kind = self._last_obs, self.config.observation.type
        beams, range_m = w.lidar.cfg.beams, w.lidar.cfg.range_m
        if kind == "lidar" and obs is not None:
            ranges = np.asarray(obs[:beams], np.float64) * range_m
        elif kind == "multi" and obs is not None:
            ranges = np.asarray(obs["lidar"], np.float64) * range_m
        else:
            ranges = w.lidar.read(e.x_m, e.y_m, e.yaw_rad, self._display_rng).ranges_m
        camera = None  # an agent without a camera gets an empty panel, not a view it never had
        if kind == "camera" and obs is not None and obs.shape[-1] >= 3:
            camera = obs[..., :3]
        elif kind == "multi" and obs is not None and obs["camera"].shape[-1] >= 3:
            camera = obs["camera"][..., :3]
        planned = getattr(self._act, "planned_path", None)
        if plan_xy is None and planned is not None and self._plan_pose is not None:
            local = planned()
            plan_xy = None if local is None else ego_to_world(local, self._plan_pose)
        cond = w.conditions
        est = self.perceived_estimate
        view = None if est is None else EstimateView(est.ego[:3].copy(), est.ego_cov[:2, :2].copy(), est.tracks.copy(), float(est.caution))
        return FrameData(
            step=w.steps,
            time_s=w.time_s,
            ego=e,
            traffic_xy=state["traffic_xy"],
            traffic_yaw=state["traffic_yaw"],
            traffic_active=state["traffic_active"],
            speed_limit_mps=self.scenario.speed_limit_at(w.frenet.s_m),
            action="" if self._last_action is None else self._act.describe(self._last_action),
            reward=self._last_reward,
            total_return=self._return,
            friction=w.friction,
            visibility_m=cond.visibility_m,
            night=cond.night,
            rain=cond.rain,
            events=frame_events(info),
            lidar_ranges_m=ranges,
            lidar_angles_rad=w.lidar.angles_rad,
            lidar_range_m=range_m,
            camera=camera,
            plan_xy=plan_xy,
            title=self.scenario.name if title is None else title,
            estimate=view,
        )

    def close(self) -> None:
        """Release the physics client."""
        if getattr(self, "world", None) is not None:
            self.world.close()


def ego_to_world(xy: np.ndarray, pose: VehicleState) -> np.ndarray:
    """Points (K, 2) in the frame of ``pose`` (x forward, y left) to the world frame."""
    c, s = np.cos(pose.yaw_rad), np.sin(pose.yaw_rad)
    x, y = xy[:, 0], xy[:, 1]
    return np.stack([pose.x_m + c * x - s * y, pose.y_m + s * x + c * y], axis=-1)


def frame_events(info: Mapping[str, Any]) -> tuple[str, ...]:
    """The HUD's event flags from a step's ``info``: collision, off road, sensor faults, red light."""
    events = []
    if info.get("collision_kind"):
        events.append(f"COLLISION ({info['collision_kind']})")
    if info.get("off_road"):
        events.append("OFF ROAD")
    events.extend(f"{name} fault" for name, ok in dict(info.get("sensor_valid", {})).items() if not ok)
    if info.get("signal") in ("red", "amber"):
        events.append(f"signal {info['signal']}")
    return tuple(events)
