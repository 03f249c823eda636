"""Tabular Q-learning: the update on a known MDP, the discretiser, save/load, learning on LaneKeep."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from agents.policies.q_learning import Discretiser, QLearner, QLearningAgent, QLearningConfig, Schedule, train_q_learning
from drive_sim.config import ConfigError


def _chain_values(double: bool) -> np.ndarray:
    """Learn a 3-state chain: action 1 moves right (reward 1 on reaching state 2, terminal), 0 stays."""
    disc = Discretiser(("x",), (3,), (0.0,), (3.0,))
    cfg = QLearningConfig(discretiser=disc, gamma=0.9, double=double)
    learner = QLearner(cfg, 2, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for _ in range(3000):
        s = rng.integers(0, 2, size=8)  # states 0 and 1 (2 is terminal)
        a = rng.integers(0, 2, size=8)
        s2 = np.where(a == 1, s + 1, s)
        r = np.where(s2 == 2, 1.0, 0.0)
        learner.update(s, a, r, s2, s2 != 2, lr=0.1)
    return learner.values()


@pytest.mark.parametrize("double", [False, True])
def test_q_values_converge_to_the_bellman_solution(double):
    q = _chain_values(double)
    # Q(1, right) = 1; Q(1, stay) = 0.9; Q(0, right) = 0.9 * 1; Q(0, stay) = 0.9 * 0.9
    expected = np.array([[0.81, 0.9], [0.9, 1.0]])
    assert np.allclose(q[:2], expected, atol=0.02)


def test_discretiser_bins_clip_and_combine():
    disc = Discretiser(("a", "b"), (4, 3), (0.0, -1.0), (1.0, 1.0))
    cols = disc.columns(("z", "a", "b"))
    obs = np.array([[9.0, 0.0, -1.0], [9.0, 0.99, 0.99], [9.0, -5.0, 5.0], [9.0, 0.5, 0.0]])
    assert disc.index(obs, cols).tolist() == [0, 3 * 3 + 2, 0 * 3 + 2, 2 * 3 + 1]
    assert disc.n_states == 12
    with pytest.raises(ConfigError, match="q_learning.features"):
        disc.columns(("a", "c"))
    with pytest.raises(ConfigError, match="q_learning.bins"):
        Discretiser(("a",), (1,), (0.0,), (1.0,))


def test_schedule_decays_linearly_then_holds():
    s = Schedule(1.0, 0.1, 100)
    assert s(0) == 1.0 and s(50) == pytest.approx(0.55) and s(100) == pytest.approx(0.1) and s(10_000) == pytest.approx(0.1)


def test_save_load_round_trip_and_bad_files(tmp_path):
    disc = Discretiser(("a",), (3,), (0.0,), (1.0,))
    q = np.random.default_rng(0).normal(size=(3, 4))
    agent = QLearningAgent(disc, q, ("a",))
    path = tmp_path / "q.npz"
    agent.save(path)
    back = QLearningAgent.load(path)
    assert np.array_equal(back.q, q) and back.discretiser == disc
    assert [back.act(np.array([x])) for x in (0.1, 0.5, 0.9)] == [agent.act(np.array([x])) for x in (0.1, 0.5, 0.9)]
    with pytest.raises(ConfigError, match="no such Q-table"):
        QLearningAgent.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a drive-sim Q table"):
        QLearningAgent.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(2))
    with pytest.raises(ConfigError, match="not a drive-sim Q table"):
        QLearningAgent.load(other)


STEERING = {"speed": "cruise", "steer_values": [-0.3, -0.15, -0.06, -0.02, 0.0, 0.02, 0.06, 0.15, 0.3]}


def _lanekeep(time_limit_s: float = 20.0) -> gym.Env:
    cfg = {"scenario": {"time_limit_s": time_limit_s}, "action": STEERING}
    return gym.make("DriveSim/LaneKeep-v0", obs_type="lidar", action_type="discrete", cfg=cfg)


def _route(env: gym.Env, policy, seeds) -> list[float]:
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, te, tr, info = env.step(policy(obs))
            done = te or tr
        out.append(info["route_completion"])
    return out


def test_q_learning_learns_to_keep_the_lane_within_a_minute():
    steps = 20_000
    cfg = QLearningConfig(learning_rate=Schedule(0.5, 0.1, steps), epsilon=Schedule(1.0, 0.05, 12_000))
    result = train_q_learning(_lanekeep, cfg, steps, progress=False)
    assert result.steps == steps and len(result.episodes) > 20
    env = _lanekeep()
    rng = np.random.default_rng(0)
    random_route = _route(env, lambda obs: int(rng.integers(env.action_space.n)), range(3))
    learned_route = _route(env, result.agent.act, range(3))
    env.close()
    print(f"route completion: random {np.mean(random_route):.3f}, learned {np.mean(learned_route):.3f}")
    # 20 s at the 15 m/s cruise speed is 0.375 of the route: the greedy table drives most of it.
    assert np.mean(learned_route) > 0.28 and np.mean(learned_route) > 5 * np.mean(random_route), (learned_route, random_route)
    # and the last episodes of training went further than the first (epsilon-greedy, not greedy)
    first = np.mean([e["route_completion"] for e in result.episodes[:50]])
    assert max(learned_route) > 3 * first


def test_q_learning_needs_a_discrete_action_space():
    with pytest.raises(ConfigError, match="discrete action space"):
        train_q_learning(lambda: gym.make("DriveSim/LaneKeep-v0", obs_type="lidar"), QLearningConfig(), 10, progress=False)
