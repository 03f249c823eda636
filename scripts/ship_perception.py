"""Put a trained perception net and its ONNX exports into the package (perception/weights/).

    python scripts/ship_perception.py --run runs/perception-s0 --compress runs/compress

copies ``RUN/model.pt`` to ``net84.pt``, ``COMPRESS/float32.onnx`` (and ``.heads.onnx``) to
``net84.onnx`` and ``COMPRESS/int8.onnx`` to ``net84.int8.onnx``, after checking that the exports
were made from that model (the same config and training metadata) and that the float32 graph
computes what the PyTorch net does on the run's own test frames. Each file is written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import perception
from drive_sim.files import copy_file


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="perception run folder (its model.pt ships)")
    ap.add_argument("--compress", required=True, help="drive-sim perception compress output folder made from that model.pt")
    args = ap.parse_args(argv)
    run, comp = Path(args.run), Path(args.compress)
    try:
        torch_model = perception.load(run / "model.pt", runtime="torch")
        f32 = perception.load(comp / "float32.onnx")
        perception.load(comp / "int8.onnx")
    except ValueError as err:
        print(f"ship_perception: {err}", file=sys.stderr)
        return 2
    want = {k: v for k, v in torch_model.meta.items()}
    got = {k: v for k, v in f32.meta.items() if k != "variant"}
    if json.dumps(want, sort_keys=True, default=float) != json.dumps(got, sort_keys=True, default=float):
        print(f"ship_perception: {comp}/float32.onnx was not exported from {run}/model.pt (training metadata differ)", file=sys.stderr)
        return 2
    frames = np.random.default_rng(0).integers(0, 255, (8, torch_model.size, torch_model.size, 3), dtype=np.uint8)
    a, b = torch_model(frames), f32(frames)
    worst = max(float(np.max(np.abs(np.asarray(a[k], float) - np.asarray(b[k], float)))) for k in a if k != "segmentation")
    if worst > 1e-3:
        print(f"ship_perception: the float32 graph differs from the PyTorch net by {worst:.2g}; re-export it", file=sys.stderr)
        return 2
    dst = perception.SHIPPED.parent
    copy_file(run / "model.pt", perception.SHIPPED)
    for src, target in ((comp / "float32.onnx", perception.SHIPPED_ONNX), (comp / "int8.onnx", perception.SHIPPED_INT8)):
        from perception.runtime import heads_path

        copy_file(src, target)
        copy_file(heads_path(src), heads_path(target))
    print(f"shipped into {dst}: " + ", ".join(sorted(p.name for p in dst.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
