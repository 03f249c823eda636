"""Drive agents over seeds: the one episode loop, and the evaluations built on it.

``run_episode`` is the loop every caller shares (training's validation and final test, ``drive-sim
evaluate``, the expert table, the benchmark grid, the videos); it records the episode in memory
(``envs.recording.RecordEpisodes``) and returns its ``EpisodeSummary`` (``agents.evaluation.metrics``),
so "the episode of seed N" is the same episode, measured the same way, everywhere.
``evaluate_expert`` measures the expert driver (``docs/expert.md``): each episode is independent
and seeded, so episodes run in a process pool and the results do not depend on the worker count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from agents.evaluation.metrics import EpisodeSummary, summarise_log
from agents.evaluation.pool import pool_map
from agents.policies.base import Agent, AgentEnv


class AgentDoesNotFit(ValueError):
    """The agent failed on an episode's first step: it was built for other observations or actions."""


def run_episode(
    env: Any,
    agent: Any,
    seed: int,
    *,
    deterministic: bool = True,
    max_steps: int | None = None,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
) -> EpisodeSummary:
    """One seeded episode of ``agent`` on ``env`` and its summary: the one episode loop.

    A stochastic baseline with ``reseed`` is restarted from the episode's seed, so an episode's
    actions depend on its seed only. ``on_step(t, info)`` runs after the reset (t = 0) and after
    every step. An agent that raises on the first step (ValueError, KeyError, RuntimeError,
    IndexError: it was built for other observations or actions) raises ``AgentDoesNotFit``.
    ``env`` may already record its episodes to disk (``RecordEpisodes``); otherwise the episode is
    recorded in memory for its summary. ``max_steps`` cuts it short (``finished`` is then False).
    """
    from envs.recording import RecordEpisodes

    rec = env if isinstance(env, RecordEpisodes) else RecordEpisodes(env, None)
    if hasattr(agent, "attach"):
        agent.attach(env)  # an agent that reads more of its env than the observation (the expert's caution)
    obs, info = rec.reset(seed=int(seed))
    agent.reset()
    if hasattr(agent, "reseed"):
        agent.reseed(int(seed))
    if on_step is not None:
        on_step(0, info)
    steps, act_s, ended = 0, 0.0, False
    while not ended and (max_steps is None or steps < max_steps):
        t0 = time.perf_counter()
        try:
            action = agent.act(obs, deterministic=deterministic)
            act_s += time.perf_counter() - t0
            obs, _reward, terminated, truncated, info = rec.step(action)
        except (ValueError, KeyError, RuntimeError, IndexError) as err:
            if steps > 0:
                raise
            raise AgentDoesNotFit(str(err).splitlines()[0] if str(err) else type(err).__name__) from err
        steps += 1
        ended = terminated or truncated
        if on_step is not None:
            on_step(steps, info)
    log = rec.episode_log()
    assert log is not None  # the reset above started one
    return summarise_log(log, act_ms=act_s / max(steps, 1) * 1e3)


def evaluate_agent(agent: Agent, target: AgentEnv, seeds: Sequence[int], *, progress: bool = False) -> list[EpisodeSummary]:
    """Deterministic episodes of an Agent on ``seeds`` in one env made from ``target``."""
    from tqdm import tqdm

    env = target.make()
    try:
        return [run_episode(env, agent, int(seed)) for seed in tqdm(seeds, desc="evaluation", unit="ep", disable=not progress)]
    finally:
        env.close()


def evaluate_named_agent(
    spec: str,
    *,
    scenario: str | None = None,
    episodes: int = 20,
    seed_start: int = 0,
    progress: bool = True,
    allow_pickle: bool = False,
) -> tuple[list[EpisodeSummary], dict[str, Any]]:
    """Episodes of the agent named by ``spec`` on seeds ``seed_start, ...`` (``drive-sim evaluate``).

    The env is the agent's own, or ``scenario`` (``agents.policies.loader.resolve_agent``).

    Returns:
        The episodes and a description of what ran (agent, env id, observation and action types).
    """
    from agents.policies.loader import resolve_agent
    from drive_sim.config import require

    require(episodes >= 1, "episodes", f"must be at least 1, got {episodes}")
    require(seed_start >= 0, "seed_start", f"must be non-negative, got {seed_start}")
    agent, target = resolve_agent(spec, scenario, seed=seed_start, allow_pickle=allow_pickle)
    summaries = evaluate_agent(agent, target, range(seed_start, seed_start + episodes), progress=progress)
    return summaries, {"agent": spec, "env_id": target.env_id, "obs_type": target.obs_type, "action_type": target.action_type}


def run_expert_episode(env_id: str, seed: int) -> EpisodeSummary:
    """One episode of the expert driver (``kinematics`` observation, ``continuous`` actions), its planning timed."""
    from agents.policies.loader import DEFAULT_KINDS, load_agent

    env = AgentEnv(env_id, **DEFAULT_KINDS).make()
    try:
        return run_episode(env, load_agent("expert", env), seed)
    finally:
        env.close()


def evaluate_expert(env_ids: Sequence[str], seeds: Sequence[int], workers: int = 1, progress: bool = True) -> list[EpisodeSummary]:
    """Every (scenario, seed) episode of the expert, in a pool of ``workers`` processes, in scenario order and seed order."""
    from tqdm import tqdm

    jobs = [(env_id, int(seed)) for env_id in env_ids for seed in seeds]
    with tqdm(total=len(jobs), desc="expert episodes", disable=not progress, unit="ep") as bar:
        return pool_map(run_expert_episode, jobs, workers, lambda _r: bar.update())
