"""Self-supervised pre-training runs (``drive-sim perception pretrain``): the encoder learns from unlabelled frames.

::

    runs/pretrain-s0/
        config.yaml          what was asked (data, size, mask, optimiser, seed)
        status.json          running / interrupted / finished / failed, epochs done
        versions.json        Python and library versions
        tb/                  TensorBoard: training and validation reconstruction loss
        epochs.csv           one row per epoch
        checkpoints/last.pt  model, optimiser, epoch (Ctrl-C writes it too; --resume continues)
        encoder.pt           the encoder after the last epoch (``perception train --encoder`` reads it)
        reconstructions.png  validation frames: masked input, reconstruction, original

Only the frames are read (no labels): the training split's, which is also where the label
fractions of ``perception train --label-fraction`` are drawn from, as in semi-supervised practice.
The method and why it was chosen: ``perception.pretrain``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drive_sim.config import ConfigError, require
from drive_sim.files import append_csv, atomic_write, read_yaml, write_image, write_json, write_yaml


@dataclass(frozen=True)
class PretrainConfig:
    """A pre-training run.

    Attributes:
        data: dataset folder (``drive-sim collect``); its training split's frames are used.
        size: frame size (one the dataset was collected at).
        epochs, batch_size, lr, weight_decay: AdamW with cosine decay over the epochs.
        patch, mask_ratio: blanked squares' side [px] and their share of each frame.
        seed, out_dir, name, threads: as for ``perception train``.
    """

    data: str = "data"
    size: int = 84
    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patch: int = 8
    mask_ratio: float = 0.6
    seed: int = 0
    out_dir: str = "runs"
    name: str = ""
    threads: int = 2

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}")
        require(1 <= self.batch_size <= 4096, "batch_size", f"must be in [1, 4096], got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(1 <= self.patch <= self.size, "patch", f"must be in [1, size {self.size}], got {self.patch}")
        require(0.0 < self.mask_ratio < 1.0, "mask_ratio", f"must be in (0, 1), got {self.mask_ratio}")

    @property
    def run_name(self) -> str:
        """The run folder's name."""
        return self.name or f"pretrain-s{self.seed}"

    def as_dict(self) -> dict[str, Any]:
        """YAML-ready."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> PretrainConfig:
        """From ``as_dict``; unknown keys named."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        return cls(**data)


def _picture(model: Any, rgb: np.ndarray, cfg: PretrainConfig) -> np.ndarray:
    """Rows of (masked input | reconstruction | original) for a few frames, enlarged 2x."""
    import cv2
    import torch

    from perception.pretrain import masked_batch, patch_masks

    mask = patch_masks(len(rgb), rgb.shape[1], cfg.patch, cfg.mask_ratio, np.random.default_rng([cfg.seed, 5]))
    x, _, _ = masked_batch(rgb, mask)
    model.eval()
    with torch.inference_mode():
        rec = (model(x).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    blank = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    rows = [np.concatenate([blank[i], rec[i], rgb[i]], axis=1) for i in range(len(rgb))]
    img = np.concatenate(rows, axis=0)
    return cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_NEAREST)


