"""Signal heads the camera can see (issue 18): lamps lit by the phase, shining at night, reset with the episode."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from drive_sim.network_traffic import AMBER, GREEN, RED
from drive_sim.road import RoadConfig
from drive_sim.scenery import LAMP_LIT
from drive_sim.sensors import SEG_CLASSES, CameraConfig
from drive_sim.sensors.camera import Camera
from drive_sim.traffic import TrafficConfig
from drive_sim.types import Control
from drive_sim.weather import WeatherConfig
from drive_sim.world import World, WorldConfig


def _world(**kw) -> World:
    cfg = WorldConfig(road=RoadConfig(layout="intersection", lanes=2), traffic=TrafficConfig(count=0), **kw)
    w = World(cfg)
    w.reset(np.random.default_rng(0))
    return w


@pytest.fixture(scope="module")
def world():
    w = _world()
    yield w
    w.close()


def _set_state(w: World, group: int, stage: int) -> None:
    w.traffic.phase, w.traffic.stage, w.traffic.stage_t = group, stage, 0.0
    w._show_signals()


def _ego_heads(w: World):
    group = int(w.network.signal_group[w._ego_lanes[0]])
    return group, [h for h in w.scenery.heads if h.group == group]


def test_every_signal_group_has_a_near_and_a_far_head(world):
    groups = [h.group for h in world.scenery.heads]
    assert sorted(groups) == sorted(list(range(world.network.signal_groups)) * 2)
    # The segmentation lookup marks poles, housings and lamps as signal bodies.
    for h in world.scenery.heads:
        assert all(world.seg_lookup[b] == SEG_CLASSES["signal"] for b in h.lamps)


@pytest.mark.parametrize("stage", [GREEN, AMBER, RED])
def test_the_camera_sees_the_lamp_of_the_phase_lit(world, stage):
    """From 30 m before the stop line, the pixels of the ego lane's lit lamp have its colour; the others are dark."""
    group, heads = _ego_heads(world)
    _set_state(world, group if stage != RED else (group + 1) % world.network.signal_groups, stage if stage != RED else GREEN)
    assert world.signal_ahead() == ("green", "amber", "red")[stage]
    lane = world.network.lanes[world._ego_lanes[0]]
    (xy,), (yaw,), _ = lane.line.interpolate(np.array([lane.length_m - 30.0]))
    cam = Camera(world.client, CameraConfig(width=160, height=160))
    rgb, _, body = cam.render(float(xy[0]), float(xy[1]), float(yaw), depth=False, bodies=True)
    lit = {RED: 0, AMBER: 1, GREEN: 2}[stage]  # red on top, green at the bottom
    for head in heads:
        for i, lamp in enumerate(head.lamps):
            px = rgb[body == lamp].astype(float)
            assert len(px), f"lamp {i} of a head of group {group} is out of view"
            bright = px.max(axis=1).mean()
            if i == lit:
                assert np.abs(px.mean(axis=0) - 255 * np.array(LAMP_LIT[i][:3])).max() < 80, (i, px.mean(axis=0))
            else:
                assert bright < 90, (i, bright)


def test_lamps_follow_the_controller_and_reset_with_the_episode():
    w = _world()
    first = w._lit_lamps()
    changed = False
    for _ in range(600):  # a minute: every group gets its turn
        w.step(Control(brake=1.0))
        states = w.traffic.signal_states()
        assert w._lamps_shown == tuple(int(s) for s in states)
        changed |= w._lit_lamps() != first
    assert changed
    w.reset(np.random.default_rng(0))
    assert w._lit_lamps() == first
    w.close()


def test_lit_lamps_shine_at_night():
    day, night = _world(), _world(weather=WeatherConfig(night=1.0))
    for w in (day, night):
        group, _ = _ego_heads(w)
        _set_state(w, group, GREEN)
        lane = w.network.lanes[w._ego_lanes[0]]
        (xy,), (yaw,), _ = lane.line.interpolate(np.array([lane.length_m - 25.0]))
        w.place_ego(float(xy[0]), float(xy[1]), float(yaw), 0.0)
    cam_cfg = dataclasses.replace(day.cfg.camera, width=160, height=160)
    frames = []
    for w in (day, night):
        w.camera = Camera(w.client, cam_cfg, w.seg_lookup)
        w._headlight = np.zeros((160, 160), np.float32)
        e = w.ego
        _, _, body = w.camera.render(e.x_m, e.y_m, e.yaw_rad, depth=False, bodies=True)
        frames.append((w.capture_camera().rgb.astype(float), body))
    lit = np.isin(frames[0][1], day._lit_lamps())
    assert lit.sum() > 4
    (d_rgb, _), (n_rgb, _) = frames
    assert np.abs(n_rgb[lit] - d_rgb[lit]).max() <= 1  # the lamps keep their light
    rest = frames[0][1] >= 0
    rest &= ~lit
    assert n_rgb[rest].mean() < 0.3 * d_rgb[rest].mean()  # everything else is dark
    day.close()
    night.close()
