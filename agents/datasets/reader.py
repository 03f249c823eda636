"""Read a collected dataset into memory: the frames of some splits at one size, checked against the manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.datasets.collect import read_manifest
from drive_sim.files import read_npz
from perception.model import REG_LABELS, Frames


def _check_labels(manifest: dict[str, Any], folder: Path) -> tuple[str, ...]:
    names = tuple(manifest.get("labels", {}).get("scalars", ()))
    missing = [n for n in (*REG_LABELS, "lead_present", "light_state") if n not in names]
    if missing:
        raise ValueError(f"data: {folder}/manifest.json has no label {', '.join(missing)} (labels: {', '.join(names) or 'none'})")
    return names


def load_frames(
    folder: str | Path,
    splits: Sequence[str],
    size: int,
    *,
    verify: bool = False,
    episodes: Sequence[int] | None = None,
) -> tuple[Frames, list[dict[str, Any]]]:
    """The frames of ``splits`` at ``size`` px and the manifest entries of their episodes.

    ``frames.group`` is each frame's position in the returned entries. ``verify`` checks every
    shard's sha256 against the manifest (a copied or edited dataset); ``episodes`` keeps only those
    episode indices.

    Raises:
        ValueError: one line naming the folder or shard: no dataset, an unfinished one, a size it
            was not collected at, a label missing, a shard missing, damaged or of other content.
    """
    folder = Path(folder)
    m = read_manifest(folder)
    sizes = m["config"].get("sizes", [])
    if size not in sizes:
        raise ValueError(
            f"data: {folder} was collected at sizes {sizes}, not {size}; collect it with --sizes {size} or train at one of them"
        )
    names = _check_labels(m, folder)
    entries = [e for e in m["episodes"] if e["split"] in splits and (episodes is None or e["index"] in episodes)]
    if not entries:
        raise ValueError(f"data: {folder} has no episodes in split(s) {', '.join(splits)}")
    rgb, seg, labels, owner = [], [], [], []
    for k, e in enumerate(entries):
        path = folder / e["file"]
        if verify and hashlib.sha256(path.read_bytes()).hexdigest() != e["sha256"]:
            raise ValueError(f"data: {path} differs from the manifest's sha256 (edited or damaged); collect it again")
        d = read_npz(path, "data", [f"rgb{size}", f"seg{size}", "labels"])
        n = len(d["labels"])
        if n != e["frames"] or d["labels"].shape[1:] != (len(names),) or d[f"rgb{size}"].shape != (n, size, size, 3):
            raise ValueError(f"data: {path} does not hold the {e['frames']} frames of {size} px and {len(names)} labels the manifest lists")
        rgb.append(d[f"rgb{size}"])
        seg.append(d[f"seg{size}"])
        labels.append(d["labels"])
        owner.append(np.full(n, k, np.int32))
    return Frames(np.concatenate(rgb), np.concatenate(labels), names, np.concatenate(seg), np.concatenate(owner)), entries


__all__ = ["load_frames"]
