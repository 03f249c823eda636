"""Render a chase-camera still and the agent's 84x84 camera view of each registered scenario into
docs/images/ (the pictures in the README).

    python scripts/render_stills.py [--out docs/images] [--steps 8]
"""

import argparse
from pathlib import Path

import cv2
import gymnasium as gym
import numpy as np

import envs
from drive_sim.render import ChaseViewConfig, chase_view

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for env_id in envs.ENV_IDS:
        env = gym.make(env_id, obs_type="camera")
        obs, _ = env.reset(seed=3)
        for _ in range(args.steps):
            obs, *_ = env.step(np.array([0.0, 0.2], np.float32))
        chase = chase_view(env.unwrapped.world, ChaseViewConfig())
        cam = cv2.resize(obs, (chase.shape[0], chase.shape[0]), interpolation=cv2.INTER_NEAREST)
        path = out / f"{env_id.split('/')[1].lower()}.png"
        cv2.imwrite(str(path), np.concatenate([chase, cam], axis=1)[..., ::-1])
        print(path)
        env.close()
