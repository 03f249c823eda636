"""Scenarios: a validated spec of a driving task, loadable from YAML, and the named library.

A scenario is the world (road, traffic, ego start, sensors, friction) plus the task (time limit,
route length, speed limit, what counts as success). The named library ships as YAML package
data in ``drive_sim/scenarios/library/``; ``load_scenario(name)`` reads one,
``Scenario.from_yaml(path)`` reads any file, and both deep-merge the file over the defaults and
reject unknown keys with their dotted path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from drive_sim.config import ConfigError, build, require
from drive_sim.files import loads_yaml, read_text
from drive_sim.road import ego_road_length_m
from drive_sim.world import WorldConfig

SUCCESS_CRITERIA = ("route", "survive")


@dataclass(frozen=True)
class SpeedZone:
    """A stretch with its own speed limit.

    Attributes:
        from_m, to_m: where it starts and ends, as arc length along the road's reference line
            (on a junction layout, along the ego car's route) [m].
        limit_mps: the legal speed inside [m/s].
    """

    from_m: float
    to_m: float
    limit_mps: float

    def __post_init__(self) -> None:
        require(0.0 <= self.from_m < self.to_m, "speed_zones.from_m", f"must be >= 0 and below to_m, got {self.from_m} .. {self.to_m}")
        require(1.0 <= self.limit_mps <= 60.0, "speed_zones.limit_mps", f"must be in [1, 60], got {self.limit_mps}")


@dataclass(frozen=True)
class Scenario:
    """A driving task.

    Attributes:
        name: short name (the library file's stem).
        description: one line for listings.
        world: the simulated world.
        time_limit_s: episode length before truncation [s].
        route_length_m: distance along the road from the start that completes the route [m].
        speed_limit_mps: legal speed [m/s]; the speed reward tracks it.
        speed_zones: stretches with a different limit, in increasing, non-overlapping order.
        success: "route" (success = route completed without collision or leaving the road) or
            "survive" (success = no collision and never off road until the route ends or time runs out).
    """

    name: str = "custom"
    description: str = ""
    world: WorldConfig = field(default_factory=WorldConfig)
    time_limit_s: float = 40.0
    route_length_m: float = 1000.0
    speed_limit_mps: float = 30.0
    success: Literal["route", "survive"] = "route"
    speed_zones: tuple[SpeedZone, ...] = ()

    def __post_init__(self) -> None:
        require(1.0 <= self.time_limit_s <= 3600.0, "time_limit_s", f"must be in [1, 3600], got {self.time_limit_s}")
        require(self.route_length_m > 0, "route_length_m", f"must be positive, got {self.route_length_m}")
        end = self.world.ego.s_m + self.world.ego.s_jitter_m + self.route_length_m
        road_end = ego_road_length_m(self.world.road, self.world.ego.route)
        require(
            end <= road_end - 10.0,
            "route_length_m",
            f"start + jitter + route ({end:.0f} m) must end 10 m before the road (or route) ends ({road_end:.0f} m)",
        )
        require(1.0 <= self.speed_limit_mps <= 60.0, "speed_limit_mps", f"must be in [1, 60], got {self.speed_limit_mps}")
        for i, (a, b) in enumerate(zip(self.speed_zones, self.speed_zones[1:], strict=False)):
            require(
                b.from_m >= a.to_m, f"speed_zones[{i + 1}].from_m", f"zones must be in order and not overlap, got {b.from_m} < {a.to_m}"
            )

    def speed_limit_at(self, s_m: float) -> float:
        """The speed limit at arc length ``s_m`` [m/s]: a zone's, else ``speed_limit_mps``."""
        for z in self.speed_zones:
            if z.from_m <= s_m < z.to_m:
                return z.limit_mps
        return self.speed_limit_mps

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, source: str = "") -> Scenario:
        """Build from a mapping (deep-merged over the defaults)."""
        try:
            return build(cls, data or {})
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}" if source else str(err)) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Scenario:
        """Read a scenario file.

        Raises:
            ConfigError: the file is missing, is not YAML, or holds a bad key or value; the
                message names the file and the field.
        """
        path = Path(path)
        try:
            text = read_text(path, "scenario")
        except ValueError as err:
            raise ConfigError(str(err)) from None
        data = _parse_yaml(text, str(path))
        data.setdefault("name", path.stem)
        return cls.from_dict(data, source=str(path))


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = loads_yaml(text, source, "scenario")  # no aliases, nesting capped: a scenario file is a user's file
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a scenario file must hold a mapping of fields, got {type(data).__name__}")
    return data


def _library() -> dict[str, Any]:
    return {p.name[: -len(".yaml")]: p for p in (resources.files(__package__) / "library").iterdir() if p.name.endswith(".yaml")}


def scenario_names() -> list[str]:
    """Names of the scenarios shipped with the package."""
    return sorted(_library())


def load_scenario(name: str) -> Scenario:
    """Load a named scenario from the package library.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    lib = _library()
    if name not in lib:
        raise ConfigError(f"scenario: {name!r} is not a known scenario; known: {', '.join(sorted(lib))}")
    data = _parse_yaml(lib[name].read_text(encoding="utf-8"), f"scenario library file {name}.yaml")
    data.setdefault("name", name)
    return Scenario.from_dict(data, source=f"scenario library file {name}.yaml")


__all__ = ["SUCCESS_CRITERIA", "Scenario", "SpeedZone", "load_scenario", "scenario_names"]
