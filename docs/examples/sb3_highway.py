"""Train a DQN with stable-baselines3 on highway-env or on drive-sim: only the id changes.

    python docs/examples/sb3_highway.py highway-fast-v0 20000
    python docs/examples/sb3_highway.py DriveSim/Highway-v0 20000

Both envs take the same highway-env config (drive-sim translates the keys it has, envs/highway_compat.py)
and the same meta actions; the script trains, then drives 20 test episodes (seeds 0-19; a third
argument changes the count) and prints their mean return, collision rate and mean episode length as
one JSON line. highway-env: pip install highway-env.
"""

from __future__ import annotations

import json
import sys
import time

import gymnasium as gym
from stable_baselines3 import DQN

import drive_sim  # noqa: F401  (registers DriveSim/*)

CONFIG = {
    "observation": {"type": "Kinematics", "vehicles_count": 5},
    "action": {"type": "DiscreteMetaAction"},
    "lanes_count": 4,
    "vehicles_count": 20,
    "duration": 40,
    "policy_frequency": 1,
}


def main(env_id: str, steps: int, episodes: int = 20) -> dict:
    """Train on ``env_id`` for ``steps`` steps and score ``episodes`` test episodes (seeds 0, 1, ...)."""
    if not env_id.startswith("DriveSim/"):
        import highway_env  # noqa: F401  (registers highway-env's ids)
    env = gym.make(env_id, config=CONFIG)
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=5e-4,
        buffer_size=15_000,
        learning_starts=200,
        batch_size=32,
        gamma=0.8,
        train_freq=1,
        gradient_steps=1,
        target_update_interval=50,
        exploration_fraction=0.7,
        seed=0,
        device="cpu",
    )
    t0 = time.perf_counter()
    model.learn(steps)
    train_s = time.perf_counter() - t0
    returns, crashes, lengths = [], [], []
    for seed in range(episodes):
        obs, info = env.reset(seed=seed)
        done, ret, n = False, 0.0, 0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, r, terminated, truncated, info = env.step(action)
            ret, n, done = ret + float(r), n + 1, terminated or truncated
        returns.append(ret)
        lengths.append(n)
        crashes.append(bool(info.get("crashed", info.get("collided", False))))  # highway-env's and drive-sim's name
    env.close()
    return {
        "env_id": env_id,
        "train_steps": steps,
        "test_episodes": episodes,
        "train_s": round(train_s, 1),
        "mean_return": sum(returns) / len(returns),
        "collision_rate": sum(crashes) / len(crashes),
        "mean_length": sum(lengths) / len(lengths),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(
        json.dumps(
            main(
                args[0] if args else "DriveSim/Highway-v0", int(args[1]) if len(args) > 1 else 20_000, int(args[2]) if len(args) > 2 else 20
            )
        )
    )
