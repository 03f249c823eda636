"""The ``drive-sim`` command: ``train``, ``perf`` and ``scenarios``.

Argument parsing only; the work is done by functions in the packages. Bad input ends with one
line naming what to fix and exit status 2. (argparse rather than tyro, which STYLE.md suggests:
tyro prints a multi-line panel on bad input, and the project promises one clear line.)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _build() -> argparse.ArgumentParser:
    from agents.perf import PerfConfig
    from agents.training import TrainConfig

    t, p = TrainConfig(), PerfConfig()
    root = _Parser(prog="drive-sim", description="Driving RL on a PyBullet world.")
    sub = root.add_subparsers(dest="command", required=True, parser_class=_Parser)

    tr = sub.add_parser("train", help="train an agent and write a run folder")
    tr.add_argument("--scenario", default=t.scenario, help=f"scenario name or DriveSim id (default {t.scenario})")
    tr.add_argument("--algo", default=t.algo, help=f"ppo, dqn or q (tabular Q-learning; dqn, q need --action discrete) (default {t.algo})")
    tr.add_argument("--obs", default=t.obs, help=f"lidar, camera or multi (default {t.obs})")
    tr.add_argument("--action", default=t.action, help=f"continuous or discrete (default {t.action})")
    tr.add_argument("--total-steps", type=int, default=t.total_steps, help=f"environment steps (default {t.total_steps})")
    tr.add_argument("--n-envs", type=int, default=t.n_envs, help=f"parallel environments (default {t.n_envs})")
    tr.add_argument("--seed", type=int, default=t.seed, help=f"run seed (default {t.seed})")
    tr.add_argument("--eval-episodes", type=int, default=t.eval_episodes, help=f"evaluation episodes (default {t.eval_episodes})")
    tr.add_argument("--out-dir", default=t.out_dir, help=f"where run folders go (default {t.out_dir})")
    tr.add_argument("--name", default=None, help="run folder name (default <scenario>-<algo>-<obs>-s<seed>)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")

    pf = sub.add_parser("perf", help="measure throughput and memory, write docs/performance.md")
    pf.add_argument("--repeats", type=int, default=p.repeats, help=f"repeats per figure (default {p.repeats})")
    pf.add_argument(
        "--memory-steps", type=int, default=p.memory_steps, help=f"steps of the memory check, 0 to skip (default {p.memory_steps})"
    )
    pf.add_argument("--cpu", type=int, default=p.cpu, help=f"core to pin to, -1 for none (default {p.cpu})")
    pf.add_argument("--out", default=p.out, help=f"report path, '' for none (default {p.out})")
    pf.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    pf.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("scenarios", help="list the scenario library")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``drive-sim`` command."""
    from drive_sim.config import ConfigError

    args = _build().parse_args(argv)
    try:
        if args.command == "train":
            from agents.training import TrainConfig, train

            cfg = TrainConfig(
                scenario=args.scenario,
                algo=args.algo,
                obs=args.obs,
                action=args.action,
                total_steps=args.total_steps,
                n_envs=args.n_envs,
                seed=args.seed,
                eval_episodes=args.eval_episodes,
                out_dir=args.out_dir,
                name=args.name,
            )
            run = train(cfg, progress=not args.no_progress)
            print(f"run folder: {run}")
        elif args.command == "perf":
            from agents.perf import PerfConfig, run_perf

            quick = {
                "lidar_steps": 100,
                "camera_steps": 20,
                "highway_env_steps": 2,
                "scenario_steps": 20,
                "planner_steps": 20,
                "repeats": 1,
                "memory_steps": 0,
            }
            sizes = quick if args.quick else {}
            cfg = PerfConfig(**{"repeats": args.repeats, "memory_steps": args.memory_steps, "cpu": args.cpu, "out": args.out, **sizes})
            res = run_perf(cfg, progress=not args.no_progress)
            for key, value in res.rates.items():
                print(f"{key:32s} {value:12,.1f} /s")
            for key, value in res.ratios.items():
                print(f"{key:32s} {value:12,.2f}")
            if res.memory:
                print(f"{'rss_growth_mb':32s} {res.memory['growth_mb']:12,.1f}")
            if cfg.out:
                print(f"report: {cfg.out}")
        elif args.command == "scenarios":
            from drive_sim.scenarios import load_scenario, scenario_names

            names = scenario_names()
            width = max(map(len, names))
            for name in names:
                print(f"{name:{width}s}  {load_scenario(name).description}")
    except (ConfigError, ValueError) as err:
        print(f"drive-sim: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        return 0
    except KeyboardInterrupt:
        print("drive-sim: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
