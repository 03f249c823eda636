"""rl-zoo3 on drive-sim ids (issue 17): the shipped hyperparameter file trains, enjoys and records headless.

``python -m agents.training.zoo3`` runs rl-zoo3's own commands with the ids registered and the
shipped file as the default ``--conf-file``; before, record_video could not find the ids at all.
The budget is cut on the command line (``-n``, ``--hyperparams``) so the rest is the shipped file.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from agents.training.config import rl_zoo3_config
from drive_sim.config import ConfigError
from drive_sim.files import loads_yaml, read_yaml

pytest.importorskip("rl_zoo3")

ZOO3 = [sys.executable, "-m", "agents.training.zoo3"]
ENV = ["--algo", "ppo", "--env", "DriveSim/Highway-v0", "-f", "logs"]


def _run(args, cwd):
    return subprocess.run([*ZOO3, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


# Slow (three rl-zoo3 processes, ~26 s): test_foreign trains through rl_zoo3.train in the default run.
@pytest.mark.slow
def test_the_shipped_ppo_file_trains_enjoys_and_records_a_video_headless(tmp_path):
    shipped = read_yaml(rl_zoo3_config("ppo"), "rl-zoo3 file")["DriveSim/Highway-v0"]
    train = _run(["train", *ENV, "--seed", "0", "--eval-freq", "-1", "-n", "256", "--hyperparams", "n_envs:1", "n_steps:256"], tmp_path)
    assert train.returncode == 0, train.stderr[-2000:]
    run = tmp_path / "logs" / "ppo" / "DriveSim-Highway-v0_1"
    config = run / "DriveSim-Highway-v0" / "config.yml"
    used = loads_yaml(config.read_text(), config, "rl-zoo3 config", ordered_dicts=True)
    assert used["n_envs"] == 1 and used["n_steps"] == 256  # the command line's cut
    for key in ("gamma", "learning_rate", "policy_kwargs", "env_kwargs", "normalize"):
        assert used[key] == shipped[key], key  # the shipped file, not rl-zoo3's defaults
    assert (run / "DriveSim-Highway-v0" / "vecnormalize.pkl").is_file()

    enjoy = _run(["enjoy", *ENV, "--no-render", "-n", "50"], tmp_path)
    assert enjoy.returncode == 0, enjoy.stderr[-2000:]
    video = _run(["record_video", *ENV, "-n", "30"], tmp_path)
    assert video.returncode == 0, video.stderr[-2000:]
    (mp4,) = (run / "videos").glob("*.mp4")
    import imageio.v3 as iio

    frames = iio.imread(mp4)
    assert frames.shape[0] >= 30 and frames.std() > 10.0  # drawn frames, not black ones


def test_the_launcher_names_a_bad_command_and_an_unshipped_algorithm(tmp_path):
    bad = _run(["fly"], tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "train, enjoy, record_video" in bad.stderr
    sac = _run(["train", "--algo", "sac", "--env", "DriveSim/Highway-v0"], tmp_path)
    assert sac.returncode == 2 and "no rl-zoo3 file ships for 'sac'" in sac.stderr and "dqn, ppo" in sac.stderr
    with pytest.raises(ConfigError, match="algo: no rl-zoo3 file ships"):
        rl_zoo3_config("sac")


def test_the_shipped_files_are_rl_zoo3_hyperparameters_for_registered_ids():
    import gymnasium as gym

    import drive_sim  # noqa: F401

    for algo in ("ppo", "dqn"):
        table = read_yaml(rl_zoo3_config(algo), "rl-zoo3 file")
        assert table, algo
        for env_id, hp in table.items():
            assert env_id in gym.registry, env_id
            assert np.isfinite(float(hp["n_timesteps"])) and hp["policy"] == "MlpPolicy"