def pretrain(cfg: PretrainConfig, *, resume: str | Path | None = None, progress: bool = True) -> Path:
    """Pre-train (or continue, with ``resume`` = a run folder) and return the run folder."""
    import torch
    from tqdm import tqdm

    from agents.datasets.reader import load_frames
    from agents.training.runs import new_run_dir, read_status, set_status, status_extras, versions
    from perception.model import NetConfig
    from perception.pretrain import MaskedAutoencoder, eval_loss, pretrain_epoch

    torch.set_num_threads(cfg.threads)
    if resume is not None:
        run = Path(resume)
        status = read_status(run)
        if not status:
            raise ValueError(f"resume: {run} is not a pre-training run folder (no status.json)")
        if status["state"] == "finished":
            raise ValueError(f"resume: {run} has finished all {status['steps']} epochs")
        raw = read_yaml(run / "config.yaml", "config")
        if not isinstance(raw, dict):
            raise ValueError(f"resume: {run}/config.yaml is not a mapping of settings")
        cfg = PretrainConfig.from_dict(raw, f"{run}/config.yaml")
    train, _ = load_frames(cfg.data, ("train",), cfg.size)
    val, _ = load_frames(cfg.data, ("val",), cfg.size)
    rgb, val_rgb = train.rgb, val.rgb[:: max(1, len(val) // 2048)]  # labels are never read
    torch.manual_seed(cfg.seed)
    model = MaskedAutoencoder(NetConfig(size=cfg.size))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    start = 0
    if resume is None:
        run = new_run_dir(cfg.out_dir, cfg.run_name)
        write_yaml(run / "config.yaml", cfg.as_dict())
        write_json(run / "versions.json", versions())
        extras: dict[str, Any] = {}
    else:
        from agents.datasets.perception_train import load_checkpoint

        ck = load_checkpoint(run / "checkpoints" / "last.pt", keys=("model", "opt", "sched", "epoch"))
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start = int(ck["epoch"])
        extras = status_extras(status)
        extras["resumes"] = int(extras.get("resumes", 0)) + 1
    from torch.utils.tensorboard import SummaryWriter

    tb = SummaryWriter(str(run / "tb"))
    print(f"perception pretrain: run {run}, {len(rgb):,} unlabelled frames, epochs {start + 1}-{cfg.epochs}")
    epoch, t_run = start, time.perf_counter()
    try:
        set_status(run, "running", start, "checkpoints/last.pt" if start else None, **extras)
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            rng = np.random.default_rng([cfg.seed, epoch])
            with tqdm(total=len(rgb), desc=f"pretrain {epoch + 1}/{cfg.epochs}", unit="frame", disable=not progress, leave=False) as bar:
                loss = pretrain_epoch(model, opt, rgb, cfg.batch_size, rng, patch=cfg.patch, mask_ratio=cfg.mask_ratio, on_batch=bar.update)
            sched.step()
            v = eval_loss(model, val_rgb, cfg.seed, patch=cfg.patch, mask_ratio=cfg.mask_ratio)
            append_csv(
                run / "epochs.csv",
                [{"epoch": epoch + 1, "loss": round(loss, 6), "val_loss": round(v, 6), "seconds": round(time.perf_counter() - t0, 1)}],
            )
            tb.add_scalar("loss/train", loss, epoch + 1)
            tb.add_scalar("loss/val", v, epoch + 1)
            tb.flush()
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "epoch": epoch + 1}
            atomic_write(run / "checkpoints" / "last.pt", lambda p, s=state: torch.save(s, p))
            set_status(run, "running", epoch + 1, "checkpoints/last.pt", **extras)
            print(f"epoch {epoch + 1}: reconstruction loss {loss:.5f}, validation {v:.5f}")
        extras["train_wall_s"] = round(float(extras.get("train_wall_s", 0.0)) + time.perf_counter() - t_run, 1)
        meta = {"data": str(cfg.data), "size": cfg.size, "frames": len(rgb), "epochs": cfg.epochs, "method": "masked reconstruction"}
        payload = {
            "format": 1,
            "kind": "drive-sim perception pre-training",
            "net": model.cfg.as_dict(),
            "state_dict": model.state_dict(),
            "meta": meta,
        }
        atomic_write(run / "encoder.pt", lambda p: torch.save(payload, p))
        write_image(run / "reconstructions.png", _picture(model, val.rgb[np.linspace(0, len(val) - 1, 6).astype(int)], cfg))
        set_status(run, "finished", cfg.epochs, "checkpoints/last.pt", **extras)
    except KeyboardInterrupt:
        extras["train_wall_s"] = round(float(extras.get("train_wall_s", 0.0)) + time.perf_counter() - t_run, 1)
        set_status(run, "interrupted", epoch, "checkpoints/last.pt" if epoch else None, **extras)
        tb.close()
        raise
    except Exception as err:
        set_status(
            run,
            "failed",
            epoch,
            "checkpoints/last.pt" if epoch else None,
            reason=str(err).splitlines()[0] if str(err) else type(err).__name__,
        )
        tb.close()
        raise
    tb.close()
    return run


def final_loss(run: Path) -> float:
    """The run's last validation reconstruction loss (NaN if none)."""
    import csv

    path = run / "epochs.csv"
    if not path.is_file():
        return math.nan
    rows = list(csv.DictReader(path.open()))
    return float(rows[-1]["val_loss"]) if rows else math.nan


__all__ = ["PretrainConfig", "final_loss", "pretrain"]
