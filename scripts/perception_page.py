"""docs/perception.md from a dataset, a training run and its evaluation.

python scripts/perception_page.py --run runs/perception-s0 --data data --eval perception_eval.json --out docs/perception.md
"""

from __future__ import annotations

import argparse
import sys

from agents.reports.perception_page import perception_page

COMMANDS = (
    "drive-sim collect --scenarios all --episodes 600 --out data/          # 2 workers",
    "drive-sim perception train --data data/ --out-dir runs                # runs/perception-s0/",
    "drive-sim perception eval --model runs/perception-s0/model.pt --data data/ --out perception_eval.json",
    "python scripts/perception_page.py --run runs/perception-s0 --data data --eval perception_eval.json --out docs/perception.md",
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a perception training run folder")
    p.add_argument("--data", required=True, help="its dataset folder")
    p.add_argument("--eval", required=True, help="drive-sim perception eval's JSON for the run's model")
    p.add_argument("--out", required=True, help="the page to write (docs/perception.md is the committed one)")
    a = p.parse_args(argv)
    try:
        print(f"page: {perception_page(a.run, a.data, a.eval, a.out, commands=COMMANDS)}")
    except (ValueError, OSError) as err:
        print(f"perception_page: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
