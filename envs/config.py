"""Environment configuration: the scenario plus observation, action and reward settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drive_sim.config import ConfigError, merge, require
from drive_sim.render import VideoConfig
from drive_sim.scenarios import Scenario, load_scenario


@dataclass(frozen=True)
class ObservationConfig:
    """What the agent observes.

    Attributes:
        type: a name registered in ``envs.observations.OBSERVATIONS`` ("lidar", "camera", "multi",
            "kinematics", "perceived").
        route_points: number of look-ahead route points in the state vector.
        route_spacing_m: spacing of those points along the road [m].
        speed_scale_mps: speeds are divided by this before clipping to [-1, 1] [m/s].
        camera_channels: channels of camera images, any of "rgb", "depth", "segmentation", in
            that order (the world's camera must be configured to produce depth/segmentation).
        friction: "none", or "estimate" to add the on-board friction estimator's output
            (true coefficient + per-episode bias + noise, ``sensors.friction_estimator``).
        sensor_flags: append a valid flag (1/0) for each sensor the observation carries.
        vehicles: rows of the ``kinematics`` vehicle table.
        vehicle_range_m: vehicles farther than this are left out of the table [m].
        waypoints: lane-centre points in the ``kinematics`` observation.
        waypoint_spacing_m: their first spacing along the road; it grows ahead [m].
        perception_model: the ``perceived`` observation's perception net (a run's ``model.pt`` or an
            exported ``.onnx``); "" for the shipped one.
        perception_every: the ``perceived`` observation renders the camera and runs the net once
            every this many control periods (1: 10 Hz at the default 0.1 s period); in between the
            filter predicts and the tracker runs on lidar and radar. The camera and the net are about
            60 % of a period's cost: 2 makes the env 1.4x faster, at a price in driving on the
            junctions (docs/fusion.md).
    """

    type: str = "lidar"
    route_points: int = 5
    route_spacing_m: float = 10.0
    speed_scale_mps: float = 40.0
    camera_channels: tuple[str, ...] = ("rgb",)
    friction: str = "none"
    sensor_flags: bool = True
    vehicles: int = 10
    vehicle_range_m: float = 100.0
    waypoints: int = 16
    waypoint_spacing_m: float = 3.0
    perception_model: str = ""
    perception_every: int = 1

    def __post_init__(self) -> None:
        require(0 <= self.route_points <= 50, "observation.route_points", f"must be in [0, 50], got {self.route_points}")
        require(self.route_spacing_m > 0, "observation.route_spacing_m", f"must be positive, got {self.route_spacing_m}")
        require(self.speed_scale_mps > 0, "observation.speed_scale_mps", f"must be positive, got {self.speed_scale_mps}")
        require(self.friction in ("none", "estimate"), "observation.friction", f"{self.friction!r} is not allowed; allowed: none, estimate")
        require(1 <= self.vehicles <= 50, "observation.vehicles", f"must be in [1, 50], got {self.vehicles}")
        require(self.vehicle_range_m > 0, "observation.vehicle_range_m", f"must be positive, got {self.vehicle_range_m}")
        require(2 <= self.waypoints <= 100, "observation.waypoints", f"must be in [2, 100], got {self.waypoints}")
        require(1 <= self.perception_every <= 10, "observation.perception_every", f"must be in [1, 10], got {self.perception_every}")
        require(self.waypoint_spacing_m > 0, "observation.waypoint_spacing_m", f"must be positive, got {self.waypoint_spacing_m}")
        allowed = ("rgb", "depth", "segmentation")
        bad = [c for c in self.camera_channels if c not in allowed]
        require(
            not bad and len(self.camera_channels) > 0,
            "observation.camera_channels",
            f"{bad or '[]'} not allowed; allowed: {', '.join(allowed)}",
        )


@dataclass(frozen=True)
class ActionConfig:
    """How actions become controls.

    Attributes:
        type: a name registered in ``envs.actions.ACTIONS`` ("continuous", "discrete", "meta").
        steer_bins: steering values of the discrete grid, evenly spaced over [-1, 1].
        steer_values: explicit steering values of the discrete grid, each in [-1, 1] (replaces
            ``steer_bins``; finer near 0 suits lane keeping, where curves need a few percent of lock).
        accel_bins: acceleration values of the discrete grid, evenly spaced over [-1, 1].
        speed: ``action`` (the grid includes acceleration) or ``cruise`` (steering only; a speed
            controller holds ``cruise_speed_fraction`` of the speed limit, like lane-keeping assist
            with adaptive cruise; highway-env's DiscreteAction with ``longitudinal=False``).
        cruise_speed_fraction: the cruise target as a fraction of the speed limit where the car is.
        meta_speed_step_mps: the ``meta`` action's faster/slower step [m/s].
    """

    type: str = "continuous"
    steer_bins: int = 5
    steer_values: tuple[float, ...] = ()
    accel_bins: int = 3
    speed: str = "action"
    cruise_speed_fraction: float = 0.75
    meta_speed_step_mps: float = 5.0

    def __post_init__(self) -> None:
        require(
            self.steer_bins >= 2 and self.steer_bins % 2 == 1,
            "action.steer_bins",
            f"must be an odd number >= 3 (so 0 is a choice), got {self.steer_bins}",
        )
        require(self.accel_bins >= 2, "action.accel_bins", f"must be at least 2, got {self.accel_bins}")
        require(
            all(-1.0 <= v <= 1.0 for v in self.steer_values) and len(set(self.steer_values)) == len(self.steer_values),
            "action.steer_values",
            f"must be distinct values in [-1, 1], got {list(self.steer_values)}",
        )
        require(self.speed in ("action", "cruise"), "action.speed", f"{self.speed!r} is not allowed; allowed: action, cruise")
        require(
            0.0 < self.cruise_speed_fraction <= 1.0,
            "action.cruise_speed_fraction",
            f"must be in (0, 1], got {self.cruise_speed_fraction}",
        )
        require(self.meta_speed_step_mps > 0, "action.meta_speed_step_mps", f"must be positive, got {self.meta_speed_step_mps}")


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the named reward terms (each term is reported unweighted in ``info``).

    Terms: ``progress`` (distance along the road per step over the distance at the speed limit,
    in [-1, 1]), ``speed`` (1 at the limit, falling linearly to 0 at standstill or twice the
    limit), ``lane_centring`` (minus the squared offset from the lane centre in half lane widths,
    in [-1, 0]), ``collision`` and ``off_road`` (-1 on the step it happens), ``comfort`` (minus
    longitudinal jerk over ``jerk_scale_mps3``, in [-1, 0]).
    """

    progress: float = 0.5
    speed: float = 0.5
    lane_centring: float = 0.2
    collision: float = 10.0
    off_road: float = 10.0
    comfort: float = 0.05
    jerk_scale_mps3: float = 10.0

    def __post_init__(self) -> None:
        require(self.jerk_scale_mps3 > 0, "reward.jerk_scale_mps3", f"must be positive, got {self.jerk_scale_mps3}")

    def weights(self) -> dict[str, float]:
        """Term name -> weight."""
        return {
            "progress": self.progress,
            "speed": self.speed,
            "lane_centring": self.lane_centring,
            "collision": self.collision,
            "off_road": self.off_road,
            "comfort": self.comfort,
        }


@dataclass(frozen=True)
class EnvConfig:
    """Everything a ``DrivingEnv`` needs."""

    scenario: Scenario = field(default_factory=Scenario)
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    action: ActionConfig = field(default_factory=ActionConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    render: VideoConfig = field(default_factory=VideoConfig)


def make_config(
    scenario: str | Path | Scenario = "highway",
    obs_type: str | None = None,
    action_type: str | None = None,
    cfg: EnvConfig | Mapping[str, Any] | None = None,
) -> EnvConfig:
    """Resolve the constructor arguments of ``DrivingEnv`` into one validated ``EnvConfig``.

    ``scenario`` is a library name, a path to a scenario YAML file, or a ``Scenario``. ``cfg`` (a
    mapping) is deep-merged over that scenario and the defaults; ``obs_type``
    and ``action_type`` win over ``cfg``. Unknown keys raise ``ConfigError`` with their dotted path.
    """
    if isinstance(cfg, EnvConfig):
        base = cfg
    else:
        if isinstance(scenario, Scenario):
            scen = scenario
        elif isinstance(scenario, (str, Path)):
            is_file = str(scenario).endswith((".yaml", ".yml")) or Path(scenario).is_file()
            scen = Scenario.from_yaml(scenario) if is_file else load_scenario(str(scenario))
        else:
            raise ConfigError(f"scenario: expected a scenario name or Scenario, got {type(scenario).__name__}")
        base = merge(EnvConfig(scenario=scen), dict(cfg or {}))
    overrides: dict[str, Any] = {}
    if obs_type is not None:
        overrides["observation"] = {"type": obs_type}
    if action_type is not None:
        overrides["action"] = {"type": action_type}
    return merge(base, overrides)
