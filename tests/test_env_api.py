"""Every registered id, with every observation and action type, passes both env checkers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs

# perceived runs the perception net every step: every id with it is checked in the slow run; the default run
# checks it on a road layout and a lane-graph layout, with every action type.
PERCEIVED_FAST = ("DriveSim/Highway-v0", "DriveSim/Roundabout-v0")
COMBOS = [
    (env_id, obs, act) if obs != "perceived" or env_id in PERCEIVED_FAST else pytest.param(env_id, obs, act, marks=pytest.mark.slow)
    for env_id in envs.ENV_IDS
    for obs in envs.OBS_TYPES
    for act in envs.ACTION_TYPES
]


@pytest.mark.parametrize("env_id,obs,act", COMBOS)
def test_gymnasium_and_sb3_checkers(env_id, obs, act):
    env = gym.make(env_id, obs_type=obs, action_type=act, disable_env_checker=True)
    try:
        gym_check_env(env.unwrapped, skip_render_check=True)
        with warnings.catch_warnings():
            # SB3 suggests channel-first images; drive-sim's layout is channel-last by design (STYLE.md).
            warnings.filterwarnings("ignore", message=".*channel.*")
            sb3_check_env(env.unwrapped, warn=True)
    finally:
        env.close()


def test_registry_lists_both_foundation_ids():
    assert {"DriveSim/Highway-v0", "DriveSim/LaneKeep-v0"} <= set(envs.ENV_IDS)
    for env_id in envs.ENV_IDS:
        assert env_id in gym.registry


def test_vector_observations_name_every_entry():
    for obs_type in ("lidar", "kinematics"):
        env = gym.make("DriveSim/Highway-v0", obs_type=obs_type)
        names = env.unwrapped.observation_names
        assert len(names) == env.observation_space.shape[0] == len(set(names))
        env.close()
    lidar = gym.make("DriveSim/Highway-v0").unwrapped.observation_names
    assert lidar[0] == "range_0" and "lane_offset" in lidar and "heading_error" in lidar
    assert gym.make("DriveSim/Highway-v0", obs_type="camera").unwrapped.observation_names is None


def test_ids_are_made_from_a_folder_holding_user_packages_named_envs_agents_perception(tmp_path):
    """Issue 17: a user project's own envs/ (or agents/, perception/) shadowed drive-sim's, and every id failed with NamespaceNotFound."""
    import subprocess
    import sys

    for name in ("envs", "agents", "perception"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"MINE = {name!r}\n")
    code = (
        "import gymnasium as gym, drive_sim\n"
        "from drive_sim.registration import ENV_IDS\n"
        "for env_id in ENV_IDS:\n"
        "    env = gym.make(env_id)\n"
        "    env.reset(seed=0)\n"
        "    env.close()\n"
        "env = gym.make('drive_sim:DriveSim/LaneKeep-v0')\n"  # the module-prefixed id, as subprocess workers use it
        "print('made', len(ENV_IDS))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    from drive_sim.registration import ENV_IDS

    assert r.returncode == 0 and r.stdout.strip() == f"made {len(ENV_IDS)}", r.stderr[-2000:]
    # The user's own envs imported first: one line that says why and what to do.
    clash = "import envs, gymnasium as gym, drive_sim\nassert envs.MINE == 'envs'\ngym.make('DriveSim/Highway-v0')\n"
    r = subprocess.run([sys.executable, "-c", clash], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "a package of yours named envs shadows it: rename yours" in last and str(tmp_path / "envs") in last, last


def test_small_edges_of_issue_17():
    import pickle

    # Stepping an env that was unpickled (re-made) before any reset: Gymnasium's ResetNeeded, not a bare AssertionError.
    env = gym.make("DriveSim/Highway-v0")
    env.reset(seed=0)
    copy = pickle.loads(pickle.dumps(env))
    with pytest.raises(gym.error.ResetNeeded):
        copy.step(env.action_space.sample())
    copy.close()
    env.close()
    # A (1,)-shaped discrete or meta action (what SB3 and vector envs hand over) is one action.
    for action_type in ("discrete", "meta"):
        env = gym.make("DriveSim/Highway-v0", action_type=action_type)
        env.reset(seed=0)
        a = env.step(np.array([3]))
        env.reset(seed=0)
        b = env.step(np.int64(3))
        np.testing.assert_array_equal(a[0], b[0])
        with pytest.raises(ValueError, match="action: .* is not allowed"):
            env.step(np.array([1, 2]))
        env.close()
    # The names the reports print are scenario names too.
    assert envs.env_id("Highway-v0") == "DriveSim/Highway-v0"
    assert envs.env_id("Highway-Ice") == envs.env_id("DriveSim/highway-ice-v0") == "DriveSim/Highway-Ice-v0"
    with pytest.raises(ValueError, match="'Moon-v0' is not known"):
        envs.env_id("Moon-v0")
