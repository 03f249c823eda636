"""Weather and road conditions.

Tyre friction, fog, night and rain, and schedules that change them during an episode.

Conditions act on the physics (the road's friction coefficient, so braking distance and cornering
grip change) and on the sensors: fog attenuates camera pixels towards a fog colour by depth and
shortens the lidar's reach with random dropouts; night darkens the camera outside the headlight
cone; rain adds lidar noise and dropouts and blurs and streaks the camera image. All randomness
comes from the episode's generator.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from drive_sim.config import require

#: Friction coefficients of the road surface presets.
FRICTION_PRESETS = {"dry": 0.9, "wet": 0.6, "snow": 0.35, "ice": 0.15}
FOG_RGB = np.array([200.0, 204.0, 210.0])
CLEAR_VISIBILITY_M = 1e9


@dataclass(frozen=True)
class Conditions:
    """The weather at one moment.

    Attributes:
        friction: tyre-road friction coefficient.
        visibility_m: meteorological visibility [m] (contrast falls to 5 % at this distance);
            ``CLEAR_VISIBILITY_M`` means no fog.
        night: 0 (day) to 1 (dark night).
        rain: 0 (dry air) to 1 (downpour).
    """

    friction: float = FRICTION_PRESETS["dry"]
    visibility_m: float = CLEAR_VISIBILITY_M
    night: float = 0.0
    rain: float = 0.0

    @property
    def foggy(self) -> bool:
        """Whether fog affects the sensors."""
        return self.visibility_m < 1e4


@dataclass(frozen=True)
class WeatherEvent:
    """A change of conditions at a time or a distance travelled.

    Attributes:
        at_s: episode time the change starts [s] (give this or ``at_m``).
        at_m: distance the ego car has driven along the road when the change starts [m].
        surface: road surface preset ("dry", "wet", "snow", "ice"); sets the friction.
        friction: friction coefficient (instead of ``surface``).
        visibility_m: fog visibility [m]; 0 clears the fog.
        night: darkness in [0, 1].
        rain: rain intensity in [0, 1].
        transition_s: duration of a linear blend from the previous conditions [s] (0 = abrupt).
    """

    at_s: float | None = None
    at_m: float | None = None
    surface: str | None = None
    friction: float | None = None
    visibility_m: float | None = None
    night: float | None = None
    rain: float | None = None
    transition_s: float = 0.0

    def __post_init__(self) -> None:
        require((self.at_s is None) != (self.at_m is None), "weather.schedule[].at_s", "give exactly one of at_s or at_m")
        require(self.at_s is None or self.at_s >= 0, "weather.schedule[].at_s", f"must be non-negative, got {self.at_s}")
        require(self.at_m is None or self.at_m >= 0, "weather.schedule[].at_m", f"must be non-negative, got {self.at_m}")
        require(
            self.surface is None or self.surface in FRICTION_PRESETS,
            "weather.schedule[].surface",
            f"{self.surface!r} is not allowed; allowed: {', '.join(FRICTION_PRESETS)}",
        )
        require(self.surface is None or self.friction is None, "weather.schedule[].friction", "give surface or friction, not both")
        _check_ranges("weather.schedule[]", self.friction, self.visibility_m, self.night, self.rain)
        require(self.transition_s >= 0, "weather.schedule[].transition_s", f"must be non-negative, got {self.transition_s}")

    def target(self, before: Conditions) -> Conditions:
        """The conditions this event leads to, starting from ``before``."""
        friction = FRICTION_PRESETS[self.surface] if self.surface is not None else self.friction
        changes = {
            "friction": friction,
            "visibility_m": (CLEAR_VISIBILITY_M if self.visibility_m == 0 else self.visibility_m),
            "night": self.night,
            "rain": self.rain,
        }
        return dataclasses.replace(before, **{k: v for k, v in changes.items() if v is not None})


def _check_ranges(where: str, friction: float | None, visibility: float | None, night: float | None, rain: float | None) -> None:
    require(friction is None or 0.0 < friction <= 2.0, f"{where}.friction", f"must be in (0, 2], got {friction}")
    require(
        visibility is None or visibility == 0 or visibility >= 5.0,
        f"{where}.visibility_m",
        f"must be 0 (clear) or at least 5 m, got {visibility}",
    )
    require(night is None or 0.0 <= night <= 1.0, f"{where}.night", f"must be in [0, 1], got {night}")
    require(rain is None or 0.0 <= rain <= 1.0, f"{where}.rain", f"must be in [0, 1], got {rain}")


@dataclass(frozen=True)
class WeatherConfig:
    """Initial conditions (the road friction is ``WorldConfig.friction``) and their schedule.

    Attributes:
        visibility_m: fog visibility at the start [m]; 0 means no fog.
        night: darkness at the start in [0, 1].
        rain: rain intensity at the start in [0, 1].
        schedule: changes during the episode; times (and distances) must be in increasing order.
    """

    visibility_m: float = 0.0
    night: float = 0.0
    rain: float = 0.0
    schedule: tuple[WeatherEvent, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _check_ranges("weather", None, self.visibility_m, self.night, self.rain)
        for key in ("at_s", "at_m"):
            marks = [getattr(e, key) for e in self.schedule if getattr(e, key) is not None]
            require(
                all(a < b for a, b in zip(marks, marks[1:], strict=False)),
                f"weather.schedule.{key}",
                f"events must be in increasing order of {key}, got {marks}",
            )


class Weather:
    """Runtime weather of one world: conditions as a function of time and distance."""

    def __init__(self, cfg: WeatherConfig, friction: float) -> None:
        self.cfg = cfg
        self.initial = Conditions(
            friction=friction,
            visibility_m=CLEAR_VISIBILITY_M if cfg.visibility_m == 0 else cfg.visibility_m,
            night=cfg.night,
            rain=cfg.rain,
        )
        self.current = self.initial
        self._started: list[float | None] = [None] * len(cfg.schedule)

    def reset(self) -> Conditions:
        """Back to the initial conditions."""
        self.current = self.initial
        self._started = [None] * len(self.cfg.schedule)
        return self.current

    def update(self, time_s: float, distance_m: float) -> Conditions:
        """Conditions at ``time_s`` with ``distance_m`` driven.

        Events start when their mark is reached and blend over their transition time.
        """
        if not self.cfg.schedule:
            return self.current
        cond = self.initial
        for i, event in enumerate(self.cfg.schedule):
            reached = (event.at_s is not None and time_s >= event.at_s) or (event.at_m is not None and distance_m >= event.at_m)
            if not reached:
                continue
            if self._started[i] is None:
                self._started[i] = time_s
            target = event.target(cond)
            started = self._started[i]
            assert started is not None
            w = 1.0 if event.transition_s <= 0 else min(1.0, (time_s - started) / event.transition_s)
            cond = _blend(cond, target, w)
        self.current = cond
        return cond


def _blend(a: Conditions, b: Conditions, w: float) -> Conditions:
    if w >= 1.0:
        return b
    # Visibility blends in 1/visibility (extinction), so clearing fog fades smoothly.
    ext = (1 - w) / a.visibility_m + w / b.visibility_m
    return Conditions(
        friction=a.friction + w * (b.friction - a.friction),
        visibility_m=min(CLEAR_VISIBILITY_M, 1.0 / ext),
        night=a.night + w * (b.night - a.night),
        rain=a.rain + w * (b.rain - a.rain),
    )


# ---------------------------------------------------------------------- sensor effects
def lidar_effects(
    ranges_m: np.ndarray, hit: np.ndarray, range_m: float, noise_std_m: float, cond: Conditions, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Apply fog and rain to a lidar sweep (ranges already carry the clear-weather noise).

    Fog: no return beyond the visibility V; closer returns drop out with probability (r / V)^2.
    Rain: extra range noise (up to 4x the base noise) and up to 10 % random dropouts.
    A dropped beam reads the maximum range, like a beam that hit nothing.

    Returns:
        (ranges [m], mask of beams that still return a hit).
    """
    out = ranges_m.astype(np.float64)
    lost = np.zeros(len(out), dtype=bool)
    if cond.foggy:
        reach = cond.visibility_m
        lost |= out > reach
        lost |= rng.random(len(out)) < np.minimum(out / reach, 1.0) ** 2
    if cond.rain > 0:
        out = out + rng.normal(0.0, 4.0 * cond.rain * max(noise_std_m, 0.02), len(out)) * hit
        lost |= rng.random(len(out)) < 0.1 * cond.rain
    kept = hit & ~lost
    return np.where(kept, np.minimum(np.maximum(out, 0.0), range_m), range_m).astype(np.float32), kept


