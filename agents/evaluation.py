"""Drive agents over evaluation seeds: the one episode loop, and the summaries built on it.

``run_episode`` is the loop every caller shares (training's validation and test, ``drive-sim
evaluate``, the expert table, the benchmark grid, the videos). ``evaluate_expert`` measures the
expert driver (``docs/expert.md``): each episode is independent and seeded, so episodes run in a
process pool and the results do not depend on the worker count.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode.

    Attributes:
        env_id: registered id.
        seed: the ``reset`` seed.
        success: the env's ``is_success``.
        collision: "", "vehicle" or "static".
        off_road: the episode ended off the road.
        route_completion: fraction of the route driven.
        speed_ratio: mean over steps of speed / speed limit.
        steps: env steps.
        episode_return: summed reward.
        plan_ms: mean planner time per step [ms] (agents that plan), else 0.
    """

    env_id: str
    seed: int
    success: bool
    collision: str
    off_road: bool
    route_completion: float
    speed_ratio: float
    steps: int
    episode_return: float
    plan_ms: float


class AgentDoesNotFit(ValueError):
    """The agent failed on an episode's first step: it was built for other observations or actions."""


@dataclass
class Episode:
    """What ``run_episode`` drove.

    Attributes:
        seed: the ``reset`` seed.
        steps: env steps.
        episode_return: summed reward.
        info: the last step's info.
        speed_ratio: mean over steps of speed / speed limit.
        act_s: time spent in ``agent.act`` [s].
        finished: the env ended the episode (False when ``max_steps`` stopped it).
    """

    seed: int
    steps: int
    episode_return: float
    info: dict[str, Any]
    speed_ratio: float
    act_s: float
    finished: bool


def run_episode(
    env: Any,
    agent: Any,
    seed: int,
    *,
    deterministic: bool = True,
    max_steps: int | None = None,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
) -> Episode:
    """One seeded episode of ``agent`` on ``env``: the one episode loop (evaluation, expert table, benchmark, videos).

    A stochastic baseline with ``reseed`` is restarted from the episode's seed, so an episode's
    actions depend on its seed only. ``on_step(t, info)`` runs after the reset (t = 0) and after
    every step. An agent that raises on the first step (ValueError, KeyError, RuntimeError,
    IndexError: it was built for other observations or actions) raises ``AgentDoesNotFit``.
    """
    obs, info = env.reset(seed=int(seed))
    agent.reset()
    if hasattr(agent, "reseed"):
        agent.reseed(int(seed))
    if on_step is not None:
        on_step(0, info)
    steps, ret, ratio, act_s, ended = 0, 0.0, 0.0, 0.0, False
    while not ended and (max_steps is None or steps < max_steps):
        t0 = time.perf_counter()
        try:
            action = agent.act(obs, deterministic=deterministic)
            act_s += time.perf_counter() - t0
            obs, reward, terminated, truncated, info = env.step(action)
        except (ValueError, KeyError, RuntimeError, IndexError) as err:
            if steps > 0:
                raise
            raise AgentDoesNotFit(str(err).splitlines()[0] if str(err) else type(err).__name__) from err
        steps += 1
        ret += float(reward)
        ratio += info["speed_mps"] / max(info["speed_limit_mps"], 1e-6)
        ended = terminated or truncated
        if on_step is not None:
            on_step(steps, info)
    return Episode(int(seed), steps, ret, info, ratio / max(steps, 1), act_s, ended)


