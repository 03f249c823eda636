"""Self-supervised pre-training (issue 18): masks, a run that learns, the encoder carried into a net, fixed step budgets."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

from agents.datasets.perception_pretrain import PretrainConfig, pretrain
from agents.datasets.perception_train import PerceptionTrainConfig, load_encoder, train_perception
from agents.datasets.reader import load_frames
from perception.model import LossConfig, MultiTaskLoss, NetConfig, PerceptionNet, train_epoch
from perception.pretrain import MaskedAutoencoder, eval_loss, patch_masks


@pytest.fixture(scope="module")
def data(perception_data):
    return perception_data


def test_masks_blank_the_asked_share_in_whole_patches_and_follow_the_generator():
    m = patch_masks(5, 32, 8, 0.5, np.random.default_rng(0))
    assert m.shape == (5, 32, 32) and np.allclose(m.mean(axis=(1, 2)), 0.5)
    assert np.array_equal(m[:, ::8, ::8].repeat(8, 1).repeat(8, 2), m)  # constant over each 8x8 square
    assert np.array_equal(m, patch_masks(5, 32, 8, 0.5, np.random.default_rng(0)))
    assert not np.array_equal(m, patch_masks(5, 32, 8, 0.5, np.random.default_rng(1)))
    assert patch_masks(2, 84, 8, 0.6, np.random.default_rng(0)).shape == (2, 84, 84)


def test_pretraining_learns_to_fill_the_holes_and_its_encoder_starts_a_net(data, tmp_path):
    val, _ = load_frames(data, ("val",), 32)
    torch.manual_seed(0)
    before = eval_loss(MaskedAutoencoder(NetConfig(size=32)), val.rgb, 0, patch=4)
    cfg = PretrainConfig(data=str(data), size=32, epochs=4, batch_size=32, lr=3e-3, patch=4, out_dir=str(tmp_path / "runs"))
    run = pretrain(cfg, progress=False)
    rows = list(csv.DictReader((run / "epochs.csv").open()))
    assert len(rows) == 4 and float(rows[-1]["val_loss"]) < 0.7 * before, (before, rows)
    assert (run / "reconstructions.png").stat().st_size > 0 and (run / "encoder.pt").is_file()
    net = PerceptionNet(NetConfig(size=32))
    load_encoder(net, run / "encoder.pt")
    state = torch.load(run / "encoder.pt", weights_only=True)["state_dict"]
    assert torch.equal(net.encoder.stages[0][0].weight, state["encoder.stages.0.0.weight"])
    with pytest.raises(ValueError, match=r"^encoder: .*encoder.pt does not fit this net \("):
        load_encoder(PerceptionNet(NetConfig(size=32, channels=(8, 16, 32, 32))), run / "encoder.pt")
    # A finished run is not continued; a fine-tuning run starts from the encoder.
    r = subprocess.run([sys.executable, "-m", "agents.cli", "perception", "pretrain", "--resume", str(run)], capture_output=True, text=True)
    assert r.returncode != 0 and "has finished" in r.stderr
    ft = train_perception(
        PerceptionTrainConfig(
            data=str(data), size=32, epochs=1, steps=3, batch_size=16, encoder=str(run / "encoder.pt"), out_dir=str(tmp_path / "runs")
        ),
        progress=False,
    )
    assert (ft / "model.pt").is_file()


def test_a_step_budget_gives_that_many_batches_whatever_the_label_share(data):
    train, _ = load_frames(data, ("train",), 32)
    small = train.subset(np.arange(40))
    net = PerceptionNet(NetConfig(size=32, tasks=("regression",)))
    net.set_target_stats(np.zeros(8), np.ones(8))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    seen = []
    train_epoch(
        net, MultiTaskLoss(("regression",), LossConfig()), opt, small, 16, np.random.default_rng(0), batches=7, on_batch=seen.append
    )
    assert seen == [16] * 7  # 112 frames from 40: fresh passes, full batches
    seen.clear()
    train_epoch(net, MultiTaskLoss(("regression",), LossConfig()), opt, small, 16, np.random.default_rng(0), on_batch=seen.append)
    assert seen == [16, 16, 8]  # no budget: one pass


def test_random_shift_is_an_integer_crop_of_the_edge_padded_frame():
    from torch.nn import functional as F

    from perception.encoders import random_shift

    torch.manual_seed(0)
    x = torch.rand(6, 3, 20, 24)
    out = random_shift(x, 3)
    padded = F.pad(x, (3, 3, 3, 3), mode="replicate")
    offsets = set()
    for b in range(len(x)):
        hits = [
            (dy, dx) for dy in range(7) for dx in range(7) if torch.allclose(out[b], padded[b, :, dy : dy + 20, dx : dx + 24], atol=1e-5)
        ]
        assert len(hits) == 1, b
        offsets.add(hits[0])
    assert len(offsets) > 1  # not one shift for the whole batch


def test_a_camera_ppo_policy_starts_from_a_pretrained_encoder_and_trains_with_shifts(tmp_path):
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

    from agents.policies.sb3 import PolicyConfig
    from agents.training.sb3_train import build_model
    from drive_sim.config import ConfigError

    torch.manual_seed(1)
    mae = MaskedAutoencoder(NetConfig(size=84))
    path = tmp_path / "encoder.pt"
    torch.save({"format": 1, "net": mae.cfg.as_dict(), "state_dict": mae.state_dict(), "meta": {}}, path)
    venv = VecTransposeImage(DummyVecEnv([lambda: gym.make("DriveSim/LaneKeep-v0", obs_type="camera")]))
    policy = PolicyConfig(
        net_arch=(32,), cnn="perception", cnn_channels=(16, 32, 64, 64), cnn_features_dim=32, cnn_weights=str(path), shift_pad=4
    )
    model = build_model("ppo", venv, {"n_steps": 32, "batch_size": 16, "n_epochs": 1}, policy, 0, None)
    ext = model.policy.features_extractor
    assert torch.equal(ext.encoder.stages[2][1][0].weight, mae.encoder.stages[2][1][0].weight)
    before = ext.encoder.stages[0][0].weight.clone()
    model.learn(32)
    assert not torch.equal(before, ext.encoder.stages[0][0].weight)  # the encoder is fine-tuned, not frozen
    assert all(not m.training for m in ext.modules() if isinstance(m, torch.nn.BatchNorm2d))
    venv.close()
    with pytest.raises(ConfigError, match="cnn_weights and shift_pad need cnn: perception"):
        PolicyConfig(shift_pad=4)