def camera_effects(
    rgb: np.ndarray,
    depth_m: np.ndarray,
    cond: Conditions,
    headlight: np.ndarray,
    rng: np.random.Generator,
    glow: np.ndarray | None = None,
) -> np.ndarray:
    """Apply fog, night and rain to an RGB frame (uint8, H x W x 3) with its metric depth.

    Fog: each pixel blends towards the fog colour with transmittance exp(-3 d / V).
    Night: brightness falls to 15 % outside the headlights; ``headlight`` (H x W in [0, 1]) is the
    beam pattern, fading with depth over 60 m. Pixels where ``glow`` (H x W bool) is set give
    their own light (lit signal lamps) and keep their brightness.
    Rain: a light blur and a few bright streaks drawn from ``rng``.
    """
    img = rgb.astype(np.float32)
    if cond.foggy:
        t = np.exp(-3.0 * depth_m / cond.visibility_m)[..., None]
        img = img * t + FOG_RGB * (1.0 - t)
    if cond.night > 0:
        lit = headlight * np.clip(1.0 - depth_m / 60.0, 0.0, 1.0)
        if glow is not None:
            lit = np.where(glow, 1.0, lit)
        img = img * (1.0 - 0.85 * cond.night * (1.0 - lit))[..., None]
    if cond.rain > 0:
        import cv2

        img = cv2.GaussianBlur(img, (3, 3), 0.6 + cond.rain)
        h, w = img.shape[:2]
        n = int(round(cond.rain * w / 6))
        cols = rng.integers(0, w, n)
        tops = rng.integers(0, h, n)
        length = max(2, h // 8)
        for c, t0 in zip(cols.tolist(), tops.tolist(), strict=True):
            img[t0 : t0 + length, c] = 0.6 * img[t0 : t0 + length, c] + 0.4 * 230.0
    return np.clip(img, 0, 255).astype(np.uint8)


def headlight_pattern(height: int, width: int, fov_deg: float, pitch_deg: float) -> np.ndarray:
    """Headlight beam seen by a forward camera, (H, W) in [0, 1].

    Bright in a cone about 20 degrees wide below the horizon, with soft edges.
    """
    f = 0.5 * height / math.tan(math.radians(fov_deg) / 2)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    yaw = np.degrees(np.arctan2(xs - (width - 1) / 2, f))
    elev = -np.degrees(np.arctan2(ys - (height - 1) / 2, f)) - pitch_deg
    cone = np.exp(-((yaw / 20.0) ** 2)) * np.clip((2.0 - elev) / 4.0, 0.0, 1.0)
    return cone.astype(np.float32)
