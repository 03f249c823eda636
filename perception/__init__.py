"""Perception: pure array/tensor transforms (CNN encoders, the perception net, fusion). Imports no other project package.

``perception.load()`` gives the net that ships with the package as a callable from camera frames
to predictions::

    import perception
    net = perception.load()                      # the shipped 84 px net (ONNX Runtime, float32)
    pred = net(frames)                           # uint8 (B, 84, 84, 3) or one (84, 84, 3) frame
    pred["lane_offset_m"], pred["light_state"], pred["segmentation"]
    perception.load(int8=True)                   # the same net quantised to int8
    perception.load(runtime="torch")             # the PyTorch net (gradients, fine-tuning)

The shipped net comes as the trained PyTorch weights (``net84.pt``) and their exports to ONNX
(``net84.onnx`` float32, ``net84.int8.onnx`` int8, each with a ``.heads.onnx`` graph without the
segmentation decoder), written by ``drive-sim perception compress``. ONNX Runtime is the default:
the same function as the PyTorch net to float rounding, at a third of its cost per frame at batch 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The net that ships inside the package (trained by the command in docs/perception.md), and its ONNX exports.
SHIPPED = Path(__file__).resolve().parent / "weights" / "net84.pt"
SHIPPED_ONNX = SHIPPED.with_suffix(".onnx")
SHIPPED_INT8 = SHIPPED.with_name("net84.int8.onnx")


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
        net: the ``PerceptionNet`` (eval mode, batch norms folded into the convolutions) or an
            ``OnnxNet``; both have ``predict`` and ``cfg``.
        meta: what the file says of its training (data, size, labels, epoch, validation figures).
    """

    def __init__(self, net: Any, meta: dict[str, Any]) -> None:
        self.net = net
        self.meta = meta

    @property
    def runtime(self) -> str:
        """The runtime the net runs on: "torch" or "onnx"."""
        return "onnx" if type(self.net).__name__ == "OnnxNet" else "torch"

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


def load(path: str | Path | None = None, *, runtime: str = "auto", int8: bool = False) -> PerceptionModel:
    """A perception net: a run's ``model.pt``, an exported ``.onnx``, or (``path`` None) the shipped one.

    Args:
        path: the net file; None for the shipped net.
        runtime: "torch" (a ``PerceptionNet``), "onnx" (``perception.runtime.OnnxNet``) or "auto":
            ONNX Runtime for an ``.onnx`` file and for the shipped net, PyTorch for a ``.pt``.
        int8: the shipped net's int8 graph (only with ``path`` None).
    """
    if runtime not in ("auto", "torch", "onnx"):
        raise ValueError(f"runtime: must be auto, torch or onnx, got {runtime!r}")
    if path is None:
        if int8 and runtime == "torch":
            raise ValueError("int8: the int8 net runs on ONNX Runtime only (runtime='onnx' or 'auto')")
        p = SHIPPED_INT8 if int8 else (SHIPPED if runtime == "torch" else SHIPPED_ONNX)
    else:
        if int8:
            raise ValueError("int8: only for the shipped net; give the int8 .onnx file as the path instead")
        p = Path(path)
    if p.suffix == ".onnx":
        if runtime == "torch":
            raise ValueError(f"runtime: {p} is an ONNX graph; it runs on ONNX Runtime (runtime='onnx' or 'auto')")
        from perception.runtime import OnnxNet

        net = OnnxNet(p)
        return PerceptionModel(net, dict(net.meta))
    if runtime == "onnx":
        raise ValueError(f"runtime: {p} is a PyTorch net file; export it with drive-sim perception compress to run it on ONNX Runtime")
    from perception.model import NetConfig, PerceptionNet

    payload = read_net_file(p)
    try:
        torch_net = PerceptionNet(NetConfig.from_dict(payload["net"]))
        torch_net.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, KeyError, RuntimeError) as err:
        raise ValueError(f"model: {p} does not describe a perception net this code builds ({str(err).splitlines()[0][:160]})") from None
    return PerceptionModel(torch_net.fused(), dict(payload.get("meta", {})))  # batch norms folded in: the same net, fewer operators


__all__ = ["SHIPPED", "SHIPPED_INT8", "SHIPPED_ONNX", "PerceptionModel", "load", "read_net_file"]
