"""SB3's ``VecEnv`` over drive-sim's batched worlds: a few processes, each stepping many worlds.

    vec = BatchedVecEnv("DriveSim/Highway-v0", {"obs_type": "lidar"}, n_envs=16, seed=1000, workers=2)

SB3's ``SubprocVecEnv`` runs one env per process and sends every step through a pipe; with
drive-sim's batched vector env (``envs.vector.DrivingVectorEnv``) one process steps many worlds
and moves their traffic in one call. ``BatchedVecEnv`` splits ``n_envs`` worlds over ``workers``
processes (one per core, pinned; ``workers=1`` runs in this process, with no pipe), each holding a
``DrivingVectorEnv`` in ``same_step`` autoreset mode, and gives SB3 what its vector envs give:
auto-reset with ``terminal_observation`` and ``TimeLimit.truncated`` in the ending step's info, and
the Monitor's ``episode`` entry (return, length, time) so SB3 logs episode returns.

World ``i`` is seeded ``seed + i`` at the first reset, as ``sb3_train.make_vec_env`` seeds its
envs, and each world is the same env as one made by ``gym.make``: a run on this vector env sees
the same episodes as one on ``SubprocVecEnv`` with the same ``n_envs`` and seed (a test checks
the rollouts are equal).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from agents.training.workers import _pin_worker, ignore_stop_signals_in_workers


class _Worlds:
    """One process's share: a ``DrivingVectorEnv`` and its episodes' running returns (what SB3's Monitor keeps)."""

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any], n: int) -> None:
        import gymnasium as gym

        import drive_sim  # noqa: F401  (registers the ids in a spawned worker)

        self.venv = gym.make_vec(env_id, num_envs=n, autoreset_mode="same_step", **dict(env_kwargs))
        self.n = n
        self._ret = np.zeros(n)
        self._len = np.zeros(n, dtype=np.int64)
        self._t0 = time.time()

    def reset(self, seeds: Sequence[int | None]) -> tuple[Any, list[dict[str, Any]]]:
        infos = self.venv.reset_worlds(list(seeds))
        self._ret[:], self._len[:] = 0.0, 0
        return _stack(self.venv.world_obs), infos

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        venv = self.venv
        env_infos, finals = venv.step_worlds(list(actions))
        rewards = venv.rewards.astype(np.float32)
        dones = venv.terminations | venv.truncations
        self._ret += venv.rewards
        self._len += 1
        infos = env_infos
        for i, (final_obs, final_info) in finals.items():
            info = dict(final_info)
            info["terminal_observation"] = final_obs
            info["TimeLimit.truncated"] = bool(venv.truncations[i] and not venv.terminations[i])
            # SB3's Monitor entry (its ep_info_buffer and rollout/ep_rew_mean read it).
            info["episode"] = {"r": round(float(self._ret[i]), 6), "l": int(self._len[i]), "t": round(time.time() - self._t0, 6)}
            infos[i] = info
            self._ret[i], self._len[i] = 0.0, 0
        return _stack(venv.world_obs), rewards, dones.copy(), infos

    def get_attr(self, name: str, indices: Sequence[int]) -> list[Any]:
        return [getattr(self.venv.envs[i], name) for i in indices]

    def close(self) -> None:
        """Close the worlds and end the workers."""
        self.venv.close()


def _stack(obs: list[Any]) -> Any:
    if isinstance(obs[0], dict):
        return {k: np.stack([o[k] for o in obs]) for k in obs[0]}
    return np.stack(obs)


def _worker(remote: Any, parent: Any, env_id: str, env_kwargs: Mapping[str, Any], n: int, rank: int) -> None:
    """A worker process: its worlds, driven by (command, data) messages until ``close`` or the pipe's end."""
    parent.close()
    ignore_stop_signals_in_workers()
    _pin_worker(rank)
    worlds = _Worlds(env_id, env_kwargs, n)
    try:
        while True:
            try:
                cmd, data = remote.recv()
            except EOFError:  # the trainer is gone
                break
            if cmd == "step":
                remote.send(worlds.step(data))
            elif cmd == "reset":
                remote.send(worlds.reset(data))
            elif cmd == "get_attr":
                remote.send(worlds.get_attr(*data))
            elif cmd == "close":
                break
    finally:
        worlds.close()
        remote.close()


def split(n_envs: int, workers: int) -> list[int]:
    """Worlds per worker: ``n_envs`` as evenly as possible over ``workers`` (the first ones get the extra)."""
    if not 1 <= workers <= n_envs:
        raise ValueError(f"workers: must be between 1 and n_envs ({n_envs}), got {workers}")
    base, extra = divmod(n_envs, workers)
    return [base + (1 if w < extra else 0) for w in range(workers)]


