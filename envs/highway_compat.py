"""highway-env's configuration keys, translated to drive-sim's settings (docs/from-highway-env.md).

``gym.make("DriveSim/Highway-v0", config={...})`` and ``env.unwrapped.configure({...})`` (taking
effect at the next reset, as in highway-env) take highway-env's key names for what drive-sim has;
``translate`` turns them into an ``EnvConfig`` override mapping. A key drive-sim has no equivalent
for is refused with one line naming it and the drive-sim setting that comes closest, never ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from drive_sim.config import ConfigError

#: highway-env observation and action types -> drive-sim's.
OBSERVATION_TYPES = {"Kinematics": "kinematics", "LidarObservation": "lidar"}
ACTION_TYPES = {"DiscreteMetaAction": "meta", "ContinuousAction": "continuous", "DiscreteAction": "discrete"}
#: ... and the closest drive-sim type for the ones it does not have.
CLOSEST_OBSERVATION = {
    "GrayscaleObservation": "camera (an RGB image from the car, observation.camera_channels)",
    "OccupancyGrid": "kinematics (the nearest vehicles in the ego frame)",
    "TimeToCollision": "kinematics (the nearest vehicles in the ego frame)",
    "KinematicsGoal": "kinematics",
    "AttributesObservation": "kinematics",
}


@dataclass(frozen=True)
class Key:
    """One highway-env key: the drive-sim setting it becomes (a dotted EnvConfig path) and how its value converts."""

    setting: str
    convert: Callable[[Any], Any]
    meaning: str


def _positive(name: str, kind: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"config.{name}: expected a positive number, got {value!r}")
        return kind(value)

    return convert


def _number(name: str, scale: float = 1.0) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config.{name}: expected a number, got {value!r}")
        return float(value) * scale

    return convert


def _per_second(name: str) -> Callable[[Any], Any]:
    positive = _positive(name, float)
    return lambda hz: 1.0 / positive(hz)


#: highway-env key -> drive-sim setting.
KEYS: dict[str, Key] = {
    "lanes_count": Key("scenario.world.road.lanes", _positive("lanes_count", int), "lanes of the road"),
    "vehicles_count": Key("scenario.world.traffic.count", _positive("vehicles_count", int), "other vehicles kept around the ego car"),
    "duration": Key("scenario.time_limit_s", _positive("duration", float), "episode length [s]"),
    "policy_frequency": Key("scenario.world.control_period_s", _per_second("policy_frequency"), "decisions per second"),
    "simulation_frequency": Key("scenario.world.physics_dt_s", _per_second("simulation_frequency"), "physics steps per second"),
    # highway-env rewards a collision with a negative number; drive-sim weights a collision term of -1.
    "collision_reward": Key("reward.collision", _number("collision_reward", -1.0), "weight of the collision penalty (sign flipped)"),
    "high_speed_reward": Key("reward.speed", _number("high_speed_reward"), "weight of the speed reward"),
    "screen_width": Key("render.width", _positive("screen_width", int), "rendered frame width [px]"),
    "screen_height": Key("render.height", _positive("screen_height", int), "rendered frame height [px]"),
}
#: Keys whose value asks for what drive-sim always does: accepted with that value, refused with any other.
ALWAYS = {
    "offroad_terminal": (True, "drive-sim always ends an episode when the car leaves the road (reward.off_road weights it)"),
    "controlled_vehicles": (1, "drive-sim drives one ego car"),
    "manual_control": (False, "drive-sim has no manual control"),
    "real_time_rendering": (False, "drive-sim renders frames on demand (render_mode='rgb_array', drive-sim replay)"),
    "offscreen_rendering": (True, "drive-sim always renders off screen (headless)"),
    "render_agent": (True, "drive-sim always draws the ego car"),
}
#: Keys translated with the lane count (the config's lanes_count, else the env's lanes): key -> (setting, meaning).
DERIVED = {
    "vehicles_density": ("scenario.world.traffic.density_per_km_per_lane", "highway-env's traffic packing, as vehicles per km per lane"),
    "initial_lane_id": ("scenario.world.ego.lane", "the ego car's start lane, counted from the left (None: random)"),
}
#: Keys drive-sim has nothing for: the setting that comes closest.
CLOSEST = {
    "right_lane_reward": "reward.lane_centring (the reward for keeping to the lane centre; the expert keeps right)",
    "lane_change_reward": "reward.comfort (jerk and steering-rate penalty)",
    "reward_speed_range": "reward.speed (rewards speed / the speed limit)",
    "normalize_reward": "the reward weights (reward.*): drive-sim does not rescale the sum",
    "ego_spacing": "scenario.world.ego (where and how fast the ego car starts) and scenario.world.traffic.min_spawn_gap_m",
    "other_vehicles_type": "scenario.world.traffic.mix (shares of cautious, normal and aggressive IDM drivers)",
    "neighbour_vehicles_connected_lanes": "observation.vehicles and observation.vehicle_range_m",
    "centering_position": "render.panels (the chase view follows the ego car)",
    "scaling": "render.map_m (the width of ground the map shows)",
    "show_trajectories": "render.panels: 'map' draws the route and the planned path",
}
#: Sub-keys of highway-env's observation and action mappings drive-sim translates.
OBSERVATION_KEYS = {"vehicles_count": ("observation.vehicles", _positive("observation.vehicles_count", int))}


def highway_env_density(vehicles_density: float, lanes: int) -> float:
    """Vehicles per km per lane of highway-env's traffic at ``vehicles_density`` on ``lanes`` lanes.

    highway-env places each vehicle ``(12 + speed) * exp(-lanes / 8) / vehicles_density`` metres
    ahead of the last one on a random lane (``Vehicle.create_random``), speeds uniform in 21-24 m/s
    on its highway (0.7-0.8 of its 30 m/s limit): so its density does not depend on
    ``vehicles_count``, which only sets how long the stretch of traffic is. drive-sim keeps its
    traffic around the ego car (``traffic.density_per_km_per_lane``); about 12 per km per lane on
    4 lanes at highway-env's default of 1.
    """
    spacing_m = (12.0 + 22.5) * math.exp(-5.0 / 40.0 * lanes)
    return 1000.0 * vehicles_density / (spacing_m * lanes)


def translate(config: Mapping[str, Any], lanes: int = 4) -> dict[str, Any]:
    """highway-env's ``config`` as an ``EnvConfig`` override mapping.

    ``lanes`` is the env's lane count, for ``vehicles_density`` when ``lanes_count`` is not in ``config``.

    Raises:
        ConfigError: one line naming a key drive-sim has nothing for (and the closest setting), or a bad value.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"config: expected a mapping of highway-env keys, got {type(config).__name__}")
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in KEYS:
            _set(out, KEYS[key].setting, KEYS[key].convert(value))
        elif key in ALWAYS:
            wanted, why = ALWAYS[key]
            if value != wanted:
                raise ConfigError(f"config.{key}: {value!r} is not possible: {why}")
        elif key == "initial_lane_id":
            # highway-env counts lanes from the left (LANE_LEFT lowers the index), drive-sim from the right.
            n_lanes = KEYS["lanes_count"].convert(config["lanes_count"]) if "lanes_count" in config else lanes
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_lanes):
                raise ConfigError(
                    f"config.initial_lane_id: expected None (random) or a lane 0..{n_lanes - 1} counted from the left, got {value!r}"
                )
            _set(out, "scenario.world.ego.lane", -1 if value is None else n_lanes - 1 - value)
        elif key == "vehicles_density":
            density = _positive(key, float)(value)
            n_lanes = KEYS["lanes_count"].convert(config["lanes_count"]) if "lanes_count" in config else lanes
            # Sets the count of vehicles around the ego car (drive-sim derives it from the density).
            _set(out, "scenario.world.traffic.density_per_km_per_lane", highway_env_density(density, n_lanes))
        elif key == "observation":
            _observation(value, out)
        elif key == "action":
            _action(value, out)
        elif key in CLOSEST:
            raise ConfigError(f"config.{key}: drive-sim has no such setting; closest: {CLOSEST[key]}")
        else:
            known = ", ".join(sorted([*KEYS, *ALWAYS, *DERIVED, "observation", "action"]))
            raise ConfigError(
                f"config.{key}: not a highway-env key drive-sim knows; it translates: {known} (or cfg=, drive-sim's own keys)"
            )
    return out


