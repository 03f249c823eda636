"""Train a policy with plain stable-baselines3 on a drive-sim id, as you would any Gymnasium env.

    python docs/examples/train_plain_sb3.py my_dqn.zip 20000
    drive-sim bench --agents my_dqn.zip,zoo:dqn-highway-meta,expert --scenarios highway,highway-wet \\
        --episodes 10 --allow-pickle --out results/byo

No drive-sim training code: SB3's DQN and its default MlpPolicy on ``DriveSim/Highway-v0`` with the
kinematics observation and meta actions, saved with ``model.save``. ``drive-sim evaluate``, ``bench``
and ``replay`` take the zip as it is (with ``--allow-pickle``: SB3's format runs pickled code when
loaded), reading the observation and action types from the model's spaces (docs/bring-your-own-policy.md).
"""

from __future__ import annotations

import sys

import gymnasium as gym
from stable_baselines3 import DQN

import drive_sim  # noqa: F401  (registers DriveSim/*)


def main(path: str, steps: int) -> None:
    """Train SB3's DQN for ``steps`` steps and save it to ``path``."""
    env = gym.make("DriveSim/Highway-v0", obs_type="kinematics", action_type="meta")
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
    model.learn(steps, progress_bar=True)
    model.save(path)
    env.close()
    print(f"saved {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "my_dqn.zip", int(sys.argv[2]) if len(sys.argv) > 2 else 20_000)
