"""Views for people: the chase camera used by ``render()``, the bird's-eye view and composed video frames.

Kept apart from the ego camera sensor: what a policy sees is configured by the observation,
what a person sees is configured here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drive_sim.config import require
from drive_sim.sensors.camera import look_at, perspective, render_rgb, rgb_image
from drive_sim.types import VehicleState
from drive_sim.vehicle import Vehicle
from drive_sim.weather import camera_effects
from drive_sim.world import World


@dataclass(frozen=True)
class ChaseViewConfig:
    """Chase camera behind and above the ego car.

    Attributes:
        width, height: frame size [px].
        distance_m: how far behind the car [m].
        height_m: camera height [m].
        look_ahead_m: the point looked at, ahead of the car [m].
        fov_deg: vertical field of view [deg].
    """

    width: int = 480
    height: int = 270
    distance_m: float = 11.0
    height_m: float = 4.5
    look_ahead_m: float = 12.0
    fov_deg: float = 55.0

    def __post_init__(self) -> None:
        require(16 <= self.width <= 3840, "render.width", f"must be between 16 and 3840 px, got {self.width}")
        require(16 <= self.height <= 2160, "render.height", f"must be between 16 and 2160 px, got {self.height}")


def chase_view(world: World, cfg: ChaseViewConfig) -> np.ndarray:
    """An RGB frame (H, W, 3) uint8 from behind the ego car."""
    e = world.ego
    cy, sy = math.cos(e.yaw_rad), math.sin(e.yaw_rad)
    eye = (e.x_m - cfg.distance_m * cy, e.y_m - cfg.distance_m * sy, cfg.height_m)
    target = (e.x_m + cfg.look_ahead_m * cy, e.y_m + cfg.look_ahead_m * sy, 0.5)
    c = world.client
    near, far = 0.3, 300.0
    proj = perspective(c, cfg.width, cfg.height, cfg.fov_deg, near, far)
    _, _, rgba, depth, _ = render_rgb(c, cfg.width, cfg.height, look_at(c, eye, target), proj)
    rgb = rgb_image(rgba, cfg.height, cfg.width)
    cond = world.conditions
    if cond.foggy or cond.night > 0 or cond.rain > 0:
        # The same weather as the sensors see; a fixed seed keeps rain streaks off the episode's generator.
        z = np.asarray(depth, dtype=np.float32).reshape(cfg.height, cfg.width)
        depth_m = far * near / (far - (far - near) * z)
        no_beam = np.zeros((cfg.height, cfg.width), np.float32)
        rgb = camera_effects(rgb, depth_m, cond, no_beam, np.random.default_rng(world.steps))
    return rgb


@dataclass(frozen=True)
class BirdsEyeConfig:
    """Top-down camera.

    Attributes:
        width, height: frame size [px].
        altitude_m: camera height above the ground [m].
        fov_deg: vertical field of view [deg].
        centre: "ego" (follow the car) or "origin" (the junction's centre).
    """

    width: int = 480
    height: int = 360
    altitude_m: float = 110.0
    fov_deg: float = 50.0
    centre: str = "ego"

    def __post_init__(self) -> None:
        require(16 <= self.width <= 3840, "render.width", f"must be between 16 and 3840 px, got {self.width}")
        require(16 <= self.height <= 2160, "render.height", f"must be between 16 and 2160 px, got {self.height}")
        require(self.centre in ("ego", "origin"), "render.centre", f"must be 'ego' or 'origin', got {self.centre!r}")


def birds_eye_view(world: World, cfg: BirdsEyeConfig) -> np.ndarray:
    """An RGB frame (H, W, 3) uint8 looking straight down, north (+y) up."""
    e = world.ego
    x, y = (e.x_m, e.y_m) if cfg.centre == "ego" else (0.0, 0.0)
    c = world.client
    view = c.computeViewMatrix([x, y, cfg.altitude_m], [x, y, 0.0], [0.0, 1.0, 0.0])
    proj = perspective(c, cfg.width, cfg.height, cfg.fov_deg, 1.0, cfg.altitude_m + 10.0)
    _, _, rgba, _, _ = render_rgb(c, cfg.width, cfg.height, view, proj)
    return rgb_image(rgba, cfg.height, cfg.width)


# ---------------------------------------------------------------------------------------------- video frames
#: Panels a video frame can hold.
PANELS = ("chase", "map", "camera", "lidar", "hud")


@dataclass(frozen=True)
class VideoConfig:
    """Layout of a composed video frame.

    The chase view fills the left two thirds above the HUD strip; the right third holds the
    bird's-eye map above the agent's camera image and the lidar panel. Without the right-hand
    panels the chase view and HUD take the full width, without the HUD the full height; another
    panel left out leaves its place to the background.

    Attributes:
        width, height: frame size [px] (even numbers: H.264 with yuv420p needs them).
        panels: which panels to draw, from ``PANELS``.
        chase_scale: the chase view is rendered at this fraction of its panel and scaled up.
            TinyRenderer's cost grows with the pixel count and the overdraw of the scene: one
            core renders the 426x240 chase panel of a 640x360 frame at 0.75 in about 24 ms on
            Highway-v0 but 38-47 ms on the junction layouts, at 0.55 in 12 and 21-25 ms, which
            keeps whole frames above 30/s everywhere (docs/performance.md).
        map_m: width of the ground the map shows [m].
        fps: frames per second of the video; 0 (the default) plays in real time, one frame per
            control period (10 frames/s with the default 0.1 s period).
    """

    width: int = 640
    height: int = 360
    panels: tuple[str, ...] = PANELS
    chase_scale: float = 0.55
    map_m: float = 90.0
    fps: float = 0.0

    def __post_init__(self) -> None:
        require(
            160 <= self.width <= 3840 and self.width % 2 == 0, "video.width", f"must be an even number in [160, 3840], got {self.width}"
        )
        require(
            90 <= self.height <= 2160 and self.height % 2 == 0, "video.height", f"must be an even number in [90, 2160], got {self.height}"
        )
        unknown = [p for p in self.panels if p not in PANELS]
        require(not unknown and len(self.panels) > 0, "video.panels", f"{unknown or 'none'} not allowed; choose from {', '.join(PANELS)}")
        require(0.1 <= self.chase_scale <= 1.0, "video.chase_scale", f"must be in [0.1, 1], got {self.chase_scale}")
        require(5.0 <= self.map_m <= 2000.0, "video.map_m", f"must be in [5, 2000] m, got {self.map_m}")
        require(self.fps == 0.0 or 0.5 <= self.fps <= 120.0, "video.fps", f"must be 0 (real time) or in [0.5, 120], got {self.fps}")


#: Colours of the perception net's segmentation classes in the camera panel (background, road, marking, vehicle, verge).
SEG_TASK_RGB = np.array([[0, 0, 0], [70, 90, 255], [255, 235, 0], [255, 40, 40], [40, 190, 60]], np.uint8)


@dataclass(frozen=True)
class PerceptionPanel:
    """What a perception net made of the camera frame, drawn over the camera panel.

    Attributes:
        segmentation: predicted classes (H, W) of the camera frame (``SEG_TASK_RGB`` order).
        lines: short "predicted vs true" lines (lane offset, lead distance, light).
    """

    segmentation: np.ndarray
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class EstimateView:
    """What a perception stack believes, drawn over the truth on the map panel.

    Attributes:
        ego: estimated (x, y, yaw) of the ego car.
        position_cov: (2, 2) covariance of the estimated position [m^2] (its 2-sigma ellipse is drawn).
        tracks: (K, 5) tracked vehicles in the world frame: id, x, y, vx, vy.
        caution: the stack's doubt in [0, 1] (``Estimate.caution``).
    """

    ego: np.ndarray
    position_cov: np.ndarray
    tracks: np.ndarray
    caution: float = 0.0

    @classmethod
    def from_row(cls, row: np.ndarray, tracks: np.ndarray) -> EstimateView | None:
        """From an episode log's ``estimate`` row (``ESTIMATE_FIELDS``) and ``tracks`` rows (NaN rows are padding); None for a NaN row."""
        row = np.asarray(row, np.float64)
        if not np.isfinite(row[0]):
            return None
        cov = np.array([[row[4], row[5]], [row[5], row[6]]])
        t = np.asarray(tracks, np.float64)
        return cls(row[:3].copy(), cov, t[np.isfinite(t[:, 0])] if t.ndim == 2 else np.zeros((0, 5)), float(row[7]))


#: Columns of an episode log's ``estimate`` array (``EstimateView.from_row``).
ESTIMATE_FIELDS = ("x_m", "y_m", "yaw_rad", "speed_mps", "cov_xx", "cov_xy", "cov_yy", "caution")


@dataclass(frozen=True)
class FrameData:
    """What a video frame shows beside the 3-D view, taken from a live env or from an episode log.

    Attributes:
        step, time_s: control step and simulated time.
        ego: the ego car's state.
        traffic_xy, traffic_yaw, traffic_active: every traffic vehicle (N, 2), (N,), (N,).
        speed_limit_mps: the limit where the car is.
        action: the action as text (e.g. "steer +0.12 accel -0.40" or "faster").
        reward, total_return: this step's reward and the sum so far.
        friction, visibility_m, night, rain: the conditions.
        events: short flags to show (collision, off road, sensor faults, signal).
        lidar_ranges_m, lidar_angles_rad: a lidar sweep (None: no lidar panel content).
        lidar_range_m: the lidar's maximum range.
        camera: the agent's camera image (H, W, 3) uint8, or None when its observation has none.
        plan_xy: a planned path (K, 2) in the world frame, or None.
        title: a line at the top of the HUD (scenario and agent, say).
        perception: a perception net's output on ``camera``, laid over it in the camera panel.
        estimate: what the ``perceived`` stack believes (ego pose and its 2-sigma ellipse, tracks),
            drawn as outlines over the true cars on the map panel; None for other observations.
    """

    step: int
    time_s: float
    ego: VehicleState
    traffic_xy: np.ndarray
    traffic_yaw: np.ndarray
    traffic_active: np.ndarray
    speed_limit_mps: float
    action: str = ""
    reward: float = 0.0
    total_return: float = 0.0
    friction: float = 1.0
    visibility_m: float = 1e4
    night: float = 0.0
    rain: float = 0.0
    events: tuple[str, ...] = ()
    lidar_ranges_m: np.ndarray | None = None
    lidar_angles_rad: np.ndarray | None = None
    lidar_range_m: float = 50.0
    camera: np.ndarray | None = None
    plan_xy: np.ndarray | None = None
    title: str = ""
    perception: PerceptionPanel | None = None
    estimate: EstimateView | None = None


_BG = (24, 26, 30)
_ROAD = (70, 72, 76)
_EDGE = (200, 200, 200)
_GRASS = (38, 74, 40)
_EGO = (230, 60, 50)
_ROUTE = (60, 140, 230)
_PLAN = (250, 210, 40)
_TEXT = (235, 235, 235)
_ESTIMATE = (255, 255, 255)
_TRACK = (80, 230, 240)
_WARN = (255, 90, 70)
_TRAFFIC_RGB = ((40, 90, 205), (230, 230, 225), (26, 26, 31), (140, 148, 153), (51, 140, 77), (242, 191, 26))


class RoadSketch:
    """The road of a world as 2-D polylines for the map, computed once per world.

    Open roads: the paved band between the outer edges plus the lane boundary lines, sampled
    every 2 m and cut to the map's window per frame. Junction layouts: every lane drawn as a
    band of lane width, and the ego car's route on top, once, into an image that each frame
    rotates and crops (one warpAffine instead of redrawing some 1,600 anti-aliased points).
    """

    _MAX_BASE_PX = 4096

    def __init__(self, world: World) -> None:
        road = world.road
        self.network = world.network is not None
        if world.network is not None:
            self.bands = [lane.line.xy for lane in world.network.lanes]
            self.band_width_m = road.lane_width_m
            self.route = [world.network.lanes[i].line.xy for i in getattr(world, "_ego_lanes", ())]
            self.s = None
        else:
            n = max(2, int(road.centreline.length_m / 2.0) + 1)
            s = np.linspace(0.0, road.centreline.length_m, n)
            self.s = s
            lo, hi = road.edge_right_m - road.shoulder_m, road.edge_left_m + road.shoulder_m
            self.left = road.centreline.to_world(s, np.full(n, hi))[0]
            self.right = road.centreline.to_world(s, np.full(n, lo))[0]
            w = road.lane_width_m
            bounds = sorted({round(o + k * w / 2, 6) for o in road.lane_offsets_m for k in (-1, 1)})
            self.lines = [road.centreline.to_world(s, np.full(n, b))[0] for b in bounds]
            self.route = []
            self.bands = []
            self.band_width_m = 0.0
        self._base: dict[float, tuple[np.ndarray, float, float]] = {}

    def network_image(self, scale: float) -> tuple[np.ndarray, float, float] | None:
        """A junction layout drawn at ``scale`` px/m and its world (x_min, y_max) corner (cached)."""
        import cv2

        if self.s is not None:
            return None
        if scale not in self._base:
            pts = np.concatenate(self.bands)
            margin = self.band_width_m * 2
            x0, y0 = pts.min(axis=0) - margin
            x1, y1 = pts.max(axis=0) + margin
            w, h = int((x1 - x0) * scale) + 1, int((y1 - y0) * scale) + 1
            if max(w, h) > self._MAX_BASE_PX:
                return None
            img = np.empty((h, w, 3), np.uint8)
            img[:] = _GRASS

            def px(xy: np.ndarray) -> np.ndarray:
                return np.round(np.stack([(xy[:, 0] - x0) * scale, (y1 - xy[:, 1]) * scale], axis=-1) * 16).astype(np.int32)

            band = max(1, round(self.band_width_m * scale))
            cv2.polylines(img, [px(b) for b in self.bands], False, _ROAD, band, cv2.LINE_AA, 4)
            if self.route:
                cv2.polylines(img, [px(r) for r in self.route], False, _ROUTE, max(1, band // 4), cv2.LINE_AA, 4)
            self._base[scale] = (img, float(x0), float(y1))
        return self._base[scale]


def _to_px(xy: np.ndarray, ego: VehicleState, scale: float, size: tuple[int, int]) -> np.ndarray:
    """World points to map pixels, heading up, the car at the centre, lower third."""
    w, h = size
    dx, dy = xy[..., 0] - ego.x_m, xy[..., 1] - ego.y_m
    c, s = math.cos(ego.yaw_rad), math.sin(ego.yaw_rad)
    fwd, left = c * dx + s * dy, -s * dx + c * dy
    u = w / 2 - left * scale
    v = h * 0.62 - fwd * scale
    return np.stack([u, v], axis=-1)


def _box(x: float, y: float, yaw: float, length: float, width: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    corners = np.array([[length / 2, width / 2], [length / 2, -width / 2], [-length / 2, -width / 2], [-length / 2, width / 2]])
    return np.stack([x + c * corners[:, 0] - s * corners[:, 1], y + s * corners[:, 0] + c * corners[:, 1]], axis=-1)


def draw_map(sketch: RoadSketch, data: FrameData, size: tuple[int, int], map_m: float) -> np.ndarray:
    """The bird's-eye map panel: road, route, planned path, traffic and the ego car, heading up."""
    import cv2

    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _GRASS
    scale = w / map_m
    ego = data.ego
    shift = 4  # sub-pixel precision of OpenCV's polygon drawing
    k = float(1 << shift)

    def poly(xy: np.ndarray) -> np.ndarray:
        return np.round(_to_px(xy, ego, scale, size) * k).astype(np.int32)

    base = sketch.network_image(scale)
    if base is not None:
        # The pre-drawn junction, rotated heading-up about the car (see _to_px for the frame).
        src, x0, y1 = base
        c, s = math.cos(ego.yaw_rad), math.sin(ego.yaw_rad)
        dx0, dy0 = x0 - ego.x_m, y1 - ego.y_m
        m = np.array(
            [[s, c, w / 2 + scale * (s * dx0 - c * dy0)], [-c, s, h * 0.62 - scale * (c * dx0 + s * dy0)]],
            np.float64,
        )
        cv2.warpAffine(src, m, (w, h), dst=img, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=_GRASS)
    elif sketch.s is None:
        band = max(1, round(sketch.band_width_m * scale))
        cv2.polylines(img, [poly(b) for b in sketch.bands], False, _ROAD, band, cv2.LINE_AA, shift)
        if sketch.route:
            cv2.polylines(img, [poly(r) for r in sketch.route], False, _ROUTE, max(1, band // 4), cv2.LINE_AA, shift)
    else:
        # Only the stretch of road around the car: the polygon stays small on long roads.
        reach = map_m * 1.2
        near = np.flatnonzero(np.hypot(sketch.left[:, 0] - ego.x_m, sketch.left[:, 1] - ego.y_m) < reach)
        if len(near):
            a, b = int(near[0]), int(near[-1]) + 1
            outline = np.concatenate([sketch.left[a:b], sketch.right[a:b][::-1]])
            cv2.fillPoly(img, [poly(outline)], _ROAD, cv2.LINE_AA, shift)
            for i, line in enumerate(sketch.lines):
                outer = i in (0, len(sketch.lines) - 1)
                cv2.polylines(img, [poly(line[a:b])], False, _EDGE if outer else (150, 150, 150), 1, cv2.LINE_AA, shift)
    if data.plan_xy is not None and len(data.plan_xy) > 1:
        cv2.polylines(img, [poly(np.asarray(data.plan_xy, np.float64))], False, _PLAN, 2, cv2.LINE_AA, shift)
    from drive_sim.traffic import VEHICLE_LENGTH_M, VEHICLE_WIDTH_M

    for i, ((x, y), yaw, on) in enumerate(
        zip(data.traffic_xy.tolist(), data.traffic_yaw.tolist(), data.traffic_active.tolist(), strict=True)
    ):
        if on and abs(x - ego.x_m) < map_m and abs(y - ego.y_m) < map_m:
            cv2.fillPoly(
                img, [poly(_box(x, y, yaw, VEHICLE_LENGTH_M, VEHICLE_WIDTH_M))], _TRAFFIC_RGB[i % len(_TRAFFIC_RGB)], cv2.LINE_AA, shift
            )
    cv2.fillPoly(img, [poly(_box(ego.x_m, ego.y_m, ego.yaw_rad, Vehicle.LENGTH_M, Vehicle.WIDTH_M))], _EGO, cv2.LINE_AA, shift)
    est = data.estimate
    if est is not None:
        # The stack's belief over the truth: tracked boxes (heading from their velocity), the
        # estimated ego box and its position's 2-sigma ellipse, as outlines.
        for _id, x, y, vx, vy in est.tracks.tolist():
            yaw = math.atan2(vy, vx) if math.hypot(vx, vy) > 1.0 else ego.yaw_rad
            cv2.polylines(img, [poly(_box(x, y, yaw, VEHICLE_LENGTH_M, VEHICLE_WIDTH_M))], True, _TRACK, 1, cv2.LINE_AA, shift)
        ex, ey, eyaw = (float(v) for v in est.ego[:3])
        cv2.polylines(img, [poly(_box(ex, ey, eyaw, Vehicle.LENGTH_M, Vehicle.WIDTH_M))], True, _ESTIMATE, 1, cv2.LINE_AA, shift)
        vals, vecs = np.linalg.eigh(0.5 * (est.position_cov + est.position_cov.T))
        a = np.linspace(0.0, 2.0 * math.pi, 33)
        ring = (vecs * (2.0 * np.sqrt(np.maximum(vals, 0.0)))) @ np.stack([np.cos(a), np.sin(a)])
        cv2.polylines(img, [poly(np.stack([ex + ring[0], ey + ring[1]], axis=1))], True, _ESTIMATE, 1, cv2.LINE_AA, shift)
    cv2.putText(img, f"{map_m:.0f} m", (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, _TEXT, 1, cv2.LINE_AA)
    return img


def draw_lidar(data: FrameData, size: tuple[int, int]) -> np.ndarray:
    """The lidar panel: one dot per beam at its range, heading up, rings every 10 m."""
    import cv2

    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (12, 14, 18)
    cx, cy = w / 2, h / 2
    r_px = 0.47 * min(w, h)
    scale = r_px / data.lidar_range_m
    for ring in np.arange(10.0, data.lidar_range_m + 1e-6, 10.0):
        cv2.circle(img, (round(cx), round(cy)), round(ring * scale), (45, 50, 58), 1, cv2.LINE_AA)
    if data.lidar_ranges_m is not None and data.lidar_angles_rad is not None:
        r = np.asarray(data.lidar_ranges_m, np.float64)
        a = np.asarray(data.lidar_angles_rad, np.float64)
        u = cx - np.sin(a) * r * scale
        v = cy - np.cos(a) * r * scale
        hit = r < data.lidar_range_m - 1e-3
        pts = np.round(np.stack([u, v], axis=-1)).astype(np.int32)
        for (x, y), is_hit in zip(pts.tolist(), hit.tolist(), strict=True):
            cv2.line(img, (round(cx), round(cy)), (x, y), (30, 60, 40), 1)
            cv2.circle(img, (x, y), 2, (90, 240, 120) if is_hit else (60, 90, 70), -1)
    cv2.rectangle(img, (round(cx - 2), round(cy - 5)), (round(cx + 2), round(cy + 5)), _EGO, -1)
    return img


#: The HUD's speed bar is full at this multiple of the speed limit (a tick marks the limit).
SPEED_BAR_FULL = 1.25


def _hud_line(height: int) -> int:
    return max(10, round(height / 6.2))


def speed_bar_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the speed bar inside a HUD strip of ``size``.

    Its filled share is speed / (``SPEED_BAR_FULL`` x limit), so a frame's speed can be read back
    from its pixels.
    """
    w, h = size
    line = _hud_line(h)
    return 8, round(2 * line + line * 0.3), w - 16, max(3, round(line * 0.35))


def draw_hud(data: FrameData, size: tuple[int, int]) -> np.ndarray:
    """The HUD strip: time, speed against the limit (a bar), action, reward, conditions, events."""
    import cv2

    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = _BG
    font, fs = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, h / 300.0)
    line = _hud_line(h)
    x0 = 8

    def text(row: int, s: str, colour: tuple[int, int, int] = _TEXT, x: int = x0) -> None:
        cv2.putText(img, s, (x, row * line), font, fs, colour, 1, cv2.LINE_AA)

    speed_kmh, limit_kmh = data.ego.speed_mps * 3.6, data.speed_limit_mps * 3.6
    text(1, data.title or f"step {data.step}")
    text(2, f"t {data.time_s:5.1f} s   speed {speed_kmh:5.1f} km/h  limit {limit_kmh:3.0f}")
    x0, bar_y, bar_w, bar_h = speed_bar_box(size)
    frac = min(1.0, speed_kmh / max(1e-6, SPEED_BAR_FULL * limit_kmh))
    colour = _WARN if speed_kmh > limit_kmh * 1.02 else (90, 200, 110)
    cv2.rectangle(img, (x0, bar_y), (x0 + bar_w, bar_y + bar_h), (55, 58, 64), -1)
    cv2.rectangle(img, (x0, bar_y), (x0 + round(bar_w * frac), bar_y + bar_h), colour, -1)
    tick = x0 + round(bar_w / SPEED_BAR_FULL)
    cv2.line(img, (tick, bar_y - 2), (tick, bar_y + bar_h + 2), _TEXT, 1)
    text(4, f"action {data.action}")
    text(5, f"reward {data.reward:+.2f}  return {data.total_return:8.2f}")
    weather = [f"friction {data.friction:.2f}"]
    if data.visibility_m < 1e3:
        weather.append(f"fog {data.visibility_m:.0f} m")
    if data.night > 0:
        weather.append("night")
    if data.rain > 0:
        weather.append(f"rain {data.rain:.1f}")
    if data.estimate is not None:
        est = data.estimate
        err = math.hypot(est.ego[0] - data.ego.x_m, est.ego[1] - data.ego.y_m)
        sd = math.sqrt(max(float(np.linalg.eigvalsh(est.position_cov)[-1]), 0.0))
        weather.append(f"est. error {err:.2f} m (2-sigma {2 * sd:.2f})  caution {est.caution:.2f}")
    text(6, "  ".join(weather))
    if data.events:
        ev = "  ".join(data.events)
        (tw, _), _ = cv2.getTextSize(ev, font, fs, 1)
        text(1, ev, _WARN, x=max(x0, w - tw - x0))
    return img


def draw_perception(camera: np.ndarray, panel: PerceptionPanel, size: tuple[int, int]) -> np.ndarray:
    """The camera frame with the predicted segmentation laid over it and the predicted-vs-true lines below."""
    import cv2

    w, h = size
    seg = SEG_TASK_RGB[np.clip(panel.segmentation, 0, len(SEG_TASK_RGB) - 1)]
    over = np.where(panel.segmentation[..., None] > 0, 0.55 * camera + 0.45 * seg, camera).astype(np.uint8)
    img = cv2.resize(over, (w, h), interpolation=cv2.INTER_NEAREST)
    rows = len(panel.lines)
    if rows:
        line_h = max(9, h // 12)
        top = h - rows * line_h - 2
        img[top:] = (0.35 * img[top:]).astype(np.uint8)
        scale = line_h / 30.0
        for k, text in enumerate(panel.lines):
            cv2.putText(img, text, (2, top + (k + 1) * line_h - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, _TEXT, 1, cv2.LINE_AA)
    return img


def frame_layout(cfg: VideoConfig) -> dict[str, tuple[int, int, int, int]]:
    """Panel name -> (x, y, width, height) in the frame, for the panels ``cfg`` draws."""
    W, H = cfg.width, cfg.height
    right_column = any(p in cfg.panels for p in ("map", "camera", "lidar"))
    left_w = (W * 2 // 3) & ~1 if right_column else W
    hud_h = H // 3 if "hud" in cfg.panels else 0
    chase_h = H - hud_h
    right_w = W - left_w
    map_h = min(right_w, H * 3 // 5)
    small = min(right_w // 2, H - map_h)
    y0 = map_h + max(0, (H - map_h - small) // 2)
    boxes = {
        "chase": (0, 0, left_w, chase_h),
        "hud": (0, chase_h, left_w, hud_h),
        "map": (left_w, 0, right_w, map_h),
        "camera": (left_w, y0, small, small),
        "lidar": (W - small, y0, small, small),
    }
    return {k: b for k, b in boxes.items() if k in cfg.panels and b[2] >= 8 and b[3] >= 8}


def compose_frame(world: World | None, sketch: RoadSketch, data: FrameData, cfg: VideoConfig) -> np.ndarray:
    """One video frame (H, W, 3) uint8: chase view, map, agent camera, lidar and HUD as configured.

    ``world`` renders the chase view (its bodies must be where ``data`` says: a live env, or an env
    posed by ``World.show_state``); None leaves the chase panel empty.
    """
    import cv2

    frame = np.empty((cfg.height, cfg.width, 3), np.uint8)
    frame[:] = _BG
    for name, (x, y, w, h) in frame_layout(cfg).items():
        if name == "chase" and world is not None:
            rw, rh = max(16, round(w * cfg.chase_scale)), max(16, round(h * cfg.chase_scale))
            view = chase_view(world, ChaseViewConfig(width=rw, height=rh))
            frame[y : y + h, x : x + w] = view if (rw, rh) == (w, h) else cv2.resize(view, (w, h), interpolation=cv2.INTER_LINEAR)
        elif name == "hud":
            frame[y : y + h, x : x + w] = draw_hud(data, (w, h))
        elif name == "map":
            frame[y : y + h, x : x + w] = draw_map(sketch, data, (w, h), cfg.map_m)
        elif name == "camera":
            if data.camera is not None and data.perception is not None:
                frame[y : y + h, x : x + w] = draw_perception(data.camera, data.perception, (w, h))
            elif data.camera is not None:
                frame[y : y + h, x : x + w] = cv2.resize(data.camera, (w, h), interpolation=cv2.INTER_NEAREST)
            else:
                for row, text in enumerate(("no camera in", "the observation"), start=1):
                    cv2.putText(frame, text, (x + 4, y + h // 2 - 8 + 14 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.33, _TEXT, 1, cv2.LINE_AA)
        elif name == "lidar":
            frame[y : y + h, x : x + w] = draw_lidar(data, (w, h))
    return frame
