"""Perception: pure array/tensor transforms (CNN encoders, the perception net, fusion). Imports no other project package.

``perception.load()`` gives the net that ships with the package as a callable from camera frames
to predictions::

    import perception
    net = perception.load()                      # the shipped 84 px net
    pred = net(frames)                           # uint8 (B, 84, 84, 3) or one (84, 84, 3) frame
    pred["lane_offset_m"], pred["light_state"], pred["segmentation"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The net that ships inside the package (trained by the command in docs/perception.md).
SHIPPED = Path(__file__).resolve().parent / "weights" / "net84.pt"


def read_net_file(path: Path) -> dict[str, Any]:
    """A net file's payload, read with ``torch.load(weights_only=True)`` (no code runs).

    Raises:
        ValueError: one line naming the file: missing, not a torch file, holding a pickled
            object other than tensors and plain data, or not a drive-sim perception net.
    """
    import pickle

    import torch

    if not path.is_file():
        raise ValueError(f"model: {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"model: {path} holds pickled objects other than weights; refused ({str(err).splitlines()[0][:120]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(f"model: {path} is not a readable torch file ({str(err).splitlines()[0][:160]})") from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise ValueError(f"model: {path} is not a drive-sim perception net (no state_dict)")
    return payload


class PerceptionModel:
    """A loaded perception net: call it on camera frames for predictions (``PerceptionNet.predict``).

    Attributes:
        net: the ``PerceptionNet``, in eval mode with its batch norms folded into the convolutions.
        meta: what the file says of its training (data, size, labels, epoch, validation figures).
    """

    def __init__(self, net: Any, meta: dict[str, Any]) -> None:
        self.net = net
        self.meta = meta

    @property
    def size(self) -> int:
        """Input frame size [px]."""
        return int(self.net.cfg.size)

    def __call__(self, frames: Any, *, segmentation: bool = True) -> dict[str, Any]:
        """Predictions for uint8 frames (B, H, W, 3), or one frame (H, W, 3) (then each value has a batch of one)."""
        import numpy as np

        x = np.asarray(frames)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != (self.size, self.size, 3) or x.dtype != np.uint8:
            raise ValueError(f"frames: expected uint8 (B, {self.size}, {self.size}, 3), got {x.dtype} {x.shape}")
        return self.net.predict(x, segmentation=segmentation)


def load(path: str | Path | None = None) -> PerceptionModel:
    """The perception net in ``path`` (a ``model.pt`` of a perception run), or the shipped one."""
    from perception.model import NetConfig, PerceptionNet

    p = Path(path) if path is not None else SHIPPED
    payload = read_net_file(p)
    try:
        net = PerceptionNet(NetConfig.from_dict(payload["net"]))
        net.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise ValueError(f"model: {p} does not describe a perception net this code builds ({str(err).splitlines()[0][:160]})") from None
    return PerceptionModel(net.fused(), dict(payload.get("meta", {})))  # batch norms folded in: the same net, fewer operators


__all__ = ["SHIPPED", "PerceptionModel", "load", "read_net_file"]
