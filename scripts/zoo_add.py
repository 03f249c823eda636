"""Copy a finished run's evaluated model into the pretrained zoo (agents/policies/zoo) under NAME.

python scripts/zoo_add.py RUN_DIR NAME "one-line description"
"""

from __future__ import annotations

import sys

import yaml

from agents.training.publish import add_to_zoo


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python scripts/zoo_add.py RUN_DIR NAME DESCRIPTION", file=sys.stderr)
        return 2
    run, name, description = argv
    try:
        with open(f"{run}/config.yaml", encoding="utf-8") as fh:
            t = yaml.safe_load(fh)["train"]
        command = f"drive-sim train --scenario {t['scenario']} --algo {t['algo']} --obs {t['obs']}"
        entry = add_to_zoo(run, name, description, command)
    except (OSError, ValueError, KeyError) as err:
        print(f"zoo_add: {err}", file=sys.stderr)
        return 2
    print(f"zoo:{entry.name} <- {run} ({entry.file})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
