"""The multi-task perception net: one shared encoder, a head per task, and its loss and metrics.

Tasks (what the camera tells the rest of the stack):

- ``regression``: lane-centre offset, heading error, curvature ahead, distances to both road
  edges, the lead vehicle's gap and relative speed, the distance to the next stop line. Targets
  are standardised with the training set's mean and spread (kept in the net, so predictions come
  out in metres, degrees and 1/m); the lead's figures count only where a lead is present, the stop
  distance only where a line is in range.
- ``presence``: is a lead vehicle in the ego lane within range (one logit).
- ``light``: the state of the next stop line (none, green, amber, red, yield).
- ``segmentation``: road, lane marking, vehicle, verge (grass or barrier), background, per pixel,
  from a small decoder with skip connections (lane markings are one or two pixels wide at 84 px,
  so the last layer works at full resolution).

Loss weights are fixed per task or learned (``weighting="uncertainty"``: each task's loss is
scaled by ``exp(-s)`` and ``s`` added, Kendall, Gal and Cipolla 2018, with one ``s`` per task).

Arrays in, tensors out: this module knows nothing of the simulator; the label order is the
dataset's (``REG_LABELS`` names the columns it reads), given by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from perception.names import (  # importable without torch (the command's parser checks them)
    GROUND_LEAD_HEADS,
    GROUND_LEAD_TASKS,
    LEAD_HEADS,
    TASKS,
)

#: Regression targets, by the dataset's label names.
REG_LABELS = (
    "lane_offset_m",
    "heading_error_deg",
    "curvature_ahead_1pm",
    "edge_left_m",
    "edge_right_m",
    "lead_distance_m",
    "lead_rel_speed_mps",
    "stop_distance_m",
)
LEAD_ONLY = ("lead_distance_m", "lead_rel_speed_mps")
LEAD_COL = REG_LABELS.index("lead_distance_m")
STOP_ONLY = ("stop_distance_m",)
N_LIGHT = 5  # none, green, amber, red, yield
N_SEG = 5  # background, road, marking, vehicle, verge
#: The farthest gap the ground lead head gives [m] (beyond every lead the labels hold; at and above the horizon).
GROUND_FAR_M = 80.0


@dataclass(frozen=True)
class NetConfig:
    """Architecture.

    Attributes:
        size: input frames are ``size`` x ``size`` RGB.
        channels: encoder channels, one stride-2 stage each.
        features: size of the shared feature vector the scalar heads read.
        decoder: channels of the segmentation decoder stages, coarse to fine (its last stage is at
            full resolution).
        tasks: the heads to build (a single-task net has one).
        lead_head: how the lead's gap is read: "fc", from the shared feature vector like every
            regression target; "ground", from a heat map over the full-resolution decoder
            features and class logits (``GroundLeadHead``): one over the weighted mean of the
            picked pixels' inverse flat-ground distances, each with a learned correction;
            "ground-half", the same over the decoder's half-resolution stage (its next-to-last),
            so that the driving heads skip the full-resolution stage. The ground heads need the
            regression and segmentation heads.
        camera: the camera the frames come from, (vertical field of view [deg], downward pitch
            [deg], mount height [m]); only the ground lead heads use it.
    """

    size: int = 84
    channels: tuple[int, ...] = (16, 32, 64, 64)
    features: int = 128
    decoder: tuple[int, ...] = (32, 16, 8, 4)
    tasks: tuple[str, ...] = TASKS
    lead_head: str = "fc"
    camera: tuple[float, ...] = (60.0, 8.0, 1.5)

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ValueError(f"tasks: unknown {bad}; allowed: {', '.join(TASKS)}")
        if len(self.decoder) != len(self.channels):
            raise ValueError(f"decoder: needs one stage per encoder stage ({len(self.channels)}), got {len(self.decoder)}")
        if self.lead_head not in LEAD_HEADS:
            raise ValueError(f"lead_head: must be one of {', '.join(LEAD_HEADS)}, got {self.lead_head!r}")
        if self.lead_head in GROUND_LEAD_HEADS and not set(GROUND_LEAD_TASKS) <= set(self.tasks):
            raise ValueError("lead_head: ground reads the segmentation decoder into the regression output; it needs both tasks")
        if len(self.camera) != 3:
            raise ValueError(f"camera: needs (fov_deg, pitch_deg, height_m), got {self.camera}")

    def as_dict(self) -> dict:
        """JSON-ready."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> NetConfig:
        """From ``as_dict``."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    """Stride-2 conv stages; returns every stage's feature map (finest first).

    Takes float frames (B, 3, H, W) scaled to [0, 1].
    """

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        stages, c = [], 3
        for k, ch in enumerate(channels):
            stages.append(nn.Sequential(_block(c, ch, 2), _block(ch, ch, 1)) if k else _block(c, ch, 2))
            c = ch
        self.stages = nn.ModuleList(stages)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of every stage."""
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class SegDecoder(nn.Module):
    """Upsample the coarsest map stage by stage, adding each finer encoder map (U-Net style), to full resolution."""

    def __init__(self, enc_channels: Sequence[int], dec_channels: Sequence[int], n_classes: int) -> None:
        super().__init__()
        ups, c = [], enc_channels[-1]
        skips = [*reversed(enc_channels[:-1]), 0]  # the finer maps, then the input resolution (no skip)
        for skip, ch in zip(skips, dec_channels, strict=True):
            ups.append(_block(c + skip, ch, 1))
            c = ch
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(c, n_classes, 1)

    def forward(self, feats: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """Class logits (B, K, H, W)."""
        return self.head(self.features(feats, size))

    def features(
        self, feats: list[torch.Tensor], size: tuple[int, int], *, start: int = 0, stop: int | None = None, x: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The features (B, C, H, W) after stage ``stop`` (the last by default), before the class layer.

        ``start`` and ``x`` continue from an earlier call's ``stop`` and output (the half-resolution
        ground lead head reads the next-to-last stage, and only segmentation needs the last).
        """
        x = feats[-1] if x is None else x
        finer = [*reversed(feats[:-1]), None]
        stop = len(self.ups) if stop is None else stop
        for up, skip in list(zip(self.ups, finer, strict=True))[start:stop]:
            target = skip.shape[-2:] if skip is not None else size
            x = F.interpolate(x, size=target, mode="bilinear", align_corners=False)
            if skip is not None:
                x = torch.cat([x, skip], dim=1)
            x = up(x)
        return x


def ground_inverse_rows(size: int, fov_deg: float, pitch_deg: float, height_m: float) -> np.ndarray:
    """One over the ground distance [1/m] of each pixel row's centre (0 at and above the horizon).

    Linear in the image row near the horizon (tan of the ray's angle under it, over the height), so
    that a weighted mean of rows is a distance between them, where a mean of distances is not.
    """
    f = (size / 2) / math.tan(math.radians(fov_deg) / 2)
    below = np.radians(pitch_deg) + np.arctan((np.arange(size) + 0.5 - size / 2) / f)  # ray angle under the horizontal
    return (np.tan(np.maximum(below, 0.0)) / height_m).astype(np.float32)


class GroundLeadHead(nn.Module):
    """The lead's gap from where a heat map over the decoder's features puts it on the ground.

    A lead's distance is where it meets the road, a row of the image; read by a fully connected
    layer from a 6x6 map the gap came out 1.5 m off (median) even for leads within 10 m, where a
    pixel row is a few centimetres. Here a small convolution over the decoder's last features and
    the segmentation logits scores every pixel (softmax over the image) and proposes a correction
    to its row's inverse ground distance (the car's lowest visible edge is above the ground, its
    bumper ahead of the contact point, and its size tells the distance too). The gap is one over
    the score-weighted mean: a soft arg-max, as in keypoint regression, which reaches below a
    pixel; averaged in inverse distance, which is linear in the row near the horizon where far
    leads are (a mean of distances between the row at 40 m and the horizon would be meaningless).
    """

    #: The correction channel's unit [1/m]: a raw output of 1 moves a lead at 45 m by about a third.
    CORRECTION_PER_M = 0.01

    def __init__(self, c_in: int, rows: int, camera: Sequence[float], logits: bool = True) -> None:
        """``c_in`` feature channels on a map of ``rows`` rows spanning the camera's field of view; ``logits``: reads class logits too."""
        super().__init__()
        self.logits = logits
        self.score = nn.Sequential(nn.Conv2d(c_in + (N_SEG if logits else 0), 8, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(8, 2, 1))
        self.register_buffer("inverse", torch.as_tensor(ground_inverse_rows(rows, *camera))[:, None])  # (H, 1), broadcast over columns

    def forward(self, x: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """The gap [m] (B,), from decoder features (B, C, H, W) and, if the head reads them, class logits (B, K, H, W)."""
        h = self.score(torch.cat([x, logits], 1) if self.logits else x)
        w = torch.softmax(h[:, 0].flatten(1), 1)
        q = (self.inverse + self.CORRECTION_PER_M * h[:, 1]).flatten(1)
        return 1.0 / (w * q).sum(1).clamp_min(1.0 / GROUND_FAR_M)


class PerceptionNet(nn.Module):
    """Shared encoder and one head per configured task.

    ``forward`` takes uint8 frames (B, H, W, 3) as the env and the dataset give them (or float
    (B, 3, H, W) in [0, 1]) and returns a dict with the configured tasks' raw outputs:
    ``regression`` (B, 8) standardised, ``presence`` (B,) logits, ``light`` (B, 5) logits,
    ``segmentation`` (B, 5, H, W) logits. ``predict`` gives physical units and decisions.
    """

    def __init__(self, cfg: NetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or NetConfig()
        self.encoder = Encoder(cfg.channels)
        with torch.no_grad():
            side = self.encoder(torch.zeros(1, 3, cfg.size, cfg.size))[-1].shape[-1]
        flat = cfg.channels[-1] * side * side
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(flat, cfg.features), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict()
        if "regression" in cfg.tasks:
            self.heads["regression"] = nn.Linear(cfg.features, len(REG_LABELS))
        if "presence" in cfg.tasks:
            self.heads["presence"] = nn.Linear(cfg.features, 1)
        if "light" in cfg.tasks:
            self.heads["light"] = nn.Linear(cfg.features, N_LIGHT)
        self.decoder = SegDecoder(cfg.channels, cfg.decoder, N_SEG) if "segmentation" in cfg.tasks else None
        self.lead: GroundLeadHead | None = None
        if cfg.lead_head == "ground":
            self.lead = GroundLeadHead(cfg.decoder[-1], cfg.size, cfg.camera)
        elif cfg.lead_head == "ground-half":
            # The next-to-last decoder stage is at the first encoder stage's resolution. Its row centres
            # sit up to half an input pixel from a uniform half-size grid's; the learned correction absorbs that.
            with torch.no_grad():
                rows = self.encoder(torch.zeros(1, 3, cfg.size, cfg.size))[0].shape[-2]
            self.lead = GroundLeadHead(cfg.decoder[-2], rows, cfg.camera, logits=False)
        # Target standardisation (set from the training set by ``set_target_stats``).
        self.register_buffer("reg_mean", torch.zeros(len(REG_LABELS)))
        self.register_buffer("reg_std", torch.ones(len(REG_LABELS)))

    def set_target_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        """The training set's regression means and spreads (per ``REG_LABELS``)."""
        self.reg_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.reg_std.copy_(torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32))

    def fused(self) -> PerceptionNet:
        """An inference copy with every batch norm folded into the convolution before it (eval mode).

        The same function up to float rounding, with one operator fewer per layer: at batch 1 on
        one core the per-operator overhead is most of the cost.
        """
        import copy

        from torch.nn.utils.fusion import fuse_conv_bn_eval

        net = copy.deepcopy(self).eval()
        for module in net.modules():
            if isinstance(module, nn.Sequential) and len(module) == 3 and isinstance(module[1], nn.BatchNorm2d):
                module[0] = fuse_conv_bn_eval(module[0], module[1])
                module[1] = nn.Identity()
        return net

    @staticmethod
    def prepare(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [0, 1]; float channel-first input passes through."""
        x = torch.as_tensor(frames)
        if x.dtype == torch.uint8:
            return x.permute(0, 3, 1, 2).float().div_(255.0)
        return x.float()

    def forward(self, frames: torch.Tensor | np.ndarray, *, segmentation: bool = True) -> dict[str, torch.Tensor]:
        """Raw outputs of every head (the decoder only when ``segmentation``)."""
        x = self.prepare(frames)
        feats = self.encoder(x)
        z = self.trunk(feats[-1])
        out = {}
        if "regression" in self.heads:
            out["regression"] = self.heads["regression"](z)
        if "presence" in self.heads:
            out["presence"] = self.heads["presence"](z).squeeze(1)
        if "light" in self.heads:
            out["light"] = self.heads["light"](z)
        if self.decoder is not None and (segmentation or self.lead is not None):
            size = x.shape[-2:]
            last = len(self.decoder.ups)
            if self.lead is not None and not self.lead.logits:  # the half-resolution head: the last stage only for segmentation
                mid = self.decoder.features(feats, size, stop=last - 1)
                gap = self.lead(mid)
                if segmentation:
                    out["segmentation"] = self.decoder.head(self.decoder.features(feats, size, start=last - 1, x=mid))
            else:
                dec = self.decoder.features(feats, size)
                logits = self.decoder.head(dec)
                if segmentation:
                    out["segmentation"] = logits
                gap = self.lead(dec, logits) if self.lead is not None else None
            if gap is not None:  # the gap's column comes from the ground head, standardised like the rest
                k = LEAD_COL
                gap = (gap - self.reg_mean[k]) / self.reg_std[k]
                reg = out["regression"]
                out["regression"] = torch.cat([reg[:, :k], gap[:, None], reg[:, k + 1 :]], 1)
        return out

    @torch.inference_mode()
    def predict(self, frames: torch.Tensor | np.ndarray, *, segmentation: bool = True) -> dict[str, np.ndarray]:
        """Predictions in physical units.

        Each regression label by name, ``lead_present`` (0/1) and ``lead_p``, ``light_state``
        (index), ``segmentation`` (B, H, W) class ids.
        """
        was = self.training
        self.eval()
        raw = self(frames, segmentation=segmentation)
        self.train(was)
        out: dict[str, np.ndarray] = {}
        if "regression" in raw:
            reg = (raw["regression"] * self.reg_std + self.reg_mean).numpy()
            out.update({name: reg[:, i] for i, name in enumerate(REG_LABELS)})
        if "presence" in raw:
            p = torch.sigmoid(raw["presence"]).numpy()
            out["lead_p"], out["lead_present"] = p, (p > 0.5).astype(np.float32)
        if "light" in raw:
            out["light_state"] = raw["light"].argmax(1).numpy()
        if "segmentation" in raw:
            out["segmentation"] = raw["segmentation"].argmax(1).to(torch.uint8).numpy()
        return out


# ---------------------------------------------------------------------- targets and loss
@dataclass
class Batch:
    """Targets of a batch, as tensors: ``reg`` (B, 8) raw units, ``present`` (B,), ``light`` (B,) class, ``seg`` (B, H, W)."""

    reg: torch.Tensor
    present: torch.Tensor
    light: torch.Tensor
    seg: torch.Tensor | None = None


def targets(labels: np.ndarray, names: Sequence[str], seg: np.ndarray | None = None) -> Batch:
    """A ``Batch`` from dataset label rows (columns named by ``names``) and segmentation maps."""
    col = {n: i for i, n in enumerate(names)}
    lab = torch.as_tensor(np.asarray(labels, np.float32))
    return Batch(
        reg=lab[:, [col[n] for n in REG_LABELS]],
        present=lab[:, col["lead_present"]],
        light=lab[:, col["light_state"]].long(),
        seg=torch.as_tensor(np.asarray(seg)).long() if seg is not None else None,
    )


@dataclass(frozen=True)
class LossConfig:
    """Task weights.

    Attributes:
        weighting: "fixed" (``weights``) or "uncertainty" (learned per task, Kendall et al. 2018).
        weights: fixed weight of each task's loss.
        seg_class_weights: per-class weights of the segmentation cross-entropy (thin markings
            and vehicles are a small share of the pixels); empty for equal weights.
        reg_beta: where the regression's smooth L1 turns from squared to absolute error, in
            standard deviations of each target (1.0: squared for most errors, close to a mean
            squared error; small: close to the absolute error that the figures report).
    """

    weighting: str = "fixed"
    weights: Mapping[str, float] = field(default_factory=lambda: {"regression": 1.0, "presence": 0.5, "light": 0.5, "segmentation": 1.0})
    seg_class_weights: tuple[float, ...] = (1.0, 1.0, 3.0, 2.0, 1.0)
    reg_beta: float = 1.0

    def __post_init__(self) -> None:
        if self.weighting not in ("fixed", "uncertainty"):
            raise ValueError(f"loss.weighting: must be fixed or uncertainty, got {self.weighting!r}")
        if not self.reg_beta > 0:
            raise ValueError(f"loss.reg_beta: must be positive, got {self.reg_beta}")


class MultiTaskLoss(nn.Module):
    """The weighted sum of the tasks' losses; with ``uncertainty`` weighting it holds the learned log-variances."""

    def __init__(self, tasks: Sequence[str], cfg: LossConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or LossConfig()
        self.tasks = tuple(tasks)
        self.log_vars = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in self.tasks}) if cfg.weighting == "uncertainty" else None
        w = torch.as_tensor(cfg.seg_class_weights, dtype=torch.float32) if cfg.seg_class_weights else None
        self.register_buffer("seg_w", w if w is not None else torch.ones(N_SEG))
        lead = torch.tensor([n in LEAD_ONLY for n in REG_LABELS])
        stop = torch.tensor([n in STOP_ONLY for n in REG_LABELS])
        self.register_buffer("lead_cols", lead)
        self.register_buffer("stop_cols", stop)

    def forward(self, out: Mapping[str, torch.Tensor], y: Batch, net: PerceptionNet) -> tuple[torch.Tensor, dict[str, float]]:
        """(total loss, each task's loss as a float)."""
        parts: dict[str, torch.Tensor] = {}
        if "regression" in out:
            z = (y.reg - net.reg_mean) / net.reg_std
            err = F.smooth_l1_loss(out["regression"], z, reduction="none", beta=self.cfg.reg_beta)
            mask = torch.ones_like(err)
            mask[:, self.lead_cols] = y.present[:, None]
            mask[:, self.stop_cols] = (y.light > 0).float()[:, None]
            parts["regression"] = (err * mask).sum() / mask.sum().clamp_min(1.0)
        if "presence" in out:
            parts["presence"] = F.binary_cross_entropy_with_logits(out["presence"], y.present)
        if "light" in out:
            parts["light"] = F.cross_entropy(out["light"], y.light)
        if "segmentation" in out and y.seg is not None:
            parts["segmentation"] = F.cross_entropy(out["segmentation"], y.seg, weight=self.seg_w)
        total = out[next(iter(out))].new_zeros(())
        for task, loss in parts.items():
            if self.log_vars is not None:
                s = self.log_vars[task]
                total = total + torch.exp(-s) * loss + s
            else:
                total = total + float(self.cfg.weights.get(task, 1.0)) * loss
        return total, {t: float(v.detach()) for t, v in parts.items()}


# ---------------------------------------------------------------------- metrics
#: The acceptance's ranges: lead distance is scored for leads within 50 m, the light within 40 m.
LEAD_EVAL_M = 50.0
LIGHT_EVAL_M = 40.0
#: Gap bands [m] of the lead distance error by range (``lead_distance_mae_m_<lo>_<hi>``).
LEAD_BINS_M = ((0.0, 20.0), (20.0, 35.0), (35.0, 50.0))
SEG_EVAL = (1, 2, 3)  # road, marking, vehicle: the classes of the mIoU


def metrics(pred: Mapping[str, np.ndarray], labels: np.ndarray, names: Sequence[str], seg: np.ndarray | None = None) -> dict[str, float]:
    """Test figures of predictions against labels (NaN where a figure has no frames).

    ``lane_offset_mae_m``, ``heading_mae_deg``, ``curvature_mae_1pm``, ``edge_mae_m`` (both edges),
    ``lead_distance_mae_m`` and ``lead_rel_speed_mae_mps`` (true leads within 50 m),
    ``lead_distance_mae_m_<lo>_<hi>`` (leads in each band of ``LEAD_BINS_M``),
    ``lead_f1`` (leads within 50 m against frames with none within the labels' 60 m; frames whose lead
    is 50-60 m ahead not scored), ``lead_f1_all`` (every frame), ``stop_distance_mae_m`` (lines within 40 m), ``light_accuracy`` (frames
    within 40 m of a line), ``light_accuracy_all``, ``seg_miou`` (road, marking, vehicle) and
    ``iou_<class>``.
    """
    col = {n: i for i, n in enumerate(names)}
    lab = np.asarray(labels, np.float64)

    def mae(name: str, rows: np.ndarray | slice = slice(None)) -> float:
        if name not in pred:
            return math.nan
        p, t = np.asarray(pred[name], np.float64)[rows], lab[rows, col[name]]
        return float(np.mean(np.abs(p - t))) if len(t) else math.nan

    out: dict[str, float] = {
        "lane_offset_mae_m": mae("lane_offset_m"),
        "heading_mae_deg": mae("heading_error_deg"),
        "curvature_mae_1pm": mae("curvature_ahead_1pm"),
        "edge_mae_m": float(np.nanmean([mae("edge_left_m"), mae("edge_right_m")])) if "edge_left_m" in pred else math.nan,
    }
    present = lab[:, col["lead_present"]] > 0.5
    near = present & (lab[:, col["lead_distance_m"]] <= LEAD_EVAL_M)
    out["lead_distance_mae_m"] = mae("lead_distance_m", near)
    out["lead_rel_speed_mae_mps"] = mae("lead_rel_speed_mps", near)
    gap = lab[:, col["lead_distance_m"]]
    for lo, hi in LEAD_BINS_M:  # where the error comes from: it grows with the square of the gap at a fixed pixel error
        out[f"lead_distance_mae_m_{lo:g}_{hi:g}"] = mae("lead_distance_m", near & (gap > lo) & (gap <= hi))
    if "lead_present" in pred:
        p = np.asarray(pred["lead_present"]) > 0.5

        def f1(rows: np.ndarray) -> float:
            tp, fp, fn = np.sum(p & present & rows), np.sum(p & ~present & rows), np.sum(~p & present & rows)
            return float(2 * tp / (2 * tp + fp + fn)) if (2 * tp + fp + fn) else math.nan

        # Scored like the gap, for leads within 50 m: a frame whose lead is 50-60 m ahead (inside the labels'
        # range, a pixel or two from the horizon at 84 px) is neither a miss nor a false alarm.
        out["lead_f1"] = f1(~present | near)
        out["lead_f1_all"] = f1(np.ones(len(lab), bool))
    else:
        out["lead_f1"] = out["lead_f1_all"] = math.nan
    state = lab[:, col["light_state"]].astype(int)
    in_range = (state > 0) & (lab[:, col["stop_distance_m"]] <= LIGHT_EVAL_M)
    out["stop_distance_mae_m"] = mae("stop_distance_m", in_range)
    if "light_state" in pred:
        ls = np.asarray(pred["light_state"])
        out["light_accuracy"] = float(np.mean(ls[in_range] == state[in_range])) if in_range.any() else math.nan
        out["light_accuracy_all"] = float(np.mean(ls == state))
    else:
        out["light_accuracy"] = out["light_accuracy_all"] = math.nan
    if seg is not None and "segmentation" in pred:
        ps, ts = np.asarray(pred["segmentation"]), np.asarray(seg)
        ious = []
        for k, name in enumerate(("background", "road", "marking", "vehicle", "verge")):
            inter, union = np.sum((ps == k) & (ts == k)), np.sum((ps == k) | (ts == k))
            out[f"iou_{name}"] = float(inter / union) if union else math.nan
            if k in SEG_EVAL:
                ious.append(out[f"iou_{name}"])
        out["seg_miou"] = float(np.nanmean(ious))
    return out


# ---------------------------------------------------------------------- training and evaluation loops
@dataclass
class Frames:
    """A set of labelled frames in memory.

    ``rgb`` (N, H, W, 3) uint8, ``labels`` (N, L) with columns named by ``names``, ``seg`` (N, H, W)
    class ids or None, ``group`` (N,) an integer per frame the caller groups by (its episode).
    """

    rgb: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]
    seg: np.ndarray | None = None
    group: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rgb)

    def subset(self, idx: np.ndarray) -> Frames:
        """The frames at ``idx``."""
        return Frames(
            self.rgb[idx],
            self.labels[idx],
            self.names,
            self.seg[idx] if self.seg is not None else None,
            self.group[idx] if self.group is not None else None,
        )


def target_stats(data: Frames) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of each regression target over the frames where it counts (lead figures with a lead, stop distance with a line)."""
    col = {n: i for i, n in enumerate(data.names)}
    lab = data.labels.astype(np.float64)
    mean, std = np.zeros(len(REG_LABELS)), np.ones(len(REG_LABELS))
    for k, name in enumerate(REG_LABELS):
        rows = np.ones(len(lab), bool)
        if name in LEAD_ONLY:
            rows = lab[:, col["lead_present"]] > 0.5
        elif name in STOP_ONLY:
            rows = lab[:, col["light_state"]] > 0
        if rows.any():
            mean[k], std[k] = lab[rows, col[name]].mean(), lab[rows, col[name]].std()
    return mean, std


def train_epoch(
    net: PerceptionNet,
    loss_fn: MultiTaskLoss,
    opt: torch.optim.Optimizer,
    data: Frames,
    batch_size: int,
    rng: np.random.Generator,
    *,
    max_batches: int | None = None,
    batches: int | None = None,
    on_batch=None,
) -> dict[str, float]:
    """One pass over ``data`` in an order drawn from ``rng``; mean losses (``total`` and per task).

    ``batches``: exactly this many batches instead, from as many fresh permutations as they need
    (a fixed step budget on a small label set); ``max_batches``: stop a pass early.
    """
    net.train()
    order = rng.permutation(len(data))
    if batches is not None:
        passes = [order] + [rng.permutation(len(data)) for _ in range(math.ceil(batches * batch_size / len(data)) - 1)]
        order = np.concatenate(passes)[: batches * batch_size]
    sums: dict[str, float] = {}
    n = 0
    use_seg = "segmentation" in net.cfg.tasks and data.seg is not None
    for b, start in enumerate(range(0, len(order), batch_size)):
        if max_batches is not None and b >= max_batches:
            break
        idx = np.sort(order[start : start + batch_size])
        y = targets(data.labels[idx], data.names, data.seg[idx] if use_seg else None)
        out = net(data.rgb[idx], segmentation=use_seg)
        total, parts = loss_fn(out, y, net)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        for k, v in {"total": float(total.detach()), **parts}.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        if on_batch is not None:
            on_batch(len(idx))
    return {k: v / max(n, 1) for k, v in sums.items()}


def predict_all(net: PerceptionNet, data: Frames, batch_size: int = 256, *, segmentation: bool = True) -> dict[str, np.ndarray]:
    """``net.predict`` over all frames, concatenated."""
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, len(data), batch_size):
        parts.append(net.predict(data.rgb[start : start + batch_size], segmentation=segmentation))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def evaluate(net: PerceptionNet, data: Frames, batch_size: int = 256) -> dict[str, float]:
    """``metrics`` of the net on ``data``."""
    seg = "segmentation" in net.cfg.tasks and data.seg is not None
    return metrics(predict_all(net, data, batch_size, segmentation=seg), data.labels, data.names, data.seg if seg else None)


def baseline_metrics(train: Frames, test: Frames) -> dict[str, float]:
    """The trivial baseline's figures on ``test``.

    Every regression target at its training mean, presence and light state at the training
    set's majority, and each pixel at its commonest class in the training set.
    """
    mean, _ = target_stats(train)
    col = {n: i for i, n in enumerate(train.names)}
    n = len(test)
    pred: dict[str, np.ndarray] = {name: np.full(n, mean[k]) for k, name in enumerate(REG_LABELS)}
    pred["lead_present"] = np.full(n, float(train.labels[:, col["lead_present"]].mean() > 0.5))
    pred["light_state"] = np.full(n, int(np.bincount(train.labels[:, col["light_state"]].astype(int), minlength=N_LIGHT).argmax()))
    seg = None
    if train.seg is not None and test.seg is not None:
        counts = np.stack([(train.seg == k).sum(0) for k in range(N_SEG)])
        pred["segmentation"] = np.broadcast_to(counts.argmax(0).astype(np.uint8), test.seg.shape)
        seg = test.seg
    return metrics(pred, test.labels, test.names, seg)


__all__ = [
    "Frames",
    "N_LIGHT",
    "N_SEG",
    "REG_LABELS",
    "TASKS",
    "Batch",
    "baseline_metrics",
    "evaluate",
    "predict_all",
    "target_stats",
    "train_epoch",
    "Encoder",
    "LossConfig",
    "MultiTaskLoss",
    "NetConfig",
    "PerceptionNet",
    "metrics",
    "targets",
]
