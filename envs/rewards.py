"""Reward terms, registered by name in ``TERMS``; the reward is their weighted sum.

Every term is a function of a ``StepOutcome`` and the reward config, and is reported unweighted
in ``info["reward_terms"]`` so benchmarks can re-weight them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from envs.config import RewardConfig


@dataclass(frozen=True)
class StepOutcome:
    """What happened in one control step, as the reward sees it."""

    progress_m: float
    speed_mps: float
    speed_limit_mps: float
    control_period_s: float
    lane_offset_m: float
    lane_width_m: float
    collided: bool
    off_road: bool
    jerk_mps3: float


def _progress(o: StepOutcome, cfg: RewardConfig) -> float:
    return max(-1.0, min(1.0, o.progress_m / (o.speed_limit_mps * o.control_period_s)))


def _speed(o: StepOutcome, cfg: RewardConfig) -> float:
    return max(0.0, 1.0 - abs(o.speed_mps - o.speed_limit_mps) / o.speed_limit_mps)


def _lane_centring(o: StepOutcome, cfg: RewardConfig) -> float:
    return -min(1.0, (o.lane_offset_m / (0.5 * o.lane_width_m)) ** 2)


def _collision(o: StepOutcome, cfg: RewardConfig) -> float:
    return -1.0 if o.collided else 0.0


def _off_road(o: StepOutcome, cfg: RewardConfig) -> float:
    return -1.0 if o.off_road else 0.0


def _comfort(o: StepOutcome, cfg: RewardConfig) -> float:
    return -min(1.0, abs(o.jerk_mps3) / cfg.jerk_scale_mps3)


TERMS: dict[str, Callable[[StepOutcome, RewardConfig], float]] = {
    "progress": _progress,
    "speed": _speed,
    "lane_centring": _lane_centring,
    "collision": _collision,
    "off_road": _off_road,
    "comfort": _comfort,
}


def reward_terms(outcome: StepOutcome, cfg: RewardConfig) -> dict[str, float]:
    """Every registered term, unweighted."""
    return {name: fn(outcome, cfg) for name, fn in TERMS.items()}


def total_reward(terms: dict[str, float], cfg: RewardConfig) -> float:
    """Weighted sum of ``terms`` with the weights of ``cfg``."""
    weights = cfg.weights()
    return float(sum(weights[name] * value for name, value in terms.items()))
