"""``DrivingVectorEnv``: many worlds stepped in one process, their traffic in one batched call.

    envs = gym.make_vec("DriveSim/Highway-v0", num_envs=16, obs_type="lidar")   # the ids' vector entry point
    obs, infos = envs.reset(seed=0)          # world i gets seed 0 + i, as in Gymnasium's SyncVectorEnv
    obs, rewards, terminated, truncated, infos = envs.step(envs.action_space.sample())

A native Gymnasium ``VectorEnv`` (``gymnasium.vector.VectorEnv``) holding ``num_envs`` worlds,
each a ``DrivingEnv`` with its own PyBullet client. A step runs each world up to its traffic step
(``DrivingEnv.begin_step``: the action's control, the weather, the traffic window), moves the open
road traffic of every world in one batched call (``drive_sim.traffic.step_traffic``, arrays of
shape (worlds, vehicles)), then runs each world's physics, observation, reward and info
(``DrivingEnv.end_step``). Every world's results are bit-identical to a ``gym.make`` env of the
same id and seed (a test checks it over several ids and observations), because both run the same
code and the batched traffic only adds a leading axis.

One client per world, not several worlds in one client kept apart by collision filters: measured
on this machine, 16 cars in one client cost 47 us a physics step each against 22 us alone, and a
64-beam ray batch 64 us a world against 35 us (Bullet's broad phase grows with the scene), so
sharing a client makes each world slower (docs/design.md, "Batched vector env").

Autoreset follows Gymnasium 1.x: ``autoreset_mode`` ``next_step`` (the default: the step after an
episode ends resets that world, returning its first observation with reward 0 and no end flags;
its action is ignored) or ``same_step`` (the ending step returns the next episode's first
observation, with ``final_obs`` and ``final_info`` in ``infos``). Infos are Gymnasium's dict of
arrays with ``_key`` masks, as ``SyncVectorEnv`` builds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from drive_sim.network_traffic import NetworkTraffic
from drive_sim.scenarios import Scenario
from drive_sim.traffic import step_traffic
from envs.config import EnvConfig
from envs.driving_env import DrivingEnv


class DrivingVectorEnv(VectorEnv):
    """``num_envs`` drive-sim worlds of one scenario in this process (see the module docstring).

    Args:
        num_envs: worlds (1 or more).
        scenario, obs_type, action_type, cfg, config, render_mode: as for ``DrivingEnv``; every
            world gets the same.
        autoreset_mode: ``next_step`` (default) or ``same_step`` (a ``gymnasium.vector.AutoresetMode`` or its value).
        max_episode_steps: accepted for ``gym.make_vec``, which passes a spec's; must be None or
            the scenario's own horizon (drive-sim envs end episodes at their own time limit).
    """

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | Scenario = "highway",
        obs_type: str | None = None,
        action_type: str | None = None,
        cfg: EnvConfig | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        config: Mapping[str, Any] | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
    ) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs: must be an integer of 1 or more, got {num_envs!r}")
        modes = {"nextstep": AutoresetMode.NEXT_STEP, "samestep": AutoresetMode.SAME_STEP}  # also Gymnasium's "NextStep"
        mode = autoreset_mode if isinstance(autoreset_mode, AutoresetMode) else modes.get(str(autoreset_mode).lower().replace("_", ""))
        if mode not in modes.values():
            shown = autoreset_mode.value if isinstance(autoreset_mode, AutoresetMode) else autoreset_mode
            raise ValueError(f"autoreset_mode: {shown!r} is not allowed; allowed: next_step, same_step")
        self.envs = [DrivingEnv(scenario, obs_type, action_type, cfg, render_mode, config) for _ in range(num_envs)]
        first = self.envs[0]
        if max_episode_steps is not None and max_episode_steps != first.horizon_steps:
            raise ValueError(
                f"max_episode_steps: {max_episode_steps} differs from the scenario's horizon of {first.horizon_steps} steps; "
                "change the scenario's time_limit_s instead"
            )
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "autoreset_mode": mode, "render_fps": first.metadata["render_fps"]}
        self.autoreset_mode = mode
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        #: Whether the worlds' traffic steps in one batched call (open roads); lane-graph traffic steps per world.
        self.batched_traffic = not isinstance(first.world.traffic, NetworkTraffic)
        self._dt = first.world.cfg.control_period_s
        self._env_obs: list[Any] = [None] * num_envs
        self._observations = create_empty_array(self.single_observation_space, n=num_envs, fn=np.zeros)
        self._rewards = np.zeros(num_envs, dtype=np.float64)
        self._terminations = np.zeros(num_envs, dtype=np.bool_)
        self._truncations = np.zeros(num_envs, dtype=np.bool_)
        self._autoreset_envs = np.zeros(num_envs, dtype=np.bool_)

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset every world: ``seed`` None, an int (world i gets ``seed + i``) or one seed per world."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed: a list of seeds needs one per world ({self.num_envs}), got {len(seeds)}")
        infos = self._batch_infos({}, self.reset_worlds(seeds, options))
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        return self._copy_obs(), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every world (a world whose episode ended on the last step resets instead, in ``next_step`` mode)."""
        env_infos, finals = self.step_worlds(list(iterate(self.action_space, actions)))
        infos: dict[str, Any] = {}
        for i, (obs, info) in finals.items():
            infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, i)
        infos = self._batch_infos(infos, env_infos)
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        return self._copy_obs(), self._rewards.copy(), self._terminations.copy(), self._truncations.copy(), infos

    def reset_worlds(self, seeds: Sequence[int | None], options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Reset world ``i`` with ``seeds[i]``; returns each world's info, not yet batched (observations in ``world_obs``)."""
        self._terminations[:] = False
        self._truncations[:] = False
        self._autoreset_envs[:] = False
        env_infos = []
        for i, (env, s) in enumerate(zip(self.envs, seeds, strict=True)):
            self._env_obs[i], info = env.reset(seed=s, options=options)
            env_infos.append(info)
        return env_infos

    def step_worlds(self, actions: Sequence[Any]) -> tuple[list[dict[str, Any]], dict[int, tuple[Any, dict[str, Any]]]]:
        """Step every world with its action; the results as lists, not yet batched (``step`` batches them; the SB3 adapter does not).

        Leaves each world's observation in ``world_obs`` and the rewards and end flags in
        ``rewards``, ``terminations``, ``truncations``. Returns each world's info and, in
        ``same_step`` mode, {world: (final observation, final info)} of the episodes that ended
        (their ``world_obs`` and info are already the next episode's first).
        """
        next_step = self.autoreset_mode == AutoresetMode.NEXT_STEP
        env_infos: list[Any] = [None] * self.num_envs
        finals: dict[int, tuple[Any, dict[str, Any]]] = {}
        stepping = []
        for i in range(self.num_envs):
            if next_step and self._autoreset_envs[i]:
                self._env_obs[i], env_infos[i] = self.envs[i].reset()
                self._rewards[i] = 0.0
                self._terminations[i] = False
                self._truncations[i] = False
            else:
                stepping.append(i)
        # Each world up to its traffic step; the open road traffic of all of them in one call; the rest.
        on_road = [(i, self.envs[i].begin_step(actions[i])) for i in stepping]
        batch = [(i, e) for i, e in on_road if e is not None]
        if batch and self.batched_traffic:
            ego = np.asarray([e for _, e in batch], dtype=np.float64)
            step_traffic([self.envs[i].world.traffic for i, _ in batch], self._dt, ego[:, 0], ego[:, 1], ego[:, 2])
        else:
            for i, e in batch:
                self.envs[i].world.traffic.step(self._dt, *e)
        for i in stepping:
            env = self.envs[i]
            obs, reward, terminated, truncated, info = env.end_step()
            if not next_step and (terminated or truncated):
                finals[i] = (obs, info)
                obs, info = env.reset()
            self._env_obs[i], self._rewards[i], self._terminations[i], self._truncations[i] = obs, reward, terminated, truncated
            env_infos[i] = info
        self._autoreset_envs = np.logical_or(self._terminations, self._truncations)
        return env_infos, finals

    @property
    def world_obs(self) -> list[Any]:
        """Each world's latest observation (references; ``step`` returns them batched and copied)."""
        return self._env_obs

    @property
    def rewards(self) -> np.ndarray:
        """The last step's rewards (the array itself)."""
        return self._rewards

    @property
    def terminations(self) -> np.ndarray:
        """The last step's terminations (the array itself)."""
        return self._terminations

    @property
    def truncations(self) -> np.ndarray:
        """The last step's truncations (the array itself)."""
        return self._truncations

    def render(self) -> tuple[Any, ...] | None:
        """Each world's frame (``render_mode="rgb_array"``), else None."""
        if self.render_mode is None:
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        """Close every world (its PyBullet client)."""
        for env in getattr(self, "envs", ()):  # none yet when the constructor refused its arguments
            env.close()

    # ------------------------------------------------------------------ helpers
    def _batch_infos(self, infos: dict[str, Any], env_infos: list[dict[str, Any]]) -> dict[str, Any]:
        """Gymnasium's dict of arrays with ``_key`` masks (what ``VectorEnv._add_info`` builds), a key at a time.

        ``_add_info`` goes world by world and key by key (about 60 us a world for drive-sim's
        infos); every world here has the same keys, so each key becomes one array at once. A key
        that not every world has (``final_obs`` in ``same_step`` mode) goes through ``_add_info``.
        """
        n = self.num_envs
        everywhere = np.ones(n, dtype=np.bool_)
        first = env_infos[0]
        shared = [k for k in first if all(k in info for info in env_infos)]
        for key in shared:
            values = [info[key] for info in env_infos]
            v0 = values[0]
            if isinstance(v0, dict) and all(isinstance(v, dict) for v in values):
                infos[key] = self._batch_infos(infos.get(key, {}), values)
            elif type(v0) in (int, float, bool) or isinstance(v0, np.number):
                infos[key] = np.array(values, dtype=type(v0))
            elif isinstance(v0, np.ndarray):
                infos[key] = np.stack(values).astype(v0.dtype, copy=False)
            else:
                array = np.empty(n, dtype=object)  # strings and the like, one object a world
                for i, v in enumerate(values):
                    array[i] = v
                infos[key] = array
            infos[f"_{key}"] = everywhere.copy()
        for i, info in enumerate(env_infos):
            rest = {k: v for k, v in info.items() if k not in shared}
            if rest:
                infos = self._add_info(infos, rest, i)
        return infos

    def _copy_obs(self) -> Any:
        obs = self._observations
        return {k: v.copy() for k, v in obs.items()} if isinstance(obs, dict) else obs.copy()