def _observation(value: Any, out: dict[str, Any]) -> None:
    if not isinstance(value, Mapping) or "type" not in value:
        raise ConfigError('config.observation: expected a mapping with a type, such as {"type": "Kinematics"}')
    kind = value["type"]
    if kind not in OBSERVATION_TYPES:
        closest = CLOSEST_OBSERVATION.get(kind, ", ".join(OBSERVATION_TYPES.values()))
        raise ConfigError(f"config.observation.type: drive-sim has no {kind!r} observation; closest: {closest}")
    _set(out, "observation.type", OBSERVATION_TYPES[kind])
    for sub, sub_value in value.items():
        if sub == "type":
            continue
        if sub not in OBSERVATION_KEYS:
            raise ConfigError(
                f"config.observation.{sub}: drive-sim's {OBSERVATION_TYPES[kind]} observation has no such setting; "
                "closest: observation.* (vehicles, vehicle_range_m, waypoints; docs/from-highway-env.md)"
            )
        setting, convert = OBSERVATION_KEYS[sub]
        _set(out, setting, convert(sub_value))


def _action(value: Any, out: dict[str, Any]) -> None:
    if not isinstance(value, Mapping) or "type" not in value:
        raise ConfigError('config.action: expected a mapping with a type, such as {"type": "DiscreteMetaAction"}')
    kind = value["type"]
    if kind not in ACTION_TYPES:
        raise ConfigError(f"config.action.type: drive-sim has no {kind!r} action; allowed: {', '.join(ACTION_TYPES)}")
    _set(out, "action.type", ACTION_TYPES[kind])
    extra = sorted(k for k in value if k != "type")
    if extra:
        raise ConfigError(
            f"config.action.{extra[0]}: drive-sim's {ACTION_TYPES[kind]} action has no such setting; "
            "closest: action.* (steer_bins, accel_bins, steer_values, speed; docs/from-highway-env.md)"
        )


def as_cfg(config: Mapping[str, Any], scenario: str, cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """drive-sim's ``cfg`` with highway-env's ``config`` translated over it: what ``gym.make(id, cfg=cfg, config=config)`` builds.

    For code that keeps env arguments as data (an rl-zoo3 run's ``env_kwargs``) and needs one ``cfg``.
    """
    from envs.config import make_config

    lanes = make_config(scenario, None, None, cfg).scenario.world.road.lanes
    return deep_merge(cfg or {}, translate(config, lanes=lanes))


def deep_merge(base: Mapping[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """``more`` over ``base``, nested mappings merged (two ``configure`` calls before a reset both count)."""
    out = dict(base)
    for k, v in more.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _set(out: dict[str, Any], dotted: str, value: Any) -> None:
    node = out
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
