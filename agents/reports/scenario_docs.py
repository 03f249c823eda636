"""docs/scenarios.md: one row and one picture per registered scenario, and the YAML format."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np

import envs
from drive_sim.files import write_image, write_text
from drive_sim.render import BirdsEyeConfig, ChaseViewConfig, birds_eye_view, chase_view
from drive_sim.road import NETWORK_LAYOUTS
from drive_sim.scenarios import Scenario, load_scenario
from drive_sim.weather import CLEAR_VISIBILITY_M

EXAMPLE = """\
# my-scenarios/snowy-commute.yaml: a custom scenario built from the library's highway.
description: Snowy three-lane commute; fog rolls in after 600 m and the lidar drops out briefly.
time_limit_s: 60.0
route_length_m: 1200.0
speed_limit_mps: 22.0
success: survive
world:
  road: {layout: highway, lanes: 3, length_m: 3000.0}
  traffic: {count: 25, speed_min_mps: 15.0, speed_max_mps: 22.0}
  ego: {s_m: 200.0, lane: -1, speed_min_mps: 15.0, speed_max_mps: 18.0}
  friction: 0.35            # snow
  weather:
    rain: 0.2
    schedule:
      - {at_m: 600.0, visibility_m: 35.0, transition_s: 8.0}
      - {at_m: 900.0, surface: ice, transition_s: 4.0}
  sensors:
    faults:
      - {sensor: lidar, kind: dropout, start_s: 30.0, end_s: 33.0}
