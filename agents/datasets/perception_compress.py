"""``drive-sim perception compress``: the float32 net beside its int8, pruned and distilled forms, in one run.

::

    OUT/
        float32.onnx, float32.heads.onnx     the net as ONNX (batch norms folded)
        int8.onnx, int8.heads.onnx           static int8 (ONNX Runtime, calibrated on training frames)
        pruned.pt, pruned.onnx (+ .heads)    half of every layer's channels removed, fine-tuned by distillation
        pruned-int8.onnx (+ .heads)          the pruned net quantised
        student.pt, student.onnx (+ .heads)  a small net trained from scratch by distillation
        compress.json                        every variant's test metrics, latency and size
        compress.md                          the table (ratios against float32 measured in the same run)

Latency is measured here, one variant after another in one process on one thread, the median of
``repeats`` repeats, on the test split's own frames: batch 1 with the driving heads (what an env
step calls) and batch 64 with every head, per frame. Every variant is scored on the same test
frames as the float32 net, and each metric's change is relative to the float32 net's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drive_sim.config import require
from drive_sim.files import portable, write_json, write_text

#: The test metrics every variant is compared on (the acceptance table's; higher is better or not).
COMPARE = (
    ("lane_offset_mae_m", "lane offset MAE [m]", False),
    ("heading_mae_deg", "heading MAE [deg]", False),
    ("curvature_mae_1pm", "curvature MAE [1/m]", False),
    ("edge_mae_m", "road edge MAE [m]", False),
    ("lead_distance_mae_m", "lead distance MAE [m]", False),
    ("lead_rel_speed_mae_mps", "lead rel. speed MAE [m/s]", False),
    ("lead_f1", "lead F1", True),
    ("stop_distance_mae_m", "stop distance MAE [m]", False),
    ("light_accuracy", "light accuracy", True),
    ("seg_miou", "seg mIoU", True),
)
#: Targets: (speed-up at batch 1 against float32, worst relative metric change).
TARGETS = {"int8": (2.0, 0.05), "pruned": (3.0, 0.10), "student": (3.0, 0.10), "pruned-int8": (3.0, 0.10)}


@dataclass(frozen=True)
class CompressConfig:
    """A compression run.

    Attributes:
        model: the float32 net (a perception run's ``model.pt``).
        data: its dataset (training frames calibrate and distil, test frames score).
        out: the output folder (must not hold a previous run's files unless ``force``).
        keep: share of each layer's channels the pruned net keeps.
        student_channels, student_decoder, student_features: the distilled student's size.
        epochs: distillation epochs of the pruned net.
        student_epochs: distillation epochs of the student.
        batch_size, lr: AdamW settings of the distillation (cosine decay).
        alpha, temperature: distillation mix (0 = labels only) and softmax temperature.
        reg_beta: smooth-L1 turning point of the regression terms (labels and teacher gap);
            0 = the teacher's training loss's (its file's ``meta``; a file without it was trained
            on the trainer's default).
        calibration_frames: training frames that set the int8 ranges.
        repeats, calls: latency repeats (the median is reported) and calls per repeat at batch 1.
        seed: seeds the student's weights, the epochs' order and the calibration sample.
        threads: torch threads while distilling (latency is always one thread).
        force: overwrite an output folder that already has a compress.json.
    """

    model: str
    data: str
    out: str
    keep: float = 0.5
    student_channels: tuple[int, ...] = (8, 16, 32, 32)
    student_decoder: tuple[int, ...] = (16, 8, 4, 4)
    student_features: int = 64
    epochs: int = 4
    student_epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-3
    alpha: float = 0.5
    temperature: float = 2.0
    reg_beta: float = 0.0
    calibration_frames: int = 512
    repeats: int = 5
    calls: int = 200
    seed: int = 0
    threads: int = 2
    force: bool = False

    def __post_init__(self) -> None:
        require(0.0 < self.keep < 1.0, "keep", f"must be in (0, 1), got {self.keep}")
        require(self.epochs >= 0, "epochs", f"must be at least 0, got {self.epochs}")
        require(self.student_epochs >= 0, "student_epochs", f"must be at least 0, got {self.student_epochs}")
        require(0.0 <= self.alpha <= 1.0, "alpha", f"must be in [0, 1], got {self.alpha}")
        require(self.reg_beta >= 0, "reg_beta", f"must be 0 (the teacher's) or positive, got {self.reg_beta}")
        require(self.temperature > 0, "temperature", f"must be positive, got {self.temperature}")
        require(self.calibration_frames >= 1, "calibration_frames", f"must be at least 1, got {self.calibration_frames}")
        require(self.repeats >= 1 and self.calls >= 1, "repeats", "repeats and calls must be at least 1")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def teacher_reg_beta(cfg: CompressConfig, meta: dict[str, Any]) -> float:
    """The regression loss's turning point the distillation uses: the config's, else the teacher's."""
    from agents.datasets.perception_train import PerceptionTrainConfig

    if cfg.reg_beta > 0:
        return cfg.reg_beta
    # A file from before nets recorded it: the trainer's default (the shipped recipe); --reg-beta for a net trained otherwise.
    return float(meta.get("reg_beta", PerceptionTrainConfig.reg_beta))


def _distil(
    student: Any, teacher: Any, cfg: CompressConfig, train: Any, label: str, epochs: int, progress: bool, reg_beta: float
) -> list[dict[str, float]]:
    import torch
    from tqdm import tqdm

    from perception.compress import distill_epoch
    from perception.model import LossConfig, MultiTaskLoss

    loss_fn = MultiTaskLoss(student.cfg.tasks, LossConfig(reg_beta=reg_beta))
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    rows = []
    for epoch in range(epochs):
        rng = np.random.default_rng([cfg.seed, 101, epoch])
        with tqdm(total=len(train), desc=f"{label} epoch {epoch + 1}/{epochs}", unit="frame", disable=not progress, leave=False) as bar:
            losses = distill_epoch(
                student,
                teacher,
                loss_fn,
                opt,
                train,
                cfg.batch_size,
                rng,
                alpha=cfg.alpha,
                temperature=cfg.temperature,
                on_batch=bar.update,
            )
        sched.step()
        rows.append({"epoch": epoch + 1, **{k: round(v, 5) for k, v in losses.items()}})
        print(f"{label} epoch {epoch + 1}: loss {losses['total']:.4f} (labels {losses['label']:.4f}, teacher gap {losses['distill']:.4f})")
    return rows


def compress(cfg: CompressConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run every compression, score and time each variant; write the folder; return compress.json's content."""
    import torch

    from agents.datasets.perception_train import save_model
    from agents.datasets.reader import load_frames
    from perception import read_net_file
    from perception.compress import clone_stats, export_onnx, file_bytes, frozen, latency_ms, prune_channels, quantize_int8
    from perception.model import NetConfig, PerceptionNet, evaluate
    from perception.runtime import OnnxNet

    out = Path(cfg.out)
    if (out / "compress.json").exists() and not cfg.force:
        raise ValueError(f"out: {out} already holds a compression run (compress.json); choose another folder or pass --force")
    payload = read_net_file(Path(cfg.model))
    teacher = PerceptionNet(NetConfig.from_dict(payload["net"]))
    teacher.load_state_dict(payload["state_dict"])
    teacher = frozen(teacher)
    size = teacher.cfg.size
    # Data before anything is written: a bad dataset is refused with nothing in OUT.
    train, _ = load_frames(cfg.data, ("train",), size)
    test, _ = load_frames(cfg.data, ("test",), size)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    meta = dict(payload.get("meta", {}))
    reg_beta = teacher_reg_beta(cfg, meta)
    print(f"perception compress: {cfg.model} -> {out}; {len(train):,} training frames, {len(test):,} test frames")

    files: dict[str, list[Path]] = {}
    print("phase: export float32 ONNX and quantise to int8")
    files["float32"] = export_onnx(teacher, out / "float32.onnx", {**meta, "variant": "float32"})
    calib = train.rgb[np.sort(np.random.default_rng([cfg.seed, 7]).permutation(len(train))[: cfg.calibration_frames])]
    files["int8"] = quantize_int8(files["float32"][0], out / "int8.onnx", calib)

    history: dict[str, Any] = {}
    print(f"phase: prune to {cfg.keep:.0%} of the channels, fine-tune by distillation ({cfg.epochs} epochs)")
    pruned = prune_channels(teacher, cfg.keep)
    pruned_before = evaluate(pruned.fused(), test)
    history["pruned"] = _distil(pruned, teacher, cfg, train, "pruned", cfg.epochs, progress, reg_beta)
    save_model(out / "pruned.pt", pruned, {**meta, "variant": "pruned", "keep": cfg.keep})
    files["pruned"] = [out / "pruned.pt", *export_onnx(pruned, out / "pruned.onnx", {**meta, "variant": "pruned"})]
    files["pruned-int8"] = quantize_int8(out / "pruned.onnx", out / "pruned-int8.onnx", calib)

    print(f"phase: distil a student {list(cfg.student_channels)} from scratch ({cfg.student_epochs} epochs)")
    torch.manual_seed(cfg.seed)
    student = PerceptionNet(
        NetConfig(
            size=size,
            channels=cfg.student_channels,
            decoder=cfg.student_decoder,
            features=cfg.student_features,
            lead_head=teacher.cfg.lead_head,
            camera=teacher.cfg.camera,
        )
    )
    clone_stats(student, teacher)
    history["student"] = _distil(student, teacher, cfg, train, "student", cfg.student_epochs, progress, reg_beta)
    save_model(out / "student.pt", student, {**meta, "variant": "student"})
    files["student"] = [out / "student.pt", *export_onnx(student, out / "student.onnx", {**meta, "variant": "student"})]

    print("phase: score every variant on the test split, then time each on one thread")
    torch.set_num_threads(1)
    variants: dict[str, tuple[str, Any]] = {
        "float32 (PyTorch)": ("torch", teacher.fused()),
        "float32": ("onnx", OnnxNet(out / "float32.onnx")),
        "int8": ("onnx", OnnxNet(out / "int8.onnx")),
        "pruned": ("onnx", OnnxNet(out / "pruned.onnx")),
        "pruned-int8": ("onnx", OnnxNet(out / "pruned-int8.onnx")),
        "student": ("onnx", OnnxNet(out / "student.onnx")),
    }
    sizes = {
        "float32 (PyTorch)": Path(cfg.model).stat().st_size,
        "float32": file_bytes(files["float32"]),
        "int8": file_bytes(files["int8"]),
        "pruned": file_bytes([p for p in files["pruned"] if p.suffix == ".onnx"]),
        "pruned-int8": file_bytes(files["pruned-int8"]),
        "student": file_bytes([p for p in files["student"] if p.suffix == ".onnx"]),
    }
    result: dict[str, Any] = {"config": cfg.as_dict(), "reg_beta": reg_beta, "test_frames": len(test), "variants": {}, "history": history}
    for name, (runtime, net) in variants.items():
        m = evaluate(net, test)
        n_params = sum(p.numel() for p in net.parameters()) if runtime == "torch" else None
        result["variants"][name] = {
            "runtime": "PyTorch eager" if runtime == "torch" else "ONNX Runtime",
            "metrics": m,
            "bytes": sizes[name],
        }
        if n_params:
            result["variants"][name]["params"] = int(n_params)
    result["variants"]["pruned"]["metrics_before_finetune"] = pruned_before
    frames = test.rgb[:256]  # the frames the latency loops cycle through
    # Interleaved: every variant's repeat k runs before any variant's repeat k + 1, so drift of the machine's speed hits all alike.
    lat: dict[str, dict[str, list[float]]] = {name: {"b1": [], "b1_seg": [], "b64": []} for name in variants}
    for _ in range(cfg.repeats):
        for name, (_, net) in variants.items():
            lat[name]["b1"] += latency_ms(lambda x, n=net: n.predict(x, segmentation=False), frames, 1, 1, cfg.calls)
            lat[name]["b1_seg"] += latency_ms(lambda x, n=net: n.predict(x, segmentation=True), frames, 1, 1, max(1, cfg.calls // 2))
            lat[name]["b64"] += latency_ms(lambda x, n=net: n.predict(x, segmentation=True), frames, 64, 1, max(1, cfg.calls // 40))
    for name in variants:
        v = result["variants"][name]
        v["latency_ms"] = {k: float(np.median(x)) for k, x in lat[name].items()}
        v["latency_repeats_ms"] = lat[name]
    add_ratios(result)
    write_json(out / "compress.json", result)
    write_text(out / "compress.md", markdown(result))
    return result


def _rel(v: float, ref: float, higher: bool) -> float:
    """Relative change towards worse (positive = worse), NaN where either is missing."""
    if math.isnan(v) or math.isnan(ref) or ref == 0:
        return math.nan
    return (ref - v) / abs(ref) if higher else (v - ref) / abs(ref)


def add_ratios(result: dict[str, Any]) -> None:
    """Each variant's speed-ups against both float32 nets and its worst metric change against ONNX float32."""
    ref_t = result["variants"]["float32 (PyTorch)"]
    ref_o = result["variants"]["float32"]
    for name, v in result["variants"].items():
        lat = v["latency_ms"]
        v["speedup_vs_torch"] = {k: ref_t["latency_ms"][k] / lat[k] for k in lat}
        v["speedup_vs_onnx_float32"] = {k: ref_o["latency_ms"][k] / lat[k] for k in lat}
        rel = {key: _rel(v["metrics"].get(key, math.nan), ref_t["metrics"].get(key, math.nan), higher) for key, _, higher in COMPARE}
        v["worse_by"] = rel
        finite = [x for x in rel.values() if not math.isnan(x)]
        v["worst_change"] = max(finite) if finite else math.nan
        if name in TARGETS:
            speed, tol = TARGETS[name]
            v["target"] = {"speedup_b1": speed, "worst_change": tol}
            v["meets_vs_torch"] = bool(v["speedup_vs_torch"]["b1"] >= speed and v["worst_change"] <= tol)
            v["meets_vs_onnx_float32"] = bool(v["speedup_vs_onnx_float32"]["b1"] >= speed and v["worst_change"] <= tol)


def markdown(result: dict[str, Any]) -> str:
    """The compression tables: cost, then every metric's change."""
    cfg = result["config"]
    model, data = portable(cfg["model"], "runs"), portable(cfg["data"], "data")
    lines = [
        f"Compression of `{model}` on `{data}` ({result['test_frames']:,} test frames); latency on one thread, "
        f"median of {cfg['repeats']} repeats, measured in the same process one variant after another.",
        "",
        "| variant | runtime | size [KB] | b1 heads [ms] | b1 all heads [ms] | b64 per frame [ms] | speed-up b1 vs PyTorch f32 | "
        "vs ONNX f32 | worst metric change | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, v in result["variants"].items():
        lat = v["latency_ms"]
        tgt = ""
        if "target" in v:
            t = v["target"]
            tgt = (
                f"≥{t['speedup_b1']:g}x within {t['worst_change']:.0%}: "
                f"{'✓' if v['meets_vs_torch'] else '✗'} vs PyTorch, {'✓' if v['meets_vs_onnx_float32'] else '✗'} vs ONNX f32"
            )
        lines.append(
            f"| {name} | {v['runtime']} | {v['bytes'] / 1024:,.0f} | {lat['b1']:.3f} | {lat['b1_seg']:.3f} | {lat['b64']:.3f} | "
            f"{v['speedup_vs_torch']['b1']:.2f}x | {v['speedup_vs_onnx_float32']['b1']:.2f}x | {v['worst_change']:+.1%} | {tgt} |"
        )
    lines += ["", "Test metrics (change against float32 in brackets; positive = worse):", ""]
    names = list(result["variants"])
    lines += ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key, label, _ in COMPARE:
        cells = []
        for name in names:
            v = result["variants"][name]
            x, r = v["metrics"].get(key, math.nan), v["worse_by"].get(key, math.nan)
            cells.append("n/a" if math.isnan(x) else (f"{x:.3f}" if name == "float32 (PyTorch)" else f"{x:.3f} ({r:+.1%})"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    before = result["variants"].get("pruned", {}).get("metrics_before_finetune")
    if before:
        lines += [
            "",
            "The pruned net before its fine-tuning: "
            + ", ".join(f"{label} {before.get(key, math.nan):.3f}" for key, label, _ in COMPARE if key in before)
            + ".",
        ]
    return "\n".join(lines) + "\n"


__all__ = ["COMPARE", "TARGETS", "CompressConfig", "add_ratios", "compress", "markdown"]
