"""Training runs of the perception net (``drive-sim perception train``): a run folder like an RL run's.

::

    runs/perception-s0/
        config.yaml          what was asked (data, net, loss, optimiser, seed)
        status.json          running / interrupted / finished / failed, epochs done, checkpoint
        versions.json        Python and library versions
        tb/                  TensorBoard: losses per step, validation metrics per epoch
        epochs.csv           one row per epoch: losses, validation metrics, seconds
        checkpoints/last.pt  net, optimiser, loss weights, epoch (Ctrl-C writes it too)
        model.pt             the net of the best validation epoch (``perception.load`` reads it)
        test.json            the final test figures beside the trivial baseline

Everything is seeded from ``seed``: the initial weights (``torch.manual_seed``) and each epoch's
order (a generator from ``(seed, epoch)``), so the same data and seed give the same losses, and a
resumed run continues with the order it would have had. Checkpoints hold tensors and plain data
only and load with ``torch.load(weights_only=True)``.
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
from drive_sim.files import append_csv, atomic_write, read_yaml, write_json, write_yaml
from perception.names import (  # torch-free: building the command's parser must not import torch
    GROUND_LEAD_HEADS,
    GROUND_LEAD_TASKS,
    LEAD_HEADS,
    TASKS,
)

#: Validation figures that pick the best epoch: lower is better, each scaled by a typical size.
SELECT = {"lane_offset_mae_m": 0.1, "heading_mae_deg": 1.0, "lead_distance_mae_m": 1.0, "seg_miou": -0.1, "light_accuracy": -0.05}


@dataclass(frozen=True)
class PerceptionTrainConfig:
    """A perception training run.

    Attributes:
        data: dataset folder (``drive-sim collect``).
        size: frame size to train at (one the dataset was collected at).
        tasks: heads to train (``perception.model.TASKS``); fewer for a single-task net.
        weighting: "fixed" or "uncertainty" loss weights.
        reg_beta: the regression loss's smooth-L1 turning point in standard deviations
            (``perception.model.LossConfig``; the shipped net's 0.1 is close to the absolute error
            the figures report, 1.0 trained the net before it).
        lead_head: "fc", "ground", "ground-half" (``perception.model.NetConfig``) or "auto":
            ground-half, the shipped net's, where the net has both the regression and segmentation
            heads it needs, else fc.
        epochs: passes over the training frames.
        batch_size, lr, weight_decay: AdamW settings (cosine learning-rate decay over the epochs).
        label_fraction: share of the training episodes whose labels are used (label efficiency).
        encoder: a checkpoint whose encoder weights start the net (pre-training); "" for none.
        steps: a fixed budget of optimiser steps, split evenly over the epochs (each epoch then
            draws its batches from as many fresh passes over the frames as it needs), so that runs
            on 1 % and 100 % of the labels train for the same number of steps; 0: ``epochs``
            full passes.
        seed: the run's seed.
        out_dir, name: the run folder is ``out_dir/name`` (``-1``, ``-2`` ... if taken).
        threads: torch threads.
    """

    data: str = "data"
    size: int = 84
    tasks: tuple[str, ...] = ("regression", "presence", "light", "segmentation")
    weighting: str = "fixed"
    reg_beta: float = 0.1
    lead_head: str = "auto"
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    label_fraction: float = 1.0
    encoder: str = ""
    steps: int = 0
    seed: int = 0
    out_dir: str = "runs"
    name: str = ""
    threads: int = 2

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in TASKS]
        require(bool(self.tasks) and not bad, "tasks", f"unknown {bad}; allowed: {', '.join(TASKS)}")
        require(self.weighting in ("fixed", "uncertainty"), "weighting", f"must be fixed or uncertainty, got {self.weighting!r}")
        require(self.reg_beta > 0, "reg_beta", f"must be positive, got {self.reg_beta}")
        require(self.lead_head in ("auto", *LEAD_HEADS), "lead_head", f"must be auto or {' or '.join(LEAD_HEADS)}, got {self.lead_head!r}")
        require(
            self.lead_head not in GROUND_LEAD_HEADS or set(GROUND_LEAD_TASKS) <= set(self.tasks),
            "lead_head",
            "ground reads the segmentation decoder into the regression output; train both tasks",
        )
        require(self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}")
        require(1 <= self.batch_size <= 4096, "batch_size", f"must be in [1, 4096], got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(0.0 < self.label_fraction <= 1.0, "label_fraction", f"must be in (0, 1], got {self.label_fraction}")
        require(self.threads >= 1, "threads", f"must be at least 1, got {self.threads}")
        require(self.steps == 0 or self.steps >= self.epochs, "steps", f"must be 0 or at least epochs ({self.epochs}), got {self.steps}")

    @property
    def net_lead_head(self) -> str:
        """The lead head the net gets ("auto" resolved)."""
        if self.lead_head != "auto":
            return self.lead_head
        return "ground-half" if set(GROUND_LEAD_TASKS) <= set(self.tasks) else "fc"

    @property
    def run_name(self) -> str:
        """The run folder's name."""
        return self.name or f"perception-s{self.seed}"

    def as_dict(self) -> dict[str, Any]:
        """YAML-ready."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> PerceptionTrainConfig:
        """From ``as_dict`` (a run's config.yaml); unknown keys named."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


#: What picks the best epoch of a net none of whose heads ``SELECT`` scores (a presence-only net).
SELECT_FALLBACK = {"lead_f1": -0.05}


def _score(m: dict[str, float]) -> float:
    """Lower is better: the validation figures of ``SELECT`` summed on their scales (missing ones skipped)."""
    for table in (SELECT, SELECT_FALLBACK):
        terms = [m[k] / s for k, s in table.items() if k in m and not math.isnan(m[k])]
        if terms:
            return float(sum(terms))
    return 0.0


def train_fraction(entries: list[dict[str, Any]], fraction: float, seed: int) -> list[int]:
    """Indices (into ``entries``) of the training episodes whose labels are used: a seeded share, at least one."""
    if fraction >= 1.0:
        return list(range(len(entries)))
    rng = np.random.default_rng([seed, 17])
    k = max(1, round(fraction * len(entries)))
    return sorted(rng.permutation(len(entries))[:k].tolist())


def save_model(path: Path, net: Any, meta: dict[str, Any]) -> None:
    """A net file: config, weights and metadata, loadable with ``torch.load(weights_only=True)`` (``perception.load``)."""
    import torch

    payload = {"format": 1, "kind": "drive-sim perception net", "net": net.cfg.as_dict(), "state_dict": net.state_dict(), "meta": meta}
    atomic_write(path, lambda p: torch.save(payload, p))


def train_perception(cfg: PerceptionTrainConfig, *, resume: str | Path | None = None, progress: bool = True) -> Path:
    """Train (or continue, with ``resume`` = a run folder) and return the run folder."""
    import torch
    from tqdm import tqdm

    from agents.datasets.reader import load_frames
    from agents.training.runs import new_run_dir, read_status, set_status, status_extras, versions
    from perception.model import LossConfig, MultiTaskLoss, NetConfig, PerceptionNet, evaluate, target_stats, train_epoch

    torch.set_num_threads(cfg.threads)
    if resume is not None:
        run = Path(resume)
        status = read_status(run)
        if not status:
            raise ValueError(f"resume: {run} is not a perception run folder (no status.json)")
        if status["state"] == "finished":
            raise ValueError(f"resume: {run} has finished all {status['steps']} epochs")
        raw = read_yaml(run / "config.yaml", "config")
        if not isinstance(raw, dict):
            raise ValueError(f"resume: {run}/config.yaml is not a mapping of settings")
        cfg = PerceptionTrainConfig.from_dict(raw, f"{run}/config.yaml")
    # Data first: a bad dataset is refused before a run folder exists.
    train, train_entries = load_frames(cfg.data, ("train",), cfg.size)
    all_train = train  # the baseline of the final test is the whole training split's
    val, _ = load_frames(cfg.data, ("val",), cfg.size)
    keep = train_fraction(train_entries, cfg.label_fraction, cfg.seed)
    if len(keep) < len(train_entries):
        assert train.group is not None
        train = train.subset(np.flatnonzero(np.isin(train.group, keep)))
    torch.manual_seed(cfg.seed)
    net = PerceptionNet(NetConfig(size=cfg.size, tasks=cfg.tasks, lead_head=cfg.net_lead_head))
    net.set_target_stats(*target_stats(train))
    loss_fn = MultiTaskLoss(cfg.tasks, LossConfig(weighting=cfg.weighting, reg_beta=cfg.reg_beta))
    params = [*net.parameters(), *loss_fn.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    start, best = 0, math.inf
    if resume is None:
        if cfg.encoder:
            load_encoder(net, cfg.encoder)
        run = new_run_dir(cfg.out_dir, cfg.run_name)
        write_yaml(run / "config.yaml", cfg.as_dict())
        write_json(run / "versions.json", versions())
        extras: dict[str, Any] = {}
    else:
        ck = load_checkpoint(run / "checkpoints" / "last.pt")
        net.load_state_dict(ck["net"])
        loss_fn.load_state_dict(ck["loss"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start, best = int(ck["epoch"]), float(ck["best"])
        extras = status_extras(status)
        extras["resumes"] = int(extras.get("resumes", 0)) + 1
    from torch.utils.tensorboard import SummaryWriter

    tb = SummaryWriter(str(run / "tb"))
    steps_per_epoch = math.ceil(cfg.steps / cfg.epochs) if cfg.steps else math.ceil(len(train) / cfg.batch_size)
    meta = {"data": str(cfg.data), "size": cfg.size, "labels": list(train.names), "train_frames": len(train), "seed": cfg.seed}
    meta |= {"weighting": cfg.weighting, "reg_beta": cfg.reg_beta}  # the loss it was trained on: distillation uses the same
    # What it is doing, with or without the progress bar.
    print(f"perception train: run {run}, {len(train):,} training frames, {len(val):,} validation, epochs {start + 1}-{cfg.epochs}")
    show = ("lane_offset_mae_m", "heading_mae_deg", "lead_distance_mae_m", "lead_f1", "light_accuracy", "seg_miou")
    epoch = start
    t_run = time.perf_counter()
    try:
        set_status(run, "running", start, "checkpoints/last.pt" if start else None, **extras)
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            rng = np.random.default_rng([cfg.seed, epoch])
            budget = steps_per_epoch if cfg.steps else None
            total = budget * cfg.batch_size if budget else len(train)
            with tqdm(total=total, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="frame", disable=not progress, leave=False) as bar:
                losses = train_epoch(net, loss_fn, opt, train, cfg.batch_size, rng, batches=budget, on_batch=bar.update)
            sched.step()
            val_m = evaluate(net, val)
            score = _score(val_m)
            row = {"epoch": epoch + 1, **{f"loss_{k}": round(v, 5) for k, v in losses.items()}}
            row.update({f"val_{k}": round(v, 5) for k, v in val_m.items()})
            row["seconds"] = round(time.perf_counter() - t0, 1)
            append_csv(run / "epochs.csv", [row])
            for k, v in losses.items():
                tb.add_scalar(f"loss/{k}", v, (epoch + 1) * steps_per_epoch)
            for k, v in val_m.items():
                if not math.isnan(v):
                    tb.add_scalar(f"val/{k}", v, epoch + 1)
            tb.flush()
            if score < best:
                best = score
                save_model(run / "model.pt", net, {**meta, "epoch": epoch + 1, "val": val_m})
            _save_checkpoint(run, net, loss_fn, opt, sched, epoch + 1, best)
            set_status(run, "running", epoch + 1, "checkpoints/last.pt", **extras)
            print(f"epoch {epoch + 1}: loss {losses['total']:.4f}  " + "  ".join(f"{k} {val_m[k]:.3f}" for k in show if k in val_m))
        extras["train_wall_s"] = round(float(extras.get("train_wall_s", 0.0)) + time.perf_counter() - t_run, 1)
        test = test_report(run, cfg, all_train)
        set_status(run, "finished", cfg.epochs, "checkpoints/last.pt", **extras)
        if "test" in test:
            t = test["test"]["net"]
            print("test: " + "  ".join(f"{k} {t[k]:.3f}" for k in show if k in t))
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


def _save_checkpoint(run: Path, net: Any, loss_fn: Any, opt: Any, sched: Any, epoch: int, best: float) -> None:
    import torch

    state = {
        "net": net.state_dict(),
        "loss": loss_fn.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "epoch": epoch,
        "best": best,
    }
    atomic_write(run / "checkpoints" / "last.pt", lambda p: torch.save(state, p))


def load_checkpoint(path: Path, keys: tuple[str, ...] = ("net", "loss", "opt", "sched", "epoch", "best")) -> dict[str, Any]:
    """A training checkpoint holding ``keys``, read with ``weights_only=True``; one line naming the file when it cannot be."""
    import pickle

    import torch

    if not path.is_file():
        raise ValueError(f"resume: {path} does not exist (the run has no checkpoint to continue from)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(f"resume: {path} is not a readable checkpoint ({str(err).splitlines()[0][:160]})") from None
    if not isinstance(ck, dict) or not set(keys) <= set(ck):
        raise ValueError(f"resume: {path} is not a checkpoint of this kind of run (needs {', '.join(keys)})")
    return ck


def load_encoder(net: Any, path: str | Path) -> None:
    """Copy the encoder weights of a net file or pre-training checkpoint into ``net``."""
    from perception import read_net_file
    from perception.encoders import copy_encoder

    copy_encoder(net.encoder, read_net_file(Path(path))["state_dict"], "encoder", str(path), "this net")


def test_report(run: Path, cfg: PerceptionTrainConfig, train: Any = None) -> dict[str, Any]:
    """Score the run's model.pt on the test and holdout splits beside the trivial baseline; write test.json.

    ``train``: the dataset's training frames when the caller has them in memory (else read again).
    """
    from agents.datasets.collect import read_manifest
    from agents.datasets.reader import load_frames
    from perception import load
    from perception.model import baseline_metrics, evaluate

    model = load(run / "model.pt")
    if train is None:
        train, _ = load_frames(cfg.data, ("train",), cfg.size)
    present = {e["split"] for e in read_manifest(cfg.data)["episodes"]}
    out: dict[str, Any] = {}
    for split in ("test", "holdout"):
        if split not in present:
            continue  # e.g. a dataset without a held-out scenario
        data, _ = load_frames(cfg.data, (split,), cfg.size)
        out[split] = {"net": evaluate(model.net, data), "baseline": baseline_metrics(train, data), "frames": len(data)}
    write_json(run / "test.json", out)
    return out


__all__ = ["PerceptionTrainConfig", "load_checkpoint", "load_encoder", "save_model", "test_report", "train_perception"]
