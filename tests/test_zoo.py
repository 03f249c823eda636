"""The pretrained zoo: every policy loads as zoo:NAME, stays under 5 MB and replays its recorded test episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.policies.loader import load_agent
from agents.policies.zoo import MAX_BYTES, zoo_entries, zoo_entry

ENTRIES = zoo_entries()
# The agents issue asks for these four (docs/results.md lists each policy's test score).
REQUIRED = {"dqn-highway-meta", "ppo-lanekeep-camera", "ppo-highway-lidar", "q-lanekeep-lidar"}


def test_the_zoo_holds_the_required_policies():
    assert set(ENTRIES) >= REQUIRED, f"missing: {REQUIRED - set(ENTRIES)}"


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_zoo_policy_loads_and_replays_its_recorded_episode(name):
    entry = ENTRIES[name]
    path = Path(__file__).resolve().parents[1] / "agents" / "policies" / "zoo" / entry.file
    assert entry.path.samefile(path)
    assert path.stat().st_size < MAX_BYTES
    agent = load_agent(f"zoo:{name}")
    check = entry.check_episode
    env = entry.make_env()
    try:
        obs, info = env.reset(seed=check["seed"])
        agent.reset()
        ret, steps, done = 0.0, 0, False
        while not done:
            obs, r, term, trunc, info = env.step(agent.act(obs, deterministic=True))
            ret += float(r)
            steps += 1
            done = term or trunc
    finally:
        env.close()
    # Same seed, same policy: the episode its run recorded, inside a window (a frozen-policy regression test,
    # as MetaDrive's expert test). Not to the bit across machines: torch picks CPU-specific kernels (AVX-512 on
    # the Intel machine that recorded these episodes, AVX2 on an AMD EPYC), a continuous policy's actions then
    # differ in their last bits and the trajectory drifts (ppo-highway-lidar, seed 0: return 229.98 on an AMD
    # EPYC against the recorded 224.14, route completion 0.832 against 0.825). The table and DQN policies
    # (argmax) replay exactly; on one machine a policy's actions (test_training.py's save/load round trip) and
    # the env's episode for them (test_determinism.py) are bit-identical.
    assert steps == check["steps"]
    np.testing.assert_allclose(ret, check["return"], rtol=0.05, atol=1e-3)
    assert abs(info["route_completion"] - check["route_completion"]) < 0.02


def test_unknown_zoo_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="zoo:nope is not in the zoo; known: zoo:"):
        zoo_entry("nope")
