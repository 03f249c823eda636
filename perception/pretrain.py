"""Self-supervised pre-training of the perception encoder: masked reconstruction of camera frames.

Square patches of each frame are blanked out (``mask_ratio`` of them, drawn from the run's
generator) and a light decoder must paint them back from the encoder's coarsest feature map; the
loss is the mean squared error over the blanked pixels only (He et al. 2022, "Masked Autoencoders
Are Scalable Vision Learners", in its convolutional form, as ConvNeXt V2's FCMAE and SparK use).

Why masked reconstruction rather than contrastive or temporal objectives, for this suite:

- The tasks are geometric (where the lane edges are, how far the lead is, which pixels are road).
  Contrastive learning trains invariance to crops and colour shifts, and a crop moves the lane,
  which is exactly what the lane-offset head must see; masked reconstruction has to model the
  layout of road, markings and vehicles to fill a hole.
- It learns from every pixel of a frame at a small batch. Contrastive objectives (SimCLR, MoCo)
  need large batches or queues of negatives to work, which a 2-core CPU budget does not give.
- Consecutive frames of a driving log are near duplicates (the car moves a metre between
  frames), which makes temporal-contrastive negatives from the same episode hard to pick well.

The decoder reads only the coarsest map (no skip connections, unlike the segmentation decoder):
a skip from the first stage would let it inpaint from nearby pixels without the encoder's help.
Only the ``Encoder`` is kept: it is the same module as ``PerceptionNet.encoder``, so
``agents.datasets.perception_train.load_encoder`` copies it into a net to fine-tune.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from perception.model import Encoder, NetConfig, _block


class MaskedAutoencoder(nn.Module):
    """``Encoder`` plus a reconstruction decoder from its coarsest map."""

    def __init__(self, cfg: NetConfig, decoder: Sequence[int] = (64, 32, 16, 16)) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.channels)
        ups, c = [], cfg.channels[-1]
        for ch in decoder:
            ups.append(_block(c, ch, 1))
            c = ch
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(c, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructed frames (B, 3, H, W) in [0, 1] from float frames (B, 3, H, W)."""
        size = x.shape[-2:]
        z = self.encoder(x)[-1]
        n = len(self.ups)
        for k, up in enumerate(self.ups):
            # Up to full size in equal steps of scale (the last stage at full resolution).
            h = round(z.shape[-2] * (size[0] / z.shape[-2]) ** (1 / (n - k)))
            w = round(z.shape[-1] * (size[1] / z.shape[-1]) ** (1 / (n - k)))
            z = up(F.interpolate(z, size=(h, w), mode="bilinear", align_corners=False))
        return torch.sigmoid(self.head(z))


def patch_masks(n: int, size: int, patch: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean masks (n, size, size), True where a pixel is blanked: ``ratio`` of the ``patch``-sized squares of each frame."""
    g = -(-size // patch)
    k = max(1, round(ratio * g * g))
    grid = np.zeros((n, g * g), bool)
    picks = np.argsort(rng.random((n, g * g)), axis=1)[:, :k]
    np.put_along_axis(grid, picks, True, axis=1)
    full = grid.reshape(n, g, g).repeat(patch, 1).repeat(patch, 2)
    return full[:, :size, :size]


def masked_batch(rgb: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(blanked input, target, mask) tensors from uint8 frames (B, H, W, 3) and masks (B, H, W)."""
    target = torch.as_tensor(rgb).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.as_tensor(mask)[:, None].float()
    return target * (1.0 - m), target, m


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the blanked pixels."""
    err = ((pred - target) ** 2) * mask
    return err.sum() / (mask.sum() * pred.shape[1]).clamp_min(1.0)


def pretrain_epoch(
    model: MaskedAutoencoder,
    opt: torch.optim.Optimizer,
    rgb: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    *,
    patch: int = 8,
    mask_ratio: float = 0.6,
    on_batch: Callable[[int], None] | None = None,
) -> float:
    """One pass over ``rgb`` (uint8 frames) in an order and with masks drawn from ``rng``; the mean loss."""
    model.train()
    order = rng.permutation(len(rgb))
    total, n = 0.0, 0
    for start in range(0, len(order), batch_size):
        idx = np.sort(order[start : start + batch_size])
        x, y, m = masked_batch(rgb[idx], patch_masks(len(idx), rgb.shape[1], patch, mask_ratio, rng))
        loss = reconstruction_loss(model(x), y, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach())
        n += 1
        if on_batch is not None:
            on_batch(len(idx))
    return total / max(n, 1)


@torch.inference_mode()
def eval_loss(
    model: MaskedAutoencoder, rgb: np.ndarray, seed: int, *, patch: int = 8, mask_ratio: float = 0.6, batch_size: int = 256
) -> float:
    """Reconstruction loss on ``rgb`` with masks from a fixed seed (comparable between epochs and runs)."""
    model.eval()
    rng = np.random.default_rng([seed, 99])
    total, n = 0.0, 0
    for start in range(0, len(rgb), batch_size):
        x, y, m = masked_batch(
            rgb[start : start + batch_size], patch_masks(min(batch_size, len(rgb) - start), rgb.shape[1], patch, mask_ratio, rng)
        )
        total += float(reconstruction_loss(model(x), y, m)) * len(x)
        n += len(x)
    return total / max(n, 1)


__all__ = ["MaskedAutoencoder", "eval_loss", "masked_batch", "patch_masks", "pretrain_epoch", "reconstruction_loss"]