"""


def _describe(sc: Scenario) -> str:
    w = sc.world
    parts = [f"{w.road.layout}, {w.road.lanes} lanes", f"{w.traffic.count} vehicles", f"friction {w.friction}"]
    if w.road.layout in NETWORK_LAYOUTS:
        parts.insert(1, f"ego route {w.ego.route or 'default'}")
    if w.weather.visibility_m:
        parts.append(f"fog {w.weather.visibility_m:.0f} m")
    if w.weather.night:
        parts.append(f"night {w.weather.night}")
    if w.weather.rain:
        parts.append(f"rain {w.weather.rain}")
    if w.weather.schedule:
        parts.append(f"{len(w.weather.schedule)} weather change(s)")
    if w.sensors.faults:
        parts.append(", ".join(f"{f.sensor} {f.kind} {f.start_s:g}-{f.end_s:g} s" for f in w.sensors.faults))
    parts.append(f"limit {sc.speed_limit_mps:g} m/s, {sc.time_limit_s:g} s, route {sc.route_length_m:g} m, success={sc.success}")
    if sc.speed_zones:
        parts.append("zones " + ", ".join(f"{z.from_m:g}-{z.to_m:g} m at {z.limit_mps:g} m/s" for z in sc.speed_zones))
    return "; ".join(parts)


def write_scenario_docs(out: str | Path, images: str | Path | None = None, steps: int = 8) -> str:
    """Render a picture of every registered scenario and write the page (pictures in ``images``, default beside it); returns its text."""
    out = Path(out)
    images = Path(images) if images is not None else out.parent / "images" / "scenarios"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for env_id, name in envs.ENV_IDS.items():
        if env_id == "DriveSim/Custom-v0":
            continue
        sc = load_scenario(name)
        env = gym.make(env_id, obs_type="camera")
        obs, _ = env.reset(seed=3)
        for _ in range(steps):
            obs, *_ = env.step(np.array([0.0, 0.2], np.float32))
        chase = chase_view(env.unwrapped.world, ChaseViewConfig())
        cam = cv2.resize(obs, (chase.shape[0], chase.shape[0]), interpolation=cv2.INTER_NEAREST)
        panels = [chase, cam]
        if sc.world.road.layout in NETWORK_LAYOUTS:  # a junction is best seen from above
            centre = "ego" if sc.world.road.layout == "merge" else "origin"
            panels.append(birds_eye_view(env.unwrapped.world, BirdsEyeConfig(width=chase.shape[0], height=chase.shape[0], centre=centre)))
        img_path = images / f"{name}.png"
        write_image(img_path, np.concatenate(panels, axis=1))
        vis = env.unwrapped.world.conditions.visibility_m
        env.close()
        assert vis <= CLEAR_VISIBILITY_M
        rel = img_path.relative_to(out.parent)
        rows.append(f"| `{env_id}` | {sc.description} | {_describe(sc)} | ![{name}]({rel}) |")
    text = "\n".join(
        [
            "# Scenarios",
            "",
            f"Generated {datetime.now(timezone.utc):%Y-%m-%d} by `python scripts/scenario_docs.py --out {out.as_posix()}`. "
            "Each picture is the project's",
            "chase view (left) and the agent's 84x84 camera (middle), 0.8 s into an episode (seed 3); weather effects on",
            "the camera show in that image. Junction layouts add a bird's-eye view (right).",
            "",
            "| id | what it tests | defaults | picture |",
            "|---|---|---|---|",
            *rows,
            "",
            "## The scenario file format",
            "",
            "A scenario is a YAML mapping deep-merged over the defaults of `drive_sim.scenarios.Scenario`: give only",
            "what differs. Unknown keys are rejected with their dotted path and the allowed keys; every value is",
            "checked (a bad file fails with one line naming the file and the field). The library files in",
            "`drive_sim/scenarios/library/` are complete examples.",
            "",
            "- `description`, `time_limit_s`, `route_length_m`, `speed_limit_mps`, `success` (`route` or `survive`)",
            "- `speed_zones`: stretches with their own limit, `{from_m, to_m, limit_mps}` along the road (on a junction",
            "  layout, along the ego route), in order and not overlapping; the speed reward and observation follow them",
            "- `world.road`: `layout` (`highway`, `curvy`, `merge`, `intersection`, `roundabout`), `lanes`, `lane_width_m`,",
            "  `length_m`, `min_radius_m`, `max_radius_m`, `layout_seed`, `shoulder_m`; for the junctions `arm_length_m`,",
            "  `radius_m` (roundabout), `merge_at_m` and `ramp_length_m` (merge), `signals: {green_s, amber_s, all_red_s,",
            "  critical_gap_s}` (intersection phases; the critical gap also sets give-way at the merge and roundabout)",
            "- `world.traffic`: `count` or `density_per_km_per_lane` (vehicles per km per forward lane over the spawn",
            "  window), `mix` of driver profiles `{cautious, normal, aggressive}` (shares), desired-speed range, spawn",
            "  window, IDM and MOBIL parameters, `lane_changes`",
            "- `world.ego`: start arc length `s_m` (+ random `s_jitter_m`), `lane` (-1 random), speed range; on a junction",
            "  layout `route` as `entry-exit` arm names (`south-west`, `ramp-main`, ...; a bad name lists the allowed ones)",
            "- `world.friction`: road friction at the start (dry 0.9, wet 0.6, snow 0.35, ice 0.15; allowed (0, 2])",
            "- `world.weather`: `visibility_m` (fog; 0 = none), `night` and `rain` in [0, 1], and `schedule`: a list of",
            "  changes, each at a time `at_s` or a driven distance `at_m` (in increasing order), setting any of",
            "  `surface` / `friction`, `visibility_m`, `night`, `rain`, blended over `transition_s`",
            "- `world.sensors`: `radar`, `gnss`, `imu`, `odometry` (each with `enabled` and noise settings),",
            "  `friction_estimator`, and `faults`: windows `{sensor, kind: dropout|frozen|noise, start_s, end_s, noise_scale}`",
            "- `world.lidar`, `world.camera`, `world.vehicle`, `world.physics_dt_s`, `world.control_period_s`",
            "",
            "A custom scenario built from the library's highway:",
            "",
            "```yaml",
            EXAMPLE.rstrip(),
            "```",
            "",
            "Run it with any registered observation and action type:",
            "",
            "```python",
            "import gymnasium as gym",
            "import drive_sim",
            "",
            'env = gym.make("DriveSim/Custom-v0", scenario="my-scenarios/snowy-commute.yaml", obs_type="lidar")',
            "```",
            "",
        ]
    )
    write_text(out, text)
    return text
