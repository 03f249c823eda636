"""A run's pictures: its learning curve (``learning_curve.png``), and its rates drawn into any figure (docs/results.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from drive_sim.files import atomic_write, read_csv


def draw_rates(ax: Any, run: Path) -> None:
    """Training success and route completion (rolling means) and validation rounds of ``run`` on ``ax`` (0-1 scale)."""
    episodes = read_csv(run / "train_episodes.csv")
    if episodes:
        step = np.array([float(r["step"]) for r in episodes])
        k = max(1, min(100, len(episodes) // 10))
        for key, color, label in (("route_completion", "tab:gray", "train route completion"), ("success", "tab:blue", "train success")):
            smooth = np.convolve([float(r[key]) for r in episodes], np.ones(k) / k, "valid")
            ax.plot(step[k - 1 :], smooth, color=color, lw=1, label=f"{label} ({k}-ep. mean)")
    evals = read_csv(run / "evaluations.csv")
    if evals:
        es = [float(r["step"]) for r in evals]
        ax.plot(es, [float(r["success_rate"]) for r in evals], "o-", ms=3, color="tab:green", label="validation success")
        ax.plot(es, [float(r["mean_route_completion"]) for r in evals], "s-", ms=3, color="tab:orange", label="validation route completion")
    ax.set_ylim(-0.02, 1.02)
    _steps_axis(ax)
    ax.legend(loc="lower right", fontsize=7)


def _steps_axis(ax: Any) -> None:
    from matplotlib.ticker import EngFormatter

    ax.set_xlabel("environment steps")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 200k, 1M


def plot_learning_curve(run: Path) -> Path | None:
    """``learning_curve.png``: training return, and success/route completion (training and validation), against steps."""
    episodes = read_csv(run / "train_episodes.csv")
    if not episodes and not (run / "evaluations.csv").is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if episodes:
        step = np.array([float(r["step"]) for r in episodes])
        ret = np.array([float(r["return"]) for r in episodes])
        k = max(1, min(100, len(ret) // 10))
        axes[0].plot(step, ret, ".", ms=2, alpha=0.3, color="tab:blue")
        axes[0].plot(step[k - 1 :], np.convolve(ret, np.ones(k) / k, "valid"), color="tab:blue", label=f"return ({k}-episode mean)")
        axes[0].legend(loc="lower right", fontsize=8)
    _steps_axis(axes[0])
    axes[0].set_ylabel("episode return")
    draw_rates(axes[1], run)
    fig.suptitle(run.name)
    fig.tight_layout()
    out = run / "learning_curve.png"
    atomic_write(out, lambda p: fig.savefig(p, dpi=90, format="png"))
    plt.close(fig)
    return out
