"""rl-zoo3's commands on drive-sim ids, with nothing else to pass.

    python -m agents.training.zoo3 train --algo ppo --env DriveSim/Highway-v0 -f logs
    python -m agents.training.zoo3 enjoy --algo ppo --env DriveSim/Highway-v0 -f logs --no-render
    python -m agents.training.zoo3 record_video --algo ppo --env DriveSim/Highway-v0 -f logs -n 400

Runs rl-zoo3's own ``train``, ``enjoy`` or ``record_video`` module after importing ``drive_sim``,
which registers the ids (``record_video`` has no ``--gym-packages``), and gives ``train`` the
hyperparameter file drive-sim ships for the algorithm (``agents/training/configs/rl_zoo3/``) unless
``--conf-file`` is given. The run folders are rl-zoo3's, and ``drive-sim evaluate``/``bench`` take
them with ``--allow-pickle``.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence

COMMANDS = ("train", "enjoy", "record_video")


def main(argv: Sequence[str] | None = None) -> int:
    """Run rl-zoo3's ``argv[0]`` with the rest of ``argv``; exit status 2 with one line for a bad command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"zoo3: error: the first argument is one of {', '.join(COMMANDS)} (then rl-zoo3's own arguments)", file=sys.stderr)
        return 2
    try:
        import rl_zoo3  # noqa: F401
    except ImportError:
        print("zoo3: error: rl-zoo3 is not installed; pip install 'drive-sim[zoo3]'", file=sys.stderr)
        return 2
    import drive_sim  # noqa: F401  (registers DriveSim/*)

    command, rest = args[0], args[1:]
    if command == "train" and not any(a in ("--conf-file", "-conf", "--conf") for a in rest):
        from agents.training.config import rl_zoo3_config
        from drive_sim.config import ConfigError

        algo = rest[rest.index("--algo") + 1] if "--algo" in rest and rest.index("--algo") + 1 < len(rest) else "ppo"
        try:
            rest = [*rest, "--conf-file", str(rl_zoo3_config(algo))]
        except ConfigError as err:
            print(f"zoo3: error: {err} (or pass --conf-file)", file=sys.stderr)
            return 2
    sys.argv = [f"rl_zoo3.{command}", *rest]
    runpy.run_module(f"rl_zoo3.{command}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
