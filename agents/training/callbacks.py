"""The training callback: what a run records while SB3 trains, and how it stops.

One callback (rather than SB3's CheckpointCallback + EvalCallback) because the pieces share the
points where a model is consistent, and ours differ from SB3's in ways that matter here:
validation runs on fixed held-out seeds (SB3's EvalCallback resets an env it seeds once) with the
one episode loop and scores (``agents.evaluation``), models are written through
``agents.policies.sb3.save_model`` (no pickle, normalisation statistics inside), and a
signal stops training at a step whose state can be resumed exactly.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from agents.evaluation.episodes import evaluate_agent
from agents.evaluation.metrics import EpisodeSummary, run_scores
from agents.policies.base import AgentEnv
from agents.training.config import VALIDATION_SEED_BASE
from agents.training.runs import read_status, set_status, status_extras
from drive_sim.files import append_csv, atomic_write, read_csv, write_csv


class RunCallback(BaseCallback):
    """Env metrics to TensorBoard, episode rows, periodic checkpoints, validation with best model, stop on signal.

    Checkpoints and validation run at the start of a rollout, after the previous update, where the
    model, its step count and (off-policy) its replay buffer agree.
    """

    def __init__(
        self,
        run: Path,
        train: Any,
        meta: Mapping[str, Any],
        stop: threading.Event,
        n_envs: int,
        *,
        progress: bool = False,
        say: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.progress = progress
        self.say = say or (lambda _msg: None)
        self._bar: Any = None
        self._status_at = 0.0
        self.run = run
        self.cfg = train
        self.meta = dict(meta)
        self.stop = stop
        self.n_envs = n_envs
        self.stopped = False
        self.consistent_steps = 0
        self._ret = np.zeros(n_envs)
        self._len = np.zeros(n_envs, dtype=np.int64)
        self._ratio = np.zeros(n_envs)
        self._recent: deque[dict[str, Any]] = deque(maxlen=100)
        self._pending: list[dict[str, Any]] = []
        self._next_ckpt = 0
        self._next_eval = 0
        self._best: tuple[float, float, float] | None = None

    def _init_callback(self) -> None:
        cfg = self.cfg
        n = self.model.num_timesteps
        self.consistent_steps = n
        every_c, every_e = cfg.checkpoint_every_steps, cfg.eval_every_steps
        self._next_ckpt = (n // every_c + 1) * every_c if every_c else 0
        self._next_eval = (n // every_e + 1) * every_e if every_e else 0
        rows = read_csv(self.run / "evaluations.csv")
        if rows:
            self._best = max(score_row(r) for r in rows)

    def _on_training_start(self) -> None:
        if self.progress:
            from tqdm import tqdm

            # The whole run's steps, from where it stands: a resumed run's bar starts at its step count. An
            # on-policy run ends with its last whole rollout (SB3 does not cut one short), so 1,000,000 becomes 1,001,472.
            n, total = self.model.num_timesteps, self.cfg.total_steps
            if isinstance(self.model, OnPolicyAlgorithm):
                rollout = self.model.n_steps * self.n_envs
                total = -(-total // rollout) * rollout
            self._bar = tqdm(total=total, initial=n, desc="training", unit="step", dynamic_ncols=True)

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _on_rollout_start(self) -> None:
        n = self.model.num_timesteps
        self.consistent_steps = n
        cfg = self.cfg
        if self._next_ckpt and n >= self._next_ckpt:
            ckpt = self.write_checkpoint(self.model, f"step_{n:09d}")
            set_status(self.run, "running", n, ckpt, **status_extras(read_status(self.run)))
            self._next_ckpt = (n // cfg.checkpoint_every_steps + 1) * cfg.checkpoint_every_steps
        if self._next_eval and n >= self._next_eval:
            self._validate(n)
            self._next_eval = (n // cfg.eval_every_steps + 1) * cfg.eval_every_steps
        self.flush_episodes()
        if time.monotonic() - self._status_at >= STATUS_EVERY_S:  # status.json says where the run is, not where it last checkpointed
            status = read_status(self.run)
            set_status(self.run, "running", n, status.get("checkpoint"), **status_extras(status))
            self._status_at = time.monotonic()

    def validate_if_due(self) -> None:
        """Validate the final model when the last validation round is older than it."""
        n, every = self.model.num_timesteps, self.cfg.eval_every_steps
        if every and self._next_eval - every < n:
            self._validate(n)

    def _on_step(self) -> bool:
        if self._bar is not None:
            if self._bar.n + self.n_envs > self._bar.total:
                self._bar.total = self._bar.n + self.n_envs
            self._bar.update(self.n_envs)
        infos = self.locals["infos"]
        rewards = self.locals["rewards"]
        dones = self.locals["dones"]
        self._ret += rewards if not hasattr(self.training_env, "get_original_reward") else self.training_env.get_original_reward()
        self._len += 1
        for i, info in enumerate(infos):
            self._ratio[i] += info["speed_mps"] / max(info["speed_limit_mps"], 1e-6)
            if dones[i]:
                row = {
                    "step": int(self.num_timesteps),
                    "env": i,
                    "return": round(float(self._ret[i]), 4),
                    "length": int(self._len[i]),
                    "success": int(bool(info["is_success"])),
                    "collided": int(bool(info["collided"])),
                    "off_road": int(bool(info["off_road"])),
                    "route_completion": round(float(info["route_completion"]), 4),
                    "speed_ratio": round(float(self._ratio[i] / max(self._len[i], 1)), 4),
                }
                self._recent.append(row)
                self._pending.append(row)
                self._ret[i], self._len[i], self._ratio[i] = 0.0, 0, 0.0
        if self.stop.is_set():
            self.stopped = True
            if not isinstance(self.model, OnPolicyAlgorithm):
                # Off-policy: this step's transition is not stored yet (SB3 stores it after the callback).
                self.consistent_steps = self.num_timesteps - self.n_envs
            return False
        return True

    def _on_rollout_end(self) -> None:
        if self._recent:
            for key in ("success", "collided", "off_road", "route_completion", "speed_ratio"):
                self.logger.record(f"env/{key}", float(np.mean([r[key] for r in self._recent])))

    def flush_episodes(self) -> None:
        """Append the episodes finished since the last flush to ``train_episodes.csv``."""
        append_csv(self.run / "train_episodes.csv", self._pending)
        self._pending = []

    def write_checkpoint(self, model: Any, name: str) -> str:
        """``checkpoints/<name>.zip`` (+ replay buffer); returns its path relative to the run."""
        from agents.policies.sb3 import save_model
        from agents.training.sb3_train import save_replay_buffer, vecnormalize_state

        rel = f"checkpoints/{name}.zip"
        path = self.run / rel
        atomic_write(path, lambda p: save_model(model, p, self.meta, vecnormalize_state(self.training_env)))
        if getattr(model, "replay_buffer", None) is not None:
            atomic_write(path.with_suffix(".replay.npz"), lambda p: save_replay_buffer(model.replay_buffer, p))
        return rel

    def _validate(self, steps: int) -> None:
        from agents.policies.sb3 import SB3Agent, save_model
        from agents.training.sb3_train import vecnormalize_state

        cfg = self.cfg
        norm = vecnormalize_state(self.training_env)
        agent = SB3Agent(self.model, self.meta, norm)
        seeds = range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + cfg.val_episodes)
        target = AgentEnv(self.meta["env_id"], cfg.obs, cfg.action, self.meta.get("env_cfg") or {})
        self.say(f"validation at step {steps:,}: {len(seeds)} episodes on seeds {seeds[0]}-{seeds[-1]} ...")
        row = validation_row(steps, evaluate_agent(agent, target, seeds))
        for key in VALIDATION_SCORES:
            self.logger.record(f"eval/{key}", row[key])
        self.logger.dump(steps)  # now: the run may stop before SB3's next dump
        score = score_row(row)
        best = self._best is None or score > self._best
        self.say(f"validation at step {steps:,}: {validation_text(row)}" + ("  (best so far: best_model.zip)" if best else ""))
        if best:
            self._best = score
            atomic_write(self.run / "best_model.zip", lambda p: save_model(self.model, p, self.meta, norm))
        rows = read_csv(self.run / "evaluations.csv") + [row]
        write_csv(self.run / "evaluations.csv", rows)


#: The scores of a validation round: ``evaluations.csv``'s columns after ``step`` and TensorBoard's ``eval/`` tags.
VALIDATION_SCORES = ("success_rate", "collision_rate", "mean_route_completion", "mean_speed_ratio", "mean_return")


def validation_row(steps: int, episodes: list[EpisodeSummary]) -> dict[str, Any]:
    """One ``evaluations.csv`` row from a validation round's episodes (scored as their ``brief`` rows, like the final test)."""
    s = run_scores([e.brief() for e in episodes])
    return {"step": steps, **{k: round(s[k], 4) for k in VALIDATION_SCORES}}


def validation_text(row: Mapping[str, Any]) -> str:
    """A validation round's scores as the phase line shows them."""
    return (
        f"success {float(row['success_rate']):.0%}, collisions {float(row['collision_rate']):.0%}, "
        f"route {float(row['mean_route_completion']):.2f}, speed/limit {float(row['mean_speed_ratio']):.2f}, "
        f"return {float(row['mean_return']):.1f}"
    )


#: How often status.json is brought up to date while training [s].
STATUS_EVERY_S = 10.0


def score_row(row: Mapping[str, Any]) -> tuple[float, float, float]:
    """Validation ranking: success rate, then route completion, then return."""
    return (float(row["success_rate"]), float(row["mean_route_completion"]), float(row["mean_return"]))
