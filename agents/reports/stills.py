"""The README's pictures: a chase-camera still beside the agent's 84x84 camera view of each registered scenario."""

from __future__ import annotations

from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np

import envs
from drive_sim.files import write_image
from drive_sim.render import ChaseViewConfig, chase_view


def render_stills(out: str | Path = "docs/images", steps: int = 8) -> list[Path]:
    """``out/<scenario>-v0.png`` for every registered id, after ``steps`` steps of gentle throttle from seed 3; returns the files."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for env_id in envs.ENV_IDS:
        env = gym.make(env_id, obs_type="camera")
        try:
            obs, _ = env.reset(seed=3)
            for _ in range(steps):
                obs, *_ = env.step(np.array([0.0, 0.2], np.float32))
            chase = chase_view(env.unwrapped.world, ChaseViewConfig())
        finally:
            env.close()
        cam = cv2.resize(obs, (chase.shape[0], chase.shape[0]), interpolation=cv2.INTER_NEAREST)
        path = folder / f"{env_id.split('/')[1].lower()}.png"
        write_image(path, np.concatenate([chase, cam], axis=1))
        written.append(path)
    return written
