"""Compression of the perception net: ONNX export, int8 quantisation, channel pruning, distillation.

- ``export_onnx``: the float32 net as ONNX (``torch.onnx.export`` with the ``torch.export``
  based exporter), both graphs ``perception.runtime.OnnxNet`` reads, outputs in physical units.
- ``quantize_int8``: post-training static quantisation with ONNX Runtime (QDQ format, int8
  weights per output channel, uint8 activations calibrated on training frames, output layers float). The maintained
  path: eager ``torch.ao.quantization`` is deprecated, and PT2E's x86 backend lowers to kernels
  that only pay off through ``torch.compile``, which a per-step call cannot amortise.
- ``prune_channels``: structured pruning that removes channels. Every conv stage, decoder stage
  and the feature layer keep their most important ``keep`` share of channels (importance: the L1
  norm of each output filter after folding its batch norm, "network slimming"'s gamma scale times
  the filter's weight), and a new, smaller ``PerceptionNet`` is built with only those channels'
  weights copied in, so every layer really is narrower (``torch.nn.utils.prune`` only masks).
- ``distill_epoch``: one epoch of a student against a teacher (Hinton et al. 2015): the student's
  loss is a mix of the label loss and the gap to the teacher's outputs (standardised regression,
  presence probability, light and per-pixel class distributions at temperature ``T``). It fine-tunes
  a pruned net as well as training a small one from scratch.

Arrays and nets in, nets and files out; the command around it is ``drive-sim perception compress``
(agents/datasets/perception_compress.py).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from perception.model import N_SEG, TASKS, Frames, MultiTaskLoss, NetConfig, PerceptionNet, targets
from perception.runtime import heads_path


# ---------------------------------------------------------------------- ONNX export
class _Deploy(nn.Module):
    """The net with its outputs in physical units and decisions taken (what ``OnnxNet.predict`` reads)."""

    def __init__(self, net: PerceptionNet, segmentation: bool) -> None:
        super().__init__()
        self.net, self.segmentation = net, segmentation

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raw = self.net(frames, segmentation=self.segmentation)
        out = (raw["regression"] * self.net.reg_std + self.net.reg_mean, torch.sigmoid(raw["presence"]), raw["light"].argmax(1))
        if self.segmentation:
            out = (*out, raw["segmentation"].argmax(1))
        return out


def export_onnx(net: PerceptionNet, path: Path, meta: dict[str, Any] | None = None) -> list[Path]:
    """Write ``path`` (all heads) and its ``.heads.onnx`` (no decoder); returns both paths.

    The batch dimension is dynamic; the net's config and ``meta`` go into the files' metadata.
    Batch norms are folded first (``PerceptionNet.fused``).
    """
    import logging
    import warnings

    import onnx

    # The exporter logs a line per torchvision operator it cannot register (torchvision is not a dependency).
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)

    if set(net.cfg.tasks) != set(TASKS):
        raise ValueError(f"export: needs a net with every task ({', '.join(TASKS)}), this one has {', '.join(net.cfg.tasks)}")
    fused = net.fused()
    example = torch.zeros(2, net.cfg.size, net.cfg.size, 3, dtype=torch.uint8)  # batch 2: a batch of 1 would be specialised
    written = []
    for target, seg in ((path, True), (heads_path(path), False)):
        names = ["reg", "lead_p", "light_state"] + (["segmentation"] if seg else [])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                _Deploy(fused, seg).eval(),
                (example,),
                input_names=["frames"],
                output_names=names,
                dynamic_shapes={"frames": {0: torch.export.Dim("batch")}},
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        model = program.model_proto
        for key, value in (("drive_sim_net", json.dumps(net.cfg.as_dict())), ("drive_sim_meta", json.dumps(meta or {}, default=float))):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        onnx.save_model(model, str(tmp))
        tmp.replace(target)
        written.append(target)
    return written


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray, batch: int = 32) -> list[Path]:
    """Static int8 quantisation of both graphs of ``src`` into ``dst`` (and its ``.heads.onnx``).

    ``calibration``: uint8 frames (N, H, W, 3) whose activations set the ranges.
    Weights int8 per output channel, activations uint8 with percentile ranges, QDQ format (the one
    ONNX Runtime fuses into integer kernels on x86); the first convolution and the output layers stay
    float. The metadata of ``src`` is kept.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            # Full batches only: the percentile calibrator stacks every batch's activations into one array.
            b = max(1, min(batch, len(calibration)))
            n = len(calibration) // b * b
            self.it = iter([{"frames": np.ascontiguousarray(calibration[i : i + b])} for i in range(0, n, b)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    def keep_float(path: Path) -> list[str]:
        # The output layers stay float32: the task heads (the linear layers after the feature layer) and the
        # decoder's 1x1 class layer. They are a few thousand weights, and their outputs are the predictions:
        # an 8-bit output spans all eight standardised targets with 256 levels, which cost the lane offset
        # 37 % and the curvature 275 % of their error in a first run that quantised them. The feature layer
        # (the largest linear layer) stays float as well: quantised, it was the largest error left on the
        # half-resolution net (stop-line distance +4.7 %, lead gap +2.0 %; float, +3.7 % and within 2 %), for
        # one matrix product of a few hundred thousand multiply-adds against the convolutions' millions.
        model = onnx.load(str(path))
        init = {i.name: tuple(i.dims) for i in model.graph.initializer}
        out = [n.name for n in model.graph.node if n.op_type in ("Gemm", "MatMul") and n.input[1] in init]
        convs = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in init]
        out += [n.name for n in convs if init[n.input[1]][2:] == (1, 1)]
        # The first convolution too: with 3 input channels ONNX Runtime's integer kernel is slower than
        # the float one (77 against 27 us a frame, profiled), and its 8-bit output was the largest error
        # (curvature +5.3 % with it quantised, +4.1 % without, on the shipped net).
        return [*out, convs[0].name]

    written = []
    dst.parent.mkdir(parents=True, exist_ok=True)
    for s, d in ((src, dst), (heads_path(src), heads_path(dst))):
        pre = d.with_name(d.name + ".pre.tmp")
        tmp = d.with_name(d.name + ".tmp")
        try:
            quant_pre_process(str(s), str(pre))
            quantize_static(
                str(pre),
                str(tmp),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                # Relu among the quantised types: the quantiser then folds each ReLU into the range of the
                # convolution before it; left out, every layer ran dequantise-ReLU-quantise in float
                # (1.46x instead of 1.97x the speed of float32 at batch 1, curvature +5.8 % instead of +4.1 %,
                # one run on a busy machine).
                op_types_to_quantize=["Conv", "Gemm", "MatMul", "Relu"],
                nodes_to_exclude=keep_float(pre),
                # Ranges from the 99.99th percentile of each activation instead of its extremes: min-max let rare
                # bright pixels stretch the ranges and cost the lane offset 11 %, percentile 2 % (on the shipped net).
                calibrate_method=CalibrationMethod.Percentile,
                extra_options={"CalibPercentile": 99.99},
            )
            model = onnx.load(str(tmp))
            del model.metadata_props[:]
            model.metadata_props.extend(onnx.load(str(s)).metadata_props)
            onnx.save_model(model, str(tmp))
            tmp.replace(d)
        finally:
            pre.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)
        written.append(d)
    return written


