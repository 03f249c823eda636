"""Compression of the perception net (issue 18): pruning removes the right channels, ONNX and int8 agree, distillation learns."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from perception.compress import distill_epoch, export_onnx, frozen, prune_channels, quantize_int8
from perception.model import LossConfig, MultiTaskLoss, NetConfig, PerceptionNet
from perception.runtime import OnnxNet


def _frames(n=6, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, size, size, 3), dtype=np.uint8)


def _half_dead(net: PerceptionNet, seed: int = 0) -> PerceptionNet:
    """Zero the scale and shift of a random half of every batch-normed layer's channels and of the feature layer's units."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.bias.uniform_(-0.1, 0.1, generator=g)
                dead = torch.randperm(m.num_features, generator=g)[: m.num_features // 2]
                m.weight[dead] = 0.0
                m.bias[dead] = 0.0
        lin = net.trunk[1]
        dead = torch.randperm(lin.out_features, generator=g)[: lin.out_features // 2]
        lin.weight[dead] = 0.0
        lin.bias[dead] = 0.0
    return net.eval()


@pytest.mark.parametrize("lead_head", ["fc", "ground", "ground-half"])
def test_pruning_drops_the_dead_half_of_every_layer_and_keeps_the_function(lead_head):
    torch.manual_seed(0)
    net = _half_dead(PerceptionNet(NetConfig(size=32, lead_head=lead_head)))
    small = prune_channels(net, 0.5).eval()
    assert small.cfg.channels == (8, 16, 32, 32) and small.cfg.decoder == (16, 8, 4, 4) and small.cfg.features == 64
    assert small.cfg.lead_head == lead_head
    assert small.encoder.stages[1][0][0].weight.shape == (16, 8, 3, 3)  # really narrower, not masked
    assert sum(p.numel() for p in small.parameters()) < 0.3 * sum(p.numel() for p in net.parameters())
    x = _frames()
    a, b = net(x), small(x)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4), k
    # The same pruning of a net without dead channels changes the function: the test above can fail.
    torch.manual_seed(0)
    live = PerceptionNet(NetConfig(size=32, lead_head=lead_head)).eval()
    assert not torch.allclose(live(x)["regression"], prune_channels(live, 0.5).eval()(x)["regression"], atol=1e-3)


@pytest.mark.parametrize("lead_head", ["fc", "ground", "ground-half"])
def test_onnx_export_matches_pytorch_and_int8_stays_close(tmp_path, lead_head):
    torch.manual_seed(0)
    net = _half_dead(PerceptionNet(NetConfig(size=32, lead_head=lead_head)))
    paths = export_onnx(net, tmp_path / "n.onnx", {"epoch": 3})
    assert [p.name for p in paths] == ["n.onnx", "n.heads.onnx"]
    onnx_net = OnnxNet(paths[0])
    assert onnx_net.cfg == net.cfg and onnx_net.meta == {"epoch": 3}
    x = _frames(8)
    want, got = net.predict(x), onnx_net.predict(x)
    for k in want:
        assert np.allclose(got[k], want[k], atol=1e-4), k
    heads = onnx_net.predict(x[:1], segmentation=False)
    assert "segmentation" not in heads and np.allclose(heads["lane_offset_m"], want["lane_offset_m"][:1], atol=1e-4)
    assert np.allclose(heads["lead_distance_m"], want["lead_distance_m"][:1], atol=1e-3)
    q = OnnxNet(quantize_int8(paths[0], tmp_path / "q.onnx", _frames(64, seed=1))[0])
    assert q.meta == {"epoch": 3}
    spread = np.std(want["lane_offset_m"]) + 1e-3
    assert np.mean(np.abs(q.predict(x)["lane_offset_m"] - want["lane_offset_m"])) < spread


def test_a_file_that_is_not_an_exported_net_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not a protobuf")
    (tmp_path / "x.heads.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(ValueError, match=r"x\.onnx is not a readable ONNX perception net"):
        OnnxNet(bad)
    with pytest.raises(ValueError, match="heads.onnx is missing"):
        (tmp_path / "y.onnx").write_bytes(b"")
        OnnxNet(tmp_path / "y.onnx")


@pytest.fixture(scope="module")
def data(perception_data):
    return perception_data


def test_distillation_closes_the_gap_to_the_teacher(data):
    from agents.datasets.reader import load_frames

    train, _ = load_frames(data, ("train",), 32)
    torch.manual_seed(0)
    teacher = frozen(_half_dead(PerceptionNet(NetConfig(size=32))))
    student = PerceptionNet(NetConfig(size=32, channels=(4, 8, 8, 8), decoder=(8, 4, 4, 4), features=16))
    student.reg_mean.copy_(teacher.reg_mean)
    student.reg_std.copy_(teacher.reg_std)
    opt = torch.optim.AdamW(student.parameters(), lr=3e-3)
    loss_fn = MultiTaskLoss(student.cfg.tasks, LossConfig())
    gaps = [distill_epoch(student, teacher, loss_fn, opt, train, 32, np.random.default_rng([0, e]), alpha=1.0)["distill"] for e in range(4)]
    assert gaps[-1] < 0.8 * gaps[0], gaps


def test_the_teacher_gap_turns_at_the_teachers_reg_beta():
    from perception.compress import distill_loss

    zeros = {"presence": torch.zeros(2), "light": torch.zeros(2, 5)}
    student = {"regression": torch.full((2, 8), 0.5), **zeros}
    teacher = {"regression": torch.zeros(2, 8), **zeros}
    assert float(distill_loss(student, teacher, 2.0)) == pytest.approx(0.5 * 0.5**2)  # beta 1: squared
    assert float(distill_loss(student, teacher, 2.0, reg_beta=0.1)) == pytest.approx(0.5 - 0.05)  # beta 0.1: near absolute


def test_compression_distils_with_the_loss_the_teacher_was_trained_on():
    from agents.datasets.perception_compress import CompressConfig, teacher_reg_beta

    cfg = CompressConfig(model="m.pt", data="d", out="o")
    assert teacher_reg_beta(cfg, {"reg_beta": 0.25}) == 0.25
    assert teacher_reg_beta(cfg, {}) == 0.1  # a file from before nets recorded it: the trainer's default
    assert teacher_reg_beta(CompressConfig(model="m.pt", data="d", out="o", reg_beta=1.0), {"reg_beta": 0.25}) == 1.0
    with pytest.raises(ValueError, match="reg_beta"):
        CompressConfig(model="m.pt", data="d", out="o", reg_beta=-1.0)


@pytest.mark.slow  # about a minute (six ONNX exports); the parts are tested above in the default run
def test_compress_command_writes_every_variant_and_refuses_to_overwrite(data, tmp_path):
    from agents.datasets.perception_train import PerceptionTrainConfig, train_perception

    run = train_perception(
        PerceptionTrainConfig(data=str(data), size=32, epochs=1, batch_size=32, out_dir=str(tmp_path / "runs")), progress=False
    )
    out = tmp_path / "c"
    cmd = [sys.executable, "-m", "agents.cli", "perception", "compress", "--model", str(run / "model.pt"), "--data", str(data)]
    cmd += ["--out", str(out), "--epochs", "1", "--student-epochs", "1", "--repeats", "1", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((out / "compress.json").read_text())
    assert set(res["variants"]) == {"float32 (PyTorch)", "float32", "int8", "pruned", "pruned-int8", "student"}
    for name, v in res["variants"].items():
        assert v["latency_ms"]["b1"] > 0 and v["bytes"] > 0 and "lane_offset_mae_m" in v["metrics"], name
    # ONNX float32 is the same function as the PyTorch net: the same test figures.
    a, b = res["variants"]["float32"]["metrics"], res["variants"]["float32 (PyTorch)"]["metrics"]
    assert abs(a["lane_offset_mae_m"] - b["lane_offset_mae_m"]) < 1e-4
    assert res["variants"]["int8"]["bytes"] < 0.5 * res["variants"]["float32"]["bytes"]
    assert "| int8 |" in (out / "compress.md").read_text()
    before = (out / "compress.json").read_bytes()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0 and "already holds a compression run" in again.stderr
    assert (out / "compress.json").read_bytes() == before


def test_the_shipped_net_s_three_forms_agree_on_camera_frames():
    import gymnasium as gym

    import perception

    default, eager, int8 = perception.load(), perception.load(runtime="torch"), perception.load(int8=True)
    assert (default.runtime, eager.runtime, int8.runtime) == ("onnx", "torch", "onnx")
    assert default.meta["epoch"] == eager.meta["epoch"]  # exported from the shipped weights, not from another run
    env = gym.make("DriveSim/Highway-v0", obs_type="camera")
    obs, _ = env.reset(seed=3)
    frames = [obs]
    for _ in range(15):
        obs, *_ = env.step(np.array([0.0, 0.2], np.float32))
        frames.append(obs)
    env.close()
    x = np.stack(frames)
    a, b, q = default(x), eager(x), int8(x)
    assert np.max(np.abs(a["lane_offset_m"] - b["lane_offset_m"])) < 1e-3
    assert np.mean(a["segmentation"] == b["segmentation"]) > 0.999
    assert np.mean(np.abs(q["lane_offset_m"] - b["lane_offset_m"])) < 0.05  # int8 stays within a few cm
    assert np.mean(q["segmentation"] == b["segmentation"]) > 0.97
    with pytest.raises(ValueError, match="int8 net runs on ONNX Runtime only"):
        perception.load(int8=True, runtime="torch")
