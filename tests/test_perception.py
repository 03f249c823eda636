"""The perception net (issue 18): heads and loss, a tiny training run that learns, seeded runs, resume, bad files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import perception
from agents.datasets.perception_train import PerceptionTrainConfig, load_checkpoint, train_perception
from agents.datasets.reader import load_frames
from perception.model import (
    REG_LABELS,
    GroundLeadHead,
    LossConfig,
    MultiTaskLoss,
    NetConfig,
    PerceptionNet,
    baseline_metrics,
    evaluate,
    ground_inverse_rows,
    metrics,
    targets,
)


@pytest.fixture(scope="module")
def data(perception_data):
    return perception_data


def _cfg(data, tmp_path, **kw) -> PerceptionTrainConfig:
    base = {"data": str(data), "size": 32, "epochs": 2, "batch_size": 32, "lr": 3e-3, "out_dir": str(tmp_path / "runs"), "threads": 2}
    return PerceptionTrainConfig(**{**base, **kw})


def test_heads_give_their_outputs_and_single_task_nets_only_theirs():
    net = PerceptionNet(NetConfig(size=32))
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    out = net(frames)
    assert out["regression"].shape == (3, len(REG_LABELS)) and out["presence"].shape == (3,)
    assert out["light"].shape == (3, 5) and out["segmentation"].shape == (3, 5, 32, 32)
    pred = net.predict(frames)
    assert pred["segmentation"].shape == (3, 32, 32) and set(REG_LABELS) <= set(pred)
    single = PerceptionNet(NetConfig(size=32, tasks=("segmentation",)))
    assert set(single(frames)) == {"segmentation"}
    assert "segmentation" not in net(frames, segmentation=False)


def test_presence_f1_scores_leads_within_50_m_and_leaves_the_band_to_60_m_out():
    names = ("lead_present", "lead_distance_m", "light_state", "stop_distance_m")
    # a lead at 10 m (found), one at 55 m (missed), none (a false alarm), none (quiet)
    labels = np.array([[1, 10.0, 0, 60], [1, 55.0, 0, 60], [0, 60.0, 0, 60], [0, 60.0, 0, 60]], np.float32)
    pred = {"lead_present": np.array([1, 0, 1, 0]), "lead_distance_m": np.array([11.0, 20.0, 30.0, 60.0])}
    m = metrics(pred, labels, names)
    assert m["lead_f1"] == pytest.approx(2 / 3)  # tp 1, fp 1; the 55 m lead is not scored
    assert m["lead_f1_all"] == pytest.approx(0.5)  # tp 1, fp 1, fn 1
    assert m["lead_distance_mae_m"] == pytest.approx(1.0)  # only the lead within 50 m


def test_ground_rows_follow_the_camera_geometry():
    q = ground_inverse_rows(84, 60.0, 8.0, 1.5)
    f = 42 / np.tan(np.radians(30))
    assert 1 / q[83] == pytest.approx(1.5 / np.tan(np.radians(8) + np.arctan(41.5 / f)), rel=1e-5)  # the bottom row, 2 m ahead
    horizon = int(np.ceil(42 - 0.5 - f * np.tan(np.radians(8))))  # the first row whose centre looks down
    assert np.all(q[: horizon - 1] == 0) and np.all(np.diff(q[horizon:]) > 0)  # nothing above the horizon; nearer with every row down
    assert 1 / ground_inverse_rows(84, 60.0, 8.0, 3.0)[83] == pytest.approx(2 / q[83], rel=1e-5)  # twice as high, twice as far


def test_the_ground_lead_head_reads_the_distance_under_its_peak():
    head = GroundLeadHead(4, 32, (60.0, 8.0, 1.5))
    score = torch.full((2, 2, 32, 32), -30.0)
    score[0, 0, 25, 7], score[1, 0, 20, 30] = 30.0, 30.0  # one pixel each
    score[:, 1] = 0.0
    score[1, 1, 20, 30] = 0.75  # the correction at the peak, in units of 0.01 / m

    class Fixed(torch.nn.Module):
        def forward(self, _x):
            return score

    head.score = Fixed()
    gap = head(torch.zeros(2, 4, 32, 32), torch.zeros(2, 5, 32, 32))
    rows = 1 / ground_inverse_rows(32, 60.0, 8.0, 1.5)
    assert gap.tolist() == pytest.approx([rows[25], 1 / (1 / rows[20] + 0.0075)], rel=1e-5)
    score[0, 0, 24, 7] = 30.0  # two rows alike: the gap is between theirs, averaged in inverse distance
    two = float(head(torch.zeros(2, 4, 32, 32), torch.zeros(2, 5, 32, 32))[0])
    assert two == pytest.approx(2 / (1 / rows[24] + 1 / rows[25]), rel=1e-5)
    with pytest.raises(ValueError, match="lead_head: ground reads the segmentation decoder"):
        NetConfig(tasks=("regression", "presence"), lead_head="ground")
    with pytest.raises(ValueError, match="lead_head: must be one of fc, ground"):
        NetConfig(lead_head="box")
    net = PerceptionNet(NetConfig(size=32, lead_head="ground"))
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    out, heads_only = net(frames), net(frames, segmentation=False)
    assert "segmentation" not in heads_only and torch.equal(out["regression"], heads_only["regression"])
    out["regression"][:, REG_LABELS.index("lead_distance_m")].sum().backward()
    assert net.lead.score[0].weight.grad.abs().sum() > 0  # the gap trains the ground head, not the linear layer's row
    assert net.heads["regression"].weight.grad[REG_LABELS.index("lead_distance_m")].abs().sum() == 0


def test_the_half_resolution_lead_head_skips_the_last_decoder_stage_for_the_driving_heads():
    net = PerceptionNet(NetConfig(size=32, lead_head="ground-half"))
    assert net.lead.inverse.shape == (16, 1) and not net.lead.logits  # the 16x16 stage, its own rows
    calls = []
    net.decoder.ups[-1].register_forward_hook(lambda *_: calls.append(1))
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    heads_only = net(frames, segmentation=False)
    assert calls == [] and "segmentation" not in heads_only
    out = net(frames)
    assert calls == [1] and out["segmentation"].shape == (3, 5, 32, 32)
    assert torch.equal(out["regression"], heads_only["regression"])
    out["regression"][:, REG_LABELS.index("lead_distance_m")].sum().backward()
    assert net.lead.score[0].weight.grad.abs().sum() > 0
    assert net.decoder.ups[-1][0].weight.grad is None  # the gap does not reach the full-resolution stage


@pytest.mark.parametrize("lead_head", ["fc", "ground", "ground-half"])
def test_the_fused_inference_net_computes_the_same_function(lead_head):
    torch.manual_seed(0)
    net = PerceptionNet(NetConfig(size=32, lead_head=lead_head))
    for m in net.modules():  # batch norms with statistics of their own, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    net.eval()
    fused = net.fused()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    frames = np.random.default_rng(1).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        a, b = net(frames), fused(frames)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-5)


def test_uncertainty_weights_are_learned_per_task():
    net = PerceptionNet(NetConfig(size=32))
    loss_fn = MultiTaskLoss(net.cfg.tasks, LossConfig(weighting="uncertainty"))
    frames = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    labels = np.zeros((4, 11), np.float32)
    names = ("lane_offset_m", "heading_error_deg", "curvature_ahead_1pm", "edge_left_m", "edge_right_m", "lead_present")
    names += ("lead_distance_m", "lead_rel_speed_mps", "stop_distance_m", "light_state", "speed_mps")
    y = targets(labels, names, np.zeros((4, 32, 32), np.int64))
    total, parts = loss_fn(net(frames), y, net)
    total.backward()
    assert set(parts) == set(net.cfg.tasks)
    assert all(p.grad is not None and p.grad.abs() > 0 for p in loss_fn.log_vars.values())


def test_the_regression_loss_turns_from_squared_to_absolute_error_at_reg_beta():
    net = PerceptionNet(NetConfig(size=32, tasks=("regression",)))
    names = ("lane_offset_m", "heading_error_deg", "curvature_ahead_1pm", "edge_left_m", "edge_right_m", "lead_present")
    names += ("lead_distance_m", "lead_rel_speed_mps", "stop_distance_m", "light_state", "speed_mps")
    labels = np.zeros((2, 11), np.float32)
    labels[:, 5] = 1.0  # a lead and a line in every frame, so that every column counts
    labels[:, 9] = 1.0
    y = targets(labels, names)
    out = {"regression": torch.full((2, len(REG_LABELS)), 0.5)}  # every prediction half a standard deviation off
    squared = MultiTaskLoss(("regression",), LossConfig())(out, y, net)[1]["regression"]
    absolute = MultiTaskLoss(("regression",), LossConfig(reg_beta=0.1))(out, y, net)[1]["regression"]
    assert squared == pytest.approx(0.5 * 0.5**2)  # beta 1: 0.5 x^2
    assert absolute == pytest.approx(0.5 - 0.05)  # beta 0.1: |x| - beta / 2
    with pytest.raises(ValueError, match="loss.reg_beta: must be positive"):
        LossConfig(reg_beta=0.0)


def test_a_tiny_net_learns_the_lane_offset(data, tmp_path):
    """Learning happened: after a few hundred steps the net's lane-offset error on its training frames is well below the mean's."""
    run = train_perception(_cfg(data, tmp_path, epochs=15), progress=False)
    net = PerceptionNet(NetConfig(size=32, lead_head="ground-half"))  # the trainer's default for a net with every head
    net.load_state_dict(load_checkpoint(run / "checkpoints" / "last.pt")["net"])  # the last epoch, not the best-validation one
    train, _ = load_frames(data, ("train",), 32)
    ours, base = evaluate(net, train), baseline_metrics(train, train)
    assert ours["lane_offset_mae_m"] < 0.5 * base["lane_offset_mae_m"], (ours["lane_offset_mae_m"], base["lane_offset_mae_m"])
    losses = [float(r["loss_total"]) for r in _rows(run)]
    assert losses[-1] < 0.5 * losses[0]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["steps"] == 15
    test = json.loads((run / "test.json").read_text())
    assert "test" in test and {"net", "baseline"} <= set(test["test"])
    assert perception.load(run / "model.pt").meta["epoch"] >= 1
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())


def _rows(run):
    with open(run / "epochs.csv") as fh:
        return [{k: v for k, v in r.items() if k.startswith("loss_")} for r in csv.DictReader(fh)]


def test_the_same_seed_gives_the_same_losses_and_a_resumed_run_continues_as_if_uninterrupted(data, tmp_path, monkeypatch):
    a = train_perception(_cfg(data, tmp_path, name="a"), progress=False)
    b = train_perception(_cfg(data, tmp_path, name="b"), progress=False)
    assert _rows(a) == _rows(b) and len(_rows(a)) == 2
    c = train_perception(_cfg(data, tmp_path, name="c", seed=1), progress=False)
    assert _rows(c)[0] != _rows(a)[0]
    # Interrupt the second epoch (Ctrl-C), then resume.
    from perception import model as pm

    calls = {"n": 0}
    original = pm.train_epoch

    def interrupting(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kw)

    monkeypatch.setattr(pm, "train_epoch", interrupting)
    with pytest.raises(KeyboardInterrupt):
        train_perception(_cfg(data, tmp_path, name="d"), progress=False)
    d = tmp_path / "runs" / "d"
    assert json.loads((d / "status.json").read_text())["state"] == "interrupted" and len(_rows(d)) == 1
    monkeypatch.setattr(pm, "train_epoch", original)
    train_perception(PerceptionTrainConfig(), resume=d, progress=False)
    assert _rows(d) == _rows(a)
    status = json.loads((d / "status.json").read_text())
    assert status["state"] == "finished" and status["resumes"] == 1


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "agents.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_bad_models_and_datasets_are_one_line_and_lose_nothing(data, tmp_path):
    # A net file with a pickled payload (code would run on a plain torch.load) is refused.
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": Evil()}, bad)
    with pytest.raises(ValueError, match="pickled objects other than weights"):
        perception.load(bad)
    from agents.datasets.perception_train import save_model

    cut = tmp_path / "cut.pt"
    save_model(cut, PerceptionNet(NetConfig(size=32)), {})
    cut.write_bytes(cut.read_bytes()[:3000])  # a copy interrupted
    with pytest.raises(ValueError, match="cut.pt is not a readable torch file"):
        perception.load(cut)
    r = _cli("perception", "eval", "--model", str(bad), "--data", str(data), cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "pwned" not in r.stdout
    # Not a dataset, another size, a missing label: one line, no run folder made.
    r = _cli("perception", "train", "--data", str(tmp_path), "--out-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert r.returncode == 2 and "no manifest.json" in r.stderr and not (tmp_path / "runs").exists()
    r = _cli("perception", "train", "--data", str(data), "--size", "84", "--out-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert r.returncode == 2 and "collected at sizes [32]" in r.stderr and not (tmp_path / "runs").exists()
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["labels"]["scalars"] = [n for n in m["labels"]["scalars"] if n != "lane_offset_m"]
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ValueError, match="has no label lane_offset_m"):
        load_frames(copy, ("train",), 32)
    # A shard cut short is named.
    m = json.loads((data / "manifest.json").read_text())
    shutil.copy(data / "manifest.json", copy / "manifest.json")
    shard = copy / m["episodes"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"00000\.npz is not a readable \.npz"):
        load_frames(copy, ("train",), 32)


def test_a_video_films_the_camera_panel_through_the_net(tmp_path):
    """The panel shows the frame the net reads, its segmentation over it and predicted vs true lines."""
    import gymnasium as gym

    from agents.datasets.perception_train import save_model
    from agents.evaluation.replay import PerceptionOverlay, film_agent
    from drive_sim.render import RoadSketch, VideoConfig, compose_frame, frame_layout

    torch.manual_seed(0)
    net = PerceptionNet(NetConfig(size=84))
    save_model(tmp_path / "net.pt", net, {})
    env = gym.make("DriveSim/Highway-v0", obs_type="lidar")
    env.reset(seed=0)
    inner = env.unwrapped
    plain = inner.frame_data()
    assert plain.camera is None  # a lidar agent's video has no camera panel of its own
    data = PerceptionOverlay(str(tmp_path / "net.pt")).apply(inner, plain)
    assert data.camera.shape == (84, 84, 3) and data.perception.segmentation.shape == (84, 84)
    assert [line.split()[0] for line in data.perception.lines] == ["offset", "lead", "light"]
    assert all("true" in line for line in data.perception.lines)
    video = VideoConfig()
    x, y, w, h = frame_layout(video)["camera"]
    sketch = RoadSketch(inner.world)
    a = compose_frame(inner.world, sketch, plain, video)[y : y + h, x : x + w]
    b = compose_frame(inner.world, sketch, data, video)[y : y + h, x : x + w]
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5
    env.close()
    res = film_agent("expert", tmp_path / "v.mp4", scenario="lanekeep", max_steps=4, perception=str(tmp_path / "net.pt"), progress=False)
    assert res.frames == 5 and res.video.stat().st_size > 1000


def test_a_presence_only_net_picks_its_epoch_by_f1_and_other_nets_by_their_figures():
    from agents.datasets.perception_train import _score

    nan = float("nan")
    assert _score({"lead_f1": 0.9, "lane_offset_mae_m": nan}) < _score({"lead_f1": 0.8, "lane_offset_mae_m": nan})
    # A net with a scored head ignores F1 (the shipped net's choice of epoch is unchanged by the fallback).
    assert _score({"lead_f1": 0.9, "lane_offset_mae_m": 0.2}) == _score({"lead_f1": 0.1, "lane_offset_mae_m": 0.2})


def test_a_page_rewrites_only_the_sections_asked_for_and_keeps_the_rest(tmp_path):
    from agents.reports.perception_page import perception_page

    page = tmp_path / "perception.md"
    kept = "| lane offset MAE [m] | ≤ 0.1 | 0.091 ✓ (0.191) |"
    page.write_text(
        "# Camera perception\n\nPage made 2026-01-01 00:00 UTC on X (2 cores).\n\n## Commands\n\n```bash\nold command\n```\n\n"
        f"## Test figures (held-out seeds), beside the trivial baseline\n\n{kept}\n\n## Camera size: 84 against a larger frame\n\n"
        "old size table\n\n## Compression\n\nold compression\n"
    )

    def ev(size, lane):
        group = {"net": {"lane_offset_mae_m": lane, "lead_distance_mae_m": 2.0}, "baseline": {"lane_offset_mae_m": 0.2}, "frames": 10}
        path = tmp_path / f"eval{size}.json"
        path.write_text(json.dumps({"size": size, "groups": [{**group, "group": "test"}, {**group, "group": "test / dry"}]}))
        return path

    perception_page(
        None,
        None,
        None,
        page,
        commands=("new command",),
        compare=[(ev(84, 0.09), None), (ev(128, 0.05), "the former net")],
        only=("commands", "size"),
    )
    text = page.read_text()
    assert "old size table" not in text and "## Camera size" not in text  # the section's former heading is replaced, not kept
    assert "new command" in text and "old command" not in text  # rewritten
    assert kept in text and "old compression" in text  # left as the earlier runs wrote them
    assert text.index("## Test figures") < text.index("## Nets side by side") < text.index("## Compression")  # the page's order
    assert "84 px, the shipped net: test (10)" in text and "128 px, the former net: test / dry (10)" in text
    assert "0.050 ✓ (0.200)" in text and "0.090 ✓ (0.200)" in text
    with pytest.raises(ValueError, match="compare: .*missing-run is not a run folder"):
        perception_page(None, None, None, page, compare=[(ev(84, 0.09), str(tmp_path / "missing-run"))], only=("size",))
    assert text.count("Sections rewritten ") == 1 and "Page made 2026-01-01" in text
    perception_page(None, None, None, page, commands=("newer command",), only=("commands",))  # a second rewrite replaces the note
    assert page.read_text().count("Sections rewritten ") == 1 and "newer command" in page.read_text()
    with pytest.raises(ValueError, match="only: unknown section 'nope'"):
        perception_page(None, None, None, page, only=("nope",))
    with pytest.raises(ValueError, match="does not exist"):
        perception_page(None, None, None, tmp_path / "missing.md", only=("commands",))
    with pytest.raises(ValueError, match="eval: the test section needs it"):
        perception_page(None, None, None, page, only=("test",))