# ---------------------------------------------------------------------- structured pruning
def _folded_l1(block: nn.Sequential) -> torch.Tensor:
    """Importance of each output channel of a conv-BN-ReLU block: L1 of the filter times the BN scale."""
    conv, bn = block[0], block[1]
    w = conv.weight.detach().abs().sum(dim=(1, 2, 3))
    if isinstance(bn, nn.BatchNorm2d):
        w = w * (bn.weight.detach().abs() / torch.sqrt(bn.running_var + bn.eps))
    return w


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores, in channel order."""
    return torch.sort(torch.topk(scores, k).indices).values


def _copy_block(dst: nn.Sequential, src: nn.Sequential, out_idx: torch.Tensor, in_idx: torch.Tensor) -> None:
    """Copy a conv-BN block's kept output channels ``out_idx`` reading kept input channels ``in_idx``."""
    dst[0].weight.data.copy_(src[0].weight.data[out_idx][:, in_idx])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst[1], name).data.copy_(getattr(src[1], name).data[out_idx])
    dst[1].num_batches_tracked.data.copy_(src[1].num_batches_tracked.data)


def pruned_config(cfg: NetConfig, keep: float) -> NetConfig:
    """The config of ``cfg`` with ``keep`` of every layer's channels (at least 2 each; decoder stages at least 4, or all they have).

    The decoder's last stages are already narrow (8 and 4 channels in the shipped net): halved to 2,
    the full-resolution stage that draws the one-pixel lane markings cannot tell five classes apart
    (a first pruned net fell to 0.50 mIoU).
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep: must be in (0, 1], got {keep}")

    def k(n: int, least: int = 2) -> int:
        return min(n, max(least, round(n * keep)))

    return NetConfig(
        size=cfg.size,
        channels=tuple(k(c) for c in cfg.channels),
        features=k(cfg.features),
        decoder=tuple(k(c, 4) for c in cfg.decoder),
        tasks=cfg.tasks,
        lead_head=cfg.lead_head,
        camera=cfg.camera,
    )


def prune_channels(net: PerceptionNet, keep: float) -> PerceptionNet:
    """A narrower copy of ``net`` keeping the most important ``keep`` share of each layer's channels.

    Within an encoder stage the inner channels (between its two convolutions) and the output
    channels are chosen separately; the output channels carry on into the next stage, the feature
    layer's input columns (flattened channel-major) and the decoder's skip connections.
    """
    if net.decoder is None or set(net.cfg.tasks) != set(TASKS):
        raise ValueError(f"prune: needs a net with every task ({', '.join(TASKS)})")
    cfg = pruned_config(net.cfg, keep)
    small = PerceptionNet(cfg)
    small.reg_mean.copy_(net.reg_mean)
    small.reg_std.copy_(net.reg_std)
    prev = torch.arange(3)
    stage_out: list[torch.Tensor] = []
    for k, (s_big, s_small) in enumerate(zip(net.encoder.stages, small.encoder.stages, strict=True)):
        n = cfg.channels[k]
        if k == 0:
            idx = _top(_folded_l1(s_big), n)
            _copy_block(s_small, s_big, idx, prev)
        else:
            inner = _top(_folded_l1(s_big[0]), n)
            _copy_block(s_small[0], s_big[0], inner, prev)
            idx = _top(_folded_l1(s_big[1]), n)
            _copy_block(s_small[1], s_big[1], idx, inner)
        stage_out.append(idx)
        prev = idx
    # Feature layer: input columns of the kept channels (flattened channel-major), outputs by row L1.
    lin_big, lin_small = net.trunk[1], small.trunk[1]
    side2 = lin_big.in_features // net.cfg.channels[-1]
    cols = (prev[:, None] * side2 + torch.arange(side2)[None, :]).reshape(-1)
    rows = _top(lin_big.weight.detach().abs().sum(1) * sum(h.weight.detach().abs().sum(0) for h in net.heads.values()), cfg.features)
    lin_small.weight.data.copy_(lin_big.weight.data[rows][:, cols])
    lin_small.bias.data.copy_(lin_big.bias.data[rows])
    for name, head in net.heads.items():
        small.heads[name].weight.data.copy_(head.weight.data[:, rows])
        small.heads[name].bias.data.copy_(head.bias.data)
    # Decoder: each stage reads [upsampled previous stage, the finer encoder map]; the last reads no skip.
    assert small.decoder is not None
    prev_dec, prev_width = stage_out[-1], net.cfg.channels[-1]
    skips = [*reversed(stage_out[:-1]), None]
    kept = []
    for j, (u_big, u_small) in enumerate(zip(net.decoder.ups, small.decoder.ups, strict=True)):
        in_idx = prev_dec if skips[j] is None else torch.cat([prev_dec, prev_width + skips[j]])
        out_idx = _top(_folded_l1(u_big), cfg.decoder[j])
        _copy_block(u_small, u_big, out_idx, in_idx)
        prev_dec, prev_width = out_idx, net.cfg.decoder[j]
        kept.append(out_idx)
    small.decoder.head.weight.data.copy_(net.decoder.head.weight.data[:, prev_dec])
    small.decoder.head.bias.data.copy_(net.decoder.head.bias.data)
    if net.lead is not None:  # a ground lead head is not pruned: it reads the kept channels of its decoder stage
        assert small.lead is not None
        # Full resolution: [the last stage's features, the class logits]; half: the next-to-last stage's features.
        in_idx = torch.cat([prev_dec, prev_width + torch.arange(N_SEG)]) if net.lead.logits else kept[-2]
        state = net.lead.state_dict()
        state["score.0.weight"] = state["score.0.weight"][:, in_idx].clone()
        small.lead.load_state_dict(state)
    return small


# ---------------------------------------------------------------------- distillation
def distill_loss(
    student_out: dict[str, torch.Tensor], teacher_out: dict[str, torch.Tensor], temperature: float, reg_beta: float = 1.0
) -> torch.Tensor:
    """The gap between student and teacher outputs, summed over tasks.

    ``reg_beta``: the smooth-L1 turning point of the standardised regression outputs, the teacher's
    own training loss's (a teacher trained near absolute error, beta 0.1, distilled at beta 1 has its
    small errors weighted quadratically, which is near nothing: the pruned net's lane offset and road
    edge came out 30 % and 65 % worse than the teacher's that way).
    """
    t2 = temperature * temperature
    loss = F.smooth_l1_loss(student_out["regression"], teacher_out["regression"], beta=reg_beta)
    p = torch.sigmoid(teacher_out["presence"])
    entropy = F.binary_cross_entropy(p, p)  # the cross-entropy's floor: the presence term is the binary KL, zero at a match
    loss = loss + F.binary_cross_entropy_with_logits(student_out["presence"], p) - entropy
    loss = loss + t2 * F.kl_div(
        F.log_softmax(student_out["light"] / temperature, 1), F.softmax(teacher_out["light"] / temperature, 1), reduction="batchmean"
    )
    if "segmentation" in student_out and "segmentation" in teacher_out:
        s = F.log_softmax(student_out["segmentation"] / temperature, 1)
        t = F.softmax(teacher_out["segmentation"] / temperature, 1)
        loss = loss + t2 * F.kl_div(s, t, reduction="none").sum(1).mean()
    return loss


def distill_epoch(
    student: PerceptionNet,
    teacher: PerceptionNet,
    loss_fn: MultiTaskLoss,
    opt: torch.optim.Optimizer,
    data: Frames,
    batch_size: int,
    rng: np.random.Generator,
    *,
    alpha: float = 0.5,
    temperature: float = 2.0,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """One epoch of ``(1 - alpha) * label loss + alpha * distill_loss``; mean ``total``, ``label`` and ``distill``.

    The teacher gap's regression term turns at ``loss_fn``'s ``reg_beta``, like the label loss.
    """
    if not torch.equal(student.reg_mean, teacher.reg_mean) or not torch.equal(student.reg_std, teacher.reg_std):
        raise ValueError("distill: the student must share the teacher's target standardisation (copy reg_mean and reg_std)")
    student.train()
    teacher.eval()
    order = rng.permutation(len(data))
    sums = {"total": 0.0, "label": 0.0, "distill": 0.0}
    n = 0
    use_seg = data.seg is not None
    for start in range(0, len(order), batch_size):
        idx = np.sort(order[start : start + batch_size])
        y = targets(data.labels[idx], data.names, data.seg[idx] if use_seg else None)
        with torch.no_grad():
            t_out = teacher(data.rgb[idx], segmentation=use_seg)
        s_out = student(data.rgb[idx], segmentation=use_seg)
        label, _ = loss_fn(s_out, y, student)
        gap = distill_loss(s_out, t_out, temperature, loss_fn.cfg.reg_beta)
        total = (1.0 - alpha) * label + alpha * gap
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        for k, v in (("total", total), ("label", label), ("distill", gap)):
            sums[k] += float(v.detach())
        n += 1
        if on_batch is not None:
            on_batch(len(idx))
    return {k: v / max(n, 1) for k, v in sums.items()}


# ---------------------------------------------------------------------- cost
def latency_ms(predict: Callable[[np.ndarray], Any], frames: np.ndarray, batch: int, repeats: int, calls: int) -> list[float]:
    """Milliseconds per frame of ``predict`` on batches of ``batch`` frames: one figure per repeat of ``calls`` calls."""
    k = 0
    predict(frames[:batch])  # warm up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            start = (k * batch) % max(1, len(frames) - batch + 1)
            predict(frames[start : start + batch])
            k += 1
        out.append((time.perf_counter() - t0) * 1e3 / (calls * batch))
    return out


def file_bytes(paths: Sequence[Path]) -> int:
    """Total size on disk of ``paths``."""
    return int(sum(Path(p).stat().st_size for p in paths))


def clone_stats(student: PerceptionNet, teacher: PerceptionNet) -> PerceptionNet:
    """``student`` with the teacher's target standardisation (the distillation compares standardised outputs)."""
    student.reg_mean.copy_(teacher.reg_mean)
    student.reg_std.copy_(teacher.reg_std)
    return student


def frozen(net: PerceptionNet) -> PerceptionNet:
    """An eval-mode copy with gradients off (a teacher)."""
    t = copy.deepcopy(net).eval()
    for p in t.parameters():
        p.requires_grad_(False)
    return t


__all__ = [
    "clone_stats",
    "distill_epoch",
    "distill_loss",
    "export_onnx",
    "file_bytes",
    "frozen",
    "latency_ms",
    "prune_channels",
    "pruned_config",
    "quantize_int8",
]
