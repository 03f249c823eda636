from __future__ import annotations

import dataclasses

import numpy as np

from drive_sim.sensors import SEG_CLASSES, CameraConfig, LidarConfig
from drive_sim.traffic import VEHICLE_LENGTH_M, TrafficConfig
from drive_sim.world import World


def test_lidar_measures_vehicle_ahead_and_never_sees_ego(empty_highway):
    world = World(dataclasses.replace(empty_highway.cfg, traffic=TrafficConfig(count=1), lidar=LidarConfig(noise_std_m=0.0)))
    world.reset(np.random.default_rng(0))
    reading = world.read_lidar()
    assert reading.ranges_m.shape == (64,) and reading.ranges_m.dtype == np.float32
    # Put the only vehicle 20 m (centre to centre) straight ahead.
    f = world.frenet
    world.traffic.set_state(s=[f.s_m + 20.0], lane=[f.lane], v=[0.0], v0=[0.0])
    world.place_traffic()
    reading = world.read_lidar()
    assert reading.hit_ids[0] == world.traffic_ids[0]
    assert abs(reading.ranges_m[0] - (20.0 - VEHICLE_LENGTH_M / 2)) < 0.05
    assert reading.ranges_m[32] == 50.0, "nothing behind on an empty road"
    assert world.vehicle.body_id not in set(reading.hit_ids.tolist())
    world.close()


def test_lidar_noise_is_seeded(empty_highway):
    world = World(dataclasses.replace(empty_highway.cfg, lidar=LidarConfig(noise_std_m=0.2)))
    world.reset(np.random.default_rng(3))
    a = world.read_lidar().ranges_m
    world.reset(np.random.default_rng(3))
    b = world.read_lidar().ranges_m
    world.reset(np.random.default_rng(4))
    c = world.read_lidar().ranges_m
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    hit = a < 50.0
    assert hit.any(), "the barriers are in range to the sides"
    world.close()


def test_camera_rgb_depth_segmentation(empty_highway):
    cam = CameraConfig(width=64, height=48, depth=True, segmentation=True)
    world = World(dataclasses.replace(empty_highway.cfg, traffic=TrafficConfig(count=1), camera=cam))
    world.reset(np.random.default_rng(0))
    f = world.frenet
    world.traffic.set_state(s=[f.s_m + 15.0], lane=[f.lane], v=[0.0], v0=[0.0])
    world.place_traffic()
    frame = world.capture_camera()
    assert frame.rgb.shape == (48, 64, 3) and frame.rgb.dtype == np.uint8
    assert frame.rgb.std() > 10, "not a blank image"
    classes = set(np.unique(frame.segmentation).tolist())
    assert {SEG_CLASSES["road"], SEG_CLASSES["vehicle"], SEG_CLASSES["marking"]} <= classes
    assert SEG_CLASSES["ego"] not in classes, "the camera sits ahead of the bonnet"
    vehicle_depth = frame.depth_m[frame.segmentation == SEG_CLASSES["vehicle"]]
    # The rear of the car ahead is 15 - 4.5/2 m from the ego centre, the camera 2 m ahead of it.
    assert 10.0 < np.median(vehicle_depth) < 14.5
    world.close()
