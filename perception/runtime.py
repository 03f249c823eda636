"""The perception net on ONNX Runtime: the shipped net's deployment form, float32 or int8.

An exported net is two ONNX files (``perception.compress.export_onnx`` writes both): the full
graph (driving heads and the segmentation decoder) and ``<stem>.heads.onnx`` without the decoder,
which is what one env step needs. Their outputs are already in physical units (``reg`` per
``REG_LABELS``, ``lead_p``, ``light_state``, ``segmentation`` class ids), and the net's config and
training metadata ride in the model's metadata as JSON, so an ``.onnx`` file describes itself. An
ONNX file is a protobuf of tensors and operators: loading one runs no Python code.

Why ONNX Runtime and not PyTorch for inference: at batch 1 this net is about twenty small
operators, and PyTorch's eager per-operator overhead is most of its cost (1.3-1.9 ms per frame
on one core, against about 0.4 ms for the same float32 graph in ONNX Runtime); ONNX Runtime is
also the maintained int8 path (static QDQ quantisation), where eager ``torch.ao.quantization``
is deprecated. See docs/perception.md, "Compression".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from perception.model import REG_LABELS, NetConfig


def heads_path(path: Path) -> Path:
    """The driving-heads-only graph that goes with a full graph (``net.onnx`` -> ``net.heads.onnx``)."""
    return path.with_name(path.name.removesuffix(".onnx") + ".heads.onnx")


def session(path: Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session on ``path`` with ``threads`` intra-op threads (one clear line if it is not an ONNX file)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ValueError(f"model: {path} is not a readable ONNX perception net ({str(err).splitlines()[0][:160]})") from None


class OnnxNet:
    """A ``PerceptionNet`` look-alike for inference: ``predict`` gives the same keys, from ONNX Runtime.

    Attributes:
        cfg: the net's ``NetConfig`` (from the file's metadata).
        meta: the training metadata the file carries.
        path: the full graph's file.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"model: {self.path} does not exist")
        hp = heads_path(self.path)
        if not hp.is_file():
            raise ValueError(f"model: {hp} is missing (an exported net is {self.path.name} and {hp.name}, side by side)")
        self.full = session(self.path, threads)
        self.heads = session(hp, threads)
        props = self.full.get_modelmeta().custom_metadata_map
        if "drive_sim_net" not in props:
            raise ValueError(f"model: {self.path} is an ONNX file but not a drive-sim perception net (no drive_sim_net metadata)")
        self.cfg = NetConfig.from_dict(json.loads(props["drive_sim_net"]))
        self.meta: dict[str, Any] = json.loads(props.get("drive_sim_meta", "{}"))

    def eval(self) -> OnnxNet:
        """No-op (the graph is inference only); here so code written for ``PerceptionNet`` runs unchanged."""
        return self

    def predict(self, frames: np.ndarray, *, segmentation: bool = True) -> dict[str, np.ndarray]:
        """Predictions in physical units, keyed as ``PerceptionNet.predict``'s."""
        x = np.ascontiguousarray(frames, dtype=np.uint8)
        sess = self.full if segmentation else self.heads
        outs = sess.run(None, {"frames": x})
        reg, lead_p, light = outs[0], outs[1], outs[2]
        out: dict[str, np.ndarray] = {name: reg[:, i] for i, name in enumerate(REG_LABELS)}
        out["lead_p"], out["lead_present"] = lead_p, (lead_p > 0.5).astype(np.float32)
        out["light_state"] = light
        if segmentation:
            out["segmentation"] = outs[3].astype(np.uint8)
        return out


__all__ = ["OnnxNet", "heads_path", "session"]
