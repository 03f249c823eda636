"""The one episode loop and the one agent loader (agents.evaluation.episodes, agents.policies.loader)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from agents.evaluation.episodes import AgentDoesNotFit, evaluate_agent, run_episode
from agents.evaluation.metrics import summarise_log
from agents.policies.base import AgentEnv
from agents.policies.loader import check_agent, load_agent, resolve_agent
from agents.policies.random_agent import RandomAgent
from agents.policies.zoo import zoo_entry
from envs.recording import EpisodeLog, RecordEpisodes

SHORT = {"scenario": {"time_limit_s": 3.0}}


def _env(**kwargs):
    return gym.make("DriveSim/Highway-v0", obs_type="kinematics", action_type="continuous", cfg=SHORT, **kwargs)


def test_the_summary_of_the_loop_is_the_summary_of_the_log_it_writes(tmp_path):
    disk = RecordEpisodes(_env(), tmp_path)
    try:
        on_disk = run_episode(disk, RandomAgent(disk.action_space, seed=1), 7)
    finally:
        disk.close()
    plain = _env()
    try:
        in_memory = run_episode(plain, RandomAgent(plain.action_space, seed=1), 7)
    finally:
        plain.close()
    from_file = summarise_log(EpisodeLog.load(disk.written[0]))
    assert on_disk.act_ms is not None and on_disk.act_ms >= 0.0
    untimed = [dataclasses.replace(s, act_ms=None) for s in (on_disk, in_memory)]
    assert untimed == [from_file, from_file]  # the same episode, measured the same way, recorded or not
    assert from_file.seed == 7 and from_file.steps == 30 and from_file.finished and from_file.env_id == "DriveSim/Highway-v0"


def test_a_step_limit_leaves_the_episode_unfinished():
    env = _env()
    try:
        ep = run_episode(env, RandomAgent(env.action_space), 0, max_steps=5)
        again = run_episode(env, RandomAgent(env.action_space), 0)  # the next episode starts clean
    finally:
        env.close()
    assert (ep.steps, ep.finished) == (5, False)
    assert again.finished and again.steps > 5  # this seed's random driving leaves the road after 13 steps


def test_an_agent_for_other_actions_does_not_fit():
    class Discrete:
        def reset(self):
            pass

        def act(self, obs, deterministic=True):
            return np.zeros(7, np.float32)  # the env takes [steer, acceleration]

    env = _env()
    try:
        with pytest.raises(AgentDoesNotFit):
            run_episode(env, Discrete(), 0)
    finally:
        env.close()


def test_evaluate_agent_drives_each_seed_once():
    target = AgentEnv("DriveSim/Highway-v0", "kinematics", "continuous", SHORT)
    probe = target.make()
    agent = load_agent("random", probe, seed=3)
    probe.close()
    episodes = evaluate_agent(agent, target, [4, 5, 4])
    assert [e.seed for e in episodes] == [4, 5, 4]
    assert episodes[0] == dataclasses.replace(episodes[2], act_ms=episodes[0].act_ms)  # reseeded per episode


def test_the_loader_names_the_env_each_agent_drives():
    entry = zoo_entry("q-lanekeep-lidar")
    agent, target = resolve_agent("zoo:q-lanekeep-lidar")
    assert target == entry.env and type(agent).__name__ == "QLearningAgent"
    _, elsewhere = resolve_agent("zoo:q-lanekeep-lidar", "lanekeep-ice")
    assert elsewhere == dataclasses.replace(entry.env, env_id="DriveSim/LaneKeep-Ice-v0")
    expert, kinds = resolve_agent("expert", "roundabout")
    assert kinds == AgentEnv("DriveSim/Roundabout-v0", "kinematics", "continuous") and type(expert).__name__ == "ExpertAgent"
    with pytest.raises(ValueError, match="agent: random needs --scenario"):
        resolve_agent("random")
    with pytest.raises(ValueError, match="agents: nope.zip: model: nope.zip does not exist"):
        check_agent("nope.zip")
    with pytest.raises(ValueError, match="'gpt' is not known; allowed: zoo:NAME, expert, random"):
        load_agent("gpt")
    check_agent("expert")  # built for whatever env it is given: nothing to load


def test_saved_expert_and_random_files_drive_the_kinematics_observation(tmp_path):
    env = _env()
    RandomAgent(env.action_space, seed=2).save(tmp_path / "random.json")
    env.close()
    agent, target = resolve_agent(str(tmp_path / "random.json"), "highway")
    assert target == AgentEnv("DriveSim/Highway-v0", "kinematics", "continuous") and agent.seed == 2
    with pytest.raises(ValueError, match="does not say which env it drives; pass --scenario"):
        resolve_agent(str(tmp_path / "random.json"))