def run_expert_episode(env_id: str, seed: int) -> EpisodeResult:
    """One episode of the expert driver (``kinematics`` observation, ``continuous`` actions)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)
    from agents.expert import ExpertAgent

    env = gym.make(env_id, obs_type="kinematics", action_type="continuous")
    try:
        ep = run_episode(env, ExpertAgent.for_env(env), seed)
    finally:
        env.close()
    info = ep.info
    return EpisodeResult(
        env_id,
        seed,
        bool(info["is_success"]),
        str(info["collision_kind"]),
        bool(info["off_road"]),
        float(info["route_completion"]),
        ep.speed_ratio,
        ep.steps,
        ep.episode_return,
        ep.act_s / max(ep.steps, 1) * 1e3,
    )


def pool_map(
    fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], workers: int, on_result: Callable[[Any], None] | None = None
) -> list[Any]:
    """``fn(*job)`` for every job, results in job order.

    In this process (one worker) or in a pool of ``workers`` spawned processes; ``on_result(result)``
    runs here as each job ends (progress bars). ``fn`` must be importable by name (a module-level function) for the spawned workers.
    """
    results: list[Any] = [None] * len(jobs)
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            results[i] = fn(*job)
            if on_result is not None:
                on_result(results[i])
        return results
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if on_result is not None:
                on_result(results[futures[fut]])
    return results


def evaluate_expert(env_ids: Sequence[str], seeds: Sequence[int], workers: int = 1, progress: bool = True) -> list[EpisodeResult]:
    """Every (scenario, seed) episode of the expert, in a pool of ``workers`` processes.

    Returns the results in scenario order and seed order.
    """
    from tqdm import tqdm

    jobs = [(env_id, int(seed)) for env_id in env_ids for seed in seeds]
    with tqdm(total=len(jobs), desc="expert episodes", disable=not progress, unit="ep") as bar:
        return pool_map(run_expert_episode, jobs, workers, lambda _r: bar.update())


def summarise(results: Sequence[EpisodeResult]) -> list[dict[str, Any]]:
    """One row per scenario: episodes, success, collision and off-road rates, completion, speed, plan time."""
    rows = []
    for env_id in dict.fromkeys(r.env_id for r in results):
        rs = [r for r in results if r.env_id == env_id]
        rows.append(
            {
                "env_id": env_id,
                "episodes": len(rs),
                "success": statistics.mean(r.success for r in rs),
                "collision": statistics.mean(bool(r.collision) for r in rs),
                "off_road": statistics.mean(r.off_road for r in rs),
                "route_completion": statistics.mean(r.route_completion for r in rs),
                "speed_ratio": statistics.mean(r.speed_ratio for r in rs),
                "plan_ms": statistics.mean(r.plan_ms for r in rs),
                "failed_seeds": [r.seed for r in rs if not r.success],
            }
        )
    return rows


def as_dicts(results: Sequence[EpisodeResult]) -> list[dict[str, Any]]:
    """Plain dicts (for JSON)."""
    return [dataclasses.asdict(r) for r in results]


def evaluate_agent(
    agent: Any, env_id: str, obs_type: str, action_type: str, seeds: Sequence[int], *, progress: bool = False, **env_kwargs: Any
) -> list[dict[str, Any]]:
    """Deterministic episodes of an Agent (``act``/``reset``) on ``seeds``; one dict per episode.

    Rows: seed, return, steps, success, collided, off_road, route_completion and speed_ratio (mean
    over steps of speed / speed limit).
    """
    import gymnasium as gym
    from tqdm import tqdm

    import envs  # noqa: F401  (registers the ids)

    rows = []
    env = gym.make(env_id, obs_type=obs_type, action_type=action_type, **env_kwargs)
    try:
        for seed in tqdm(seeds, desc="evaluation", unit="ep", disable=not progress):
            ep = run_episode(env, agent, int(seed))
            rows.append(
                {
                    "seed": ep.seed,
                    "return": round(ep.episode_return, 4),
                    "steps": ep.steps,
                    "success": bool(ep.info["is_success"]),
                    "collided": bool(ep.info["collided"]),
                    "off_road": bool(ep.info["off_road"]),
                    "route_completion": round(float(ep.info["route_completion"]), 4),
                    "speed_ratio": round(ep.speed_ratio, 4),
                }
            )
    finally:
        env.close()
    return rows


def summarise_episodes(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over ``evaluate_agent``'s rows: success, collision, off-road, route completion, speed, return."""
    if not rows:
        return {"episodes": 0}
    return {
        "episodes": len(rows),
        "seeds": [r["seed"] for r in rows],
        "success_rate": float(np.mean([r["success"] for r in rows])),
        "collision_rate": float(np.mean([r["collided"] for r in rows])),
        "off_road_rate": float(np.mean([r["off_road"] for r in rows])),
        "mean_route_completion": float(np.mean([r["route_completion"] for r in rows])),
        "mean_speed_ratio": float(np.mean([r["speed_ratio"] for r in rows])),
        "mean_return": float(np.mean([r["return"] for r in rows])),
    }


def resolve_agent(spec: str, scenario: str | None = None, *, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """The agent named by ``spec`` (``zoo:NAME``, a model file, ``expert``, ``random``) and its env.

    The env is the one the agent was trained on (its file says), or ``scenario`` (a library name or
    id) with the agent's observation and action types; ``expert`` and ``random`` need ``scenario``
    and use the ``kinematics`` observation with continuous actions.

    Returns:
        The agent and ``{"env_id", "obs_type", "action_type", "env_cfg"}``.
    """
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)
    from agents.base import load_agent

    env_id = None
    if scenario is not None:
        from agents.training import env_id as resolve

        env_id = resolve(scenario)
    if spec in ("expert", "random"):
        if env_id is None:
            raise ValueError(f"agent: {spec} needs --scenario (it drives whatever env it is given)")
        kinds = {"obs_type": "kinematics", "action_type": "continuous"}
        probe = gym.make(env_id, **kinds)
        agent = load_agent(spec, probe, seed=seed)
        probe.close()
        return agent, {"env_id": env_id, **kinds, "env_cfg": {}}
    agent = load_agent(spec)
    meta = dict(getattr(agent, "meta", {}) or {})
    if spec.startswith("zoo:"):
        from agents.zoo import zoo_entry

        e = zoo_entry(spec[4:])
        meta = {"env_id": e.env_id, "obs_type": e.obs_type, "action_type": e.action_type, "env_cfg": e.env_cfg}
    if not meta.get("env_id") and env_id is None:
        raise ValueError(f"agent: {spec} does not say which env it drives; pass --scenario")
    if env_id is not None and env_id != meta.get("env_id"):
        meta = {**meta, "env_id": env_id}
    return agent, {k: meta.get(k) for k in ("env_id", "obs_type", "action_type")} | {"env_cfg": meta.get("env_cfg") or {}}


def evaluate_named_agent(
    spec: str,
    *,
    scenario: str | None = None,
    episodes: int = 20,
    seed_start: int = 0,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Episodes of the agent named by ``spec`` on seeds ``seed_start, ...`` (see ``resolve_agent``).

    Returns:
        The episode rows and a description of what ran (agent, env id, types, seeds).
    """
    from drive_sim.config import require

    require(episodes >= 1, "episodes", f"must be at least 1, got {episodes}")
    require(seed_start >= 0, "seed_start", f"must be non-negative, got {seed_start}")
    agent, meta = resolve_agent(spec, scenario, seed=seed_start)
    extra = {"cfg": meta["env_cfg"]} if meta.get("env_cfg") else {}
    seeds = range(seed_start, seed_start + episodes)
    rows = evaluate_agent(agent, meta["env_id"], meta["obs_type"], meta["action_type"], seeds, progress=progress, **extra)
    return rows, {"agent": spec, "env_id": meta["env_id"], "obs_type": meta["obs_type"], "action_type": meta["action_type"]}