class BatchedVecEnv(VecEnv):
    """SB3 vector env over ``workers`` processes of batched drive-sim worlds (see the module docstring).

    Args:
        env_id: a drive-sim id.
        env_kwargs: ``gym.make`` arguments (``obs_type``, ``action_type``, ``cfg``...).
        n_envs: worlds in all.
        seed: world ``i`` is seeded ``seed + i`` at the first reset.
        workers: processes (1: this process; more: spawned, pinned one per core).
    """

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any], n_envs: int, seed: int, workers: int = 1) -> None:
        self._sizes = split(n_envs, workers)
        self._starts = np.cumsum([0, *self._sizes])
        self._local: _Worlds | None = None
        self._remotes: list[Any] = []
        self._procs: list[Any] = []
        if workers == 1:
            self._local = _Worlds(env_id, env_kwargs, n_envs)
            first = self._local.venv
            obs_space, act_space = first.single_observation_space, first.single_action_space
        else:
            ctx = mp.get_context("spawn")
            for rank, n in enumerate(self._sizes):
                remote, work = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(work, remote, env_id, dict(env_kwargs), n, rank), daemon=True)
                proc.start()
                work.close()
                self._remotes.append(remote)
                self._procs.append(proc)
            import gymnasium as gym

            import drive_sim  # noqa: F401

            probe = gym.make(env_id, **dict(env_kwargs))  # the spaces, without asking a worker
            obs_space, act_space = probe.observation_space, probe.action_space
            probe.close()
        self._actions: np.ndarray | None = None
        self._closed = False
        super().__init__(n_envs, obs_space, act_space)
        self.seed(seed)

    # ------------------------------------------------------------------ SB3 VecEnv
    def reset(self) -> Any:
        """Reset every world (world ``i`` with the seed ``seed()`` gave it); the stacked first observations."""
        seeds = self._seeds
        parts = []
        if self._local is not None:
            parts.append(self._local.reset(seeds))
        else:
            for w, remote in enumerate(self._remotes):
                remote.send(("reset", seeds[self._starts[w] : self._starts[w + 1]]))
            parts = [remote.recv() for remote in self._remotes]
        self._reset_seeds()
        self.reset_infos = [info for _, infos in parts for info in infos]
        return _concat([obs for obs, _ in parts], self.observation_space)

    def step_async(self, actions: np.ndarray) -> None:
        """Send each worker its worlds' actions (in this process: keep them for ``step_wait``)."""
        self._actions = np.asarray(actions)
        if self._local is None:
            for w, remote in enumerate(self._remotes):
                remote.send(("step", self._actions[self._starts[w] : self._starts[w + 1]]))

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Observations, rewards, dones and infos of every world, SB3's way (auto-reset, ``terminal_observation``)."""
        if self._local is not None:
            assert self._actions is not None
            parts = [self._local.step(self._actions)]
        else:
            parts = [remote.recv() for remote in self._remotes]
        obs = _concat([p[0] for p in parts], self.observation_space)
        rewards = np.concatenate([p[1] for p in parts])
        dones = np.concatenate([p[2] for p in parts])
        infos = [info for p in parts for info in p[3]]
        return obs, rewards, dones, infos

    def close(self) -> None:
        """Close the worlds and end the workers."""
        if self._closed:
            return
        self._closed = True
        if self._local is not None:
            self._local.close()
        for remote in self._remotes:
            try:
                remote.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self._procs:
            proc.join(timeout=10)

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """An attribute of the worlds' ``DrivingEnv`` (from their worker)."""
        idx = self._get_indices(indices)
        if self._local is not None:
            return self._local.get_attr(attr_name, idx)
        out = []
        for i in idx:
            w = int(np.searchsorted(self._starts, i, side="right") - 1)
            self._remotes[w].send(("get_attr", (attr_name, [i - int(self._starts[w])])))
            out.extend(self._remotes[w].recv())
        return out

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Not supported: the worlds live in worker processes."""
        raise NotImplementedError("BatchedVecEnv: set_attr is not supported (the worlds live in worker processes)")

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        """Not supported: the worlds live in worker processes."""
        raise NotImplementedError("BatchedVecEnv: env_method is not supported (the worlds live in worker processes)")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """No world is wrapped (they are bare ``DrivingEnv``s; the Monitor's entry is added here)."""
        return [False] * len(self._get_indices(indices))


def _concat(parts: list[Any], space: spaces.Space) -> Any:
    if isinstance(space, spaces.Dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in space.spaces}
    return np.concatenate(parts)
