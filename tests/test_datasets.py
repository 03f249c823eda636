"""The perception dataset (issue 18): labels from ground truth, shards, splits, determinism, resume, bad folders."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from agents.datasets.collect import CollectConfig, collect, plan, read_manifest
from drive_sim.config import ConfigError
from drive_sim.files import read_npz
from drive_sim.traffic import VEHICLE_LENGTH_M, TrafficConfig
from drive_sim.vehicle import Vehicle
from drive_sim.world import World
from envs.labels import LEAD_RANGE_M, LIGHT_STATES, SCALAR_LABELS, SEG_TASK_CLASSES, frame_labels

TINY = CollectConfig(
    scenarios=("lanekeep", "intersection", "highway"), episodes=6, sizes=(32, 48), max_steps=24, every=3, holdout="highway"
)
L = {name: i for i, name in enumerate(SCALAR_LABELS)}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    manifest = collect(TINY, out, workers=1, progress=False)
    return out, manifest


def test_plan_splits_by_seed_cycles_weathers_and_holds_one_scenario_out():
    eps = plan(dataclasses.replace(TINY, episodes=150))
    assert len({e.seed for e in eps}) == 150
    held = [e for e in eps if e.env_id == "DriveSim/Highway-v0"]
    assert held and all(e.split == "holdout" for e in held)
    rest = [e for e in eps if e.env_id != "DriveSim/Highway-v0"]
    for split in ("train", "val", "test"):
        mine = [e for e in rest if e.split == split]
        for scenario in ("DriveSim/LaneKeep-v0", "DriveSim/Intersection-v0"):  # every split sees every weather
            assert {e.weather for e in mine if e.env_id == scenario} == set(TINY.weathers), (split, scenario)
    assert sum(e.split == "train" for e in rest) == 8 * sum(e.split == "test" for e in rest)
    with pytest.raises(ConfigError, match="holdout"):
        plan(dataclasses.replace(TINY, holdout="roundabout"))


def test_shards_hold_frames_classes_depth_and_labels(tiny):
    out, manifest = tiny
    assert manifest["status"] == "complete" and len(manifest["episodes"]) == TINY.episodes
    assert manifest["labels"]["scalars"] == list(SCALAR_LABELS) and manifest["code"]["sources_sha256"]
    assert sum(manifest["frames"].values()) == sum(e["frames"] for e in manifest["episodes"]) > 0
    assert manifest["frames"]["holdout"] > 0
    for e in manifest["episodes"]:
        data = read_npz(out / e["file"], "shard")
        n = e["frames"]
        assert data["labels"].shape == (n, len(SCALAR_LABELS)) and data["labels"].dtype == np.float32
        assert np.isfinite(data["labels"]).all()
        for s in TINY.sizes:
            assert data[f"rgb{s}"].shape == (n, s, s, 3) and data[f"rgb{s}"].dtype == np.uint8
            assert data[f"seg{s}"].shape == (n, s, s) and data[f"seg{s}"].max() < len(SEG_TASK_CLASSES)
            assert data[f"depth{s}"].dtype == np.uint16
            road = data[f"seg{s}"] == SEG_TASK_CLASSES.index("road")
            assert road.mean() > 0.1  # the road fills the lower part of every frame
            assert (data[f"depth{s}"][road] > 0).all() and (data[f"depth{s}"][road] < 15_000).all()
        assert np.isin(data["labels"][:, L["light_state"]], np.arange(len(LIGHT_STATES))).all()
        none = data["labels"][:, L["light_state"]] == LIGHT_STATES.index("none")
        assert (data["labels"][none, L["stop_distance_m"]] == 60.0).all()


def test_the_same_config_gives_byte_identical_shards_with_any_worker_count(tiny, tmp_path):
    out, manifest = tiny
    again = collect(TINY, tmp_path, workers=2, progress=False)
    assert again["episodes"] == manifest["episodes"]
    for e in manifest["episodes"]:
        assert _sha(tmp_path / e["file"]) == _sha(out / e["file"]) == e["sha256"]
    assert (tmp_path / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()


def test_an_interrupted_collection_keeps_its_shards_and_finishes(tiny, tmp_path):
    out, manifest = tiny
    shutil.copytree(out, tmp_path / "d")
    d = tmp_path / "d"
    lost = manifest["episodes"][2]["file"]
    (d / lost).unlink()
    m = json.loads((d / "manifest.json").read_text())
    m["status"] = "collecting"
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="unfinished"):
        read_manifest(d)
    kept = {e["file"]: (d / e["file"]).stat().st_mtime_ns for e in manifest["episodes"] if e["file"] != lost}
    collect(TINY, d, workers=1, progress=False)
    assert json.loads((d / "collect.json").read_text())["episodes_collected"] == 1
    assert _sha(d / lost) == manifest["episodes"][2]["sha256"]
    assert all((d / f).stat().st_mtime_ns == t for f, t in kept.items())  # finished shards untouched
    assert read_manifest(d)["episodes"] == manifest["episodes"]


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_folder_of_another_config_or_a_damaged_shard_is_one_line_and_nothing_is_lost(tiny, tmp_path):
    out, manifest = tiny
    shutil.copytree(out, tmp_path / "d")
    d = tmp_path / "d"
    before = {p.name: _sha(p) for p in d.rglob("*") if p.is_file()}
    cmd = ("collect", "--scenarios", ",".join(TINY.scenarios), "--episodes", "7", "--sizes", "32,48", "--max-steps", "24")
    r = _cli(*cmd, "--every", "3", "--holdout", "highway", "--out", str(d), "--no-progress", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "another config" in r.stderr and "episodes" in r.stderr
    assert {p.name: _sha(p) for p in d.rglob("*") if p.is_file()} == before
    # A shard cut short (a disk filled up, a copy interrupted): named, not read as data.
    shard = d / manifest["episodes"][1]["file"]
    shard.write_bytes(shard.read_bytes()[:-500])
    with pytest.raises(ValueError, match=r"00001\.npz is not a readable \.npz"):
        collect(TINY, d, workers=1, progress=False)
    # A shard holding a pickled object array is refused the same way (no pickle is ever loaded).
    np.savez(shard, labels=np.array([{"x": 1}], dtype=object), step=np.zeros(1, np.int32))
    with pytest.raises(ValueError, match=r"00001\.npz is not a readable \.npz"):
        collect(TINY, d, workers=1, progress=False)
    bad = _cli("collect", "--out", str(tmp_path / "e"), "--sizes", "84,x", cwd=tmp_path)
    assert bad.returncode == 2 and "sizes" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_lane_and_lead_labels_follow_the_geometry(empty_highway):
    world = World(dataclasses.replace(empty_highway.cfg, traffic=TrafficConfig(count=1, lane_changes=False)))
    world.reset(np.random.default_rng(0))
    road, f = world.road, world.frenet
    centre = road.lane_offsets_m[f.lane]
    # Half a metre left of the lane centre, turned 3 degrees left.
    xy, ref = road.centreline.to_world(np.array([f.s_m]), np.array([centre + 0.5]))
    world.place_ego(float(xy[0, 0]), float(xy[0, 1]), float(ref[0]) + math.radians(3.0), 20.0)
    world.traffic.set_state(s=[world.frenet.s_m + 30.0], lane=[world.frenet.lane], v=[15.0], v0=[15.0])
    world.place_traffic()
    lab = frame_labels(world)
    assert lab[L["lane_offset_m"]] == pytest.approx(0.5, abs=0.02)
    assert lab[L["heading_error_deg"]] == pytest.approx(3.0, abs=0.1)
    assert lab[L["edge_left_m"]] + lab[L["edge_right_m"]] == pytest.approx(road.edge_left_m - road.edge_right_m)
    assert lab[L["curvature_ahead_1pm"]] == pytest.approx(0.0, abs=1e-9)  # a straight highway
    assert lab[L["lead_present"]] == 1.0
    assert lab[L["lead_distance_m"]] == pytest.approx(30.0 - (Vehicle.LENGTH_M + VEHICLE_LENGTH_M) / 2, abs=0.05)
    assert lab[L["lead_rel_speed_mps"]] == pytest.approx(15.0 - 20.0 * math.cos(math.radians(3.0)), abs=0.3)
    # Moved to the next lane: no lead any more.
    world.traffic.set_state(s=[world.frenet.s_m + 30.0], lane=[world.frenet.lane + 1], v=[15.0], v0=[15.0])
    world.place_traffic()
    lab = frame_labels(world)
    assert lab[L["lead_present"]] == 0.0 and lab[L["lead_distance_m"]] == LEAD_RANGE_M
    assert LIGHT_STATES[int(lab[L["light_state"]])] == "none"
    world.close()


def test_a_size_s_frames_do_not_depend_on_the_other_sizes_collected(tiny, tmp_path):
    out, manifest = tiny
    one = dataclasses.replace(TINY, sizes=(32,), episodes=2)
    collect(one, tmp_path, workers=1, progress=False)
    for e in manifest["episodes"][:2]:
        a, b = read_npz(tmp_path / e["file"], "shard"), read_npz(out / e["file"], "shard")
        assert np.array_equal(a["rgb32"], b["rgb32"]) and np.array_equal(a["labels"], b["labels"])
