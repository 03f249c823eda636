"""Write docs/results.md from finished benchmark run folders (and measure PPO throughput).

python scripts/results.py --out docs/results.md --runs runs/*              # the table and curves
python scripts/results.py --out docs/results.md --runs ... --throughput    # also measure PPO timesteps/s
"""

from __future__ import annotations

import argparse
import sys

from agents.reports.results import update_results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="*", default=[], help="finished run folders of shipped configs")
    ap.add_argument("--throughput", action="store_true", help="measure PPO training throughput (a few minutes)")
    ap.add_argument("--out", required=True, help="the page to write (docs/results.md: the committed page; its .json beside it)")
    ap.add_argument("--note", action="append", default=[], help="a line for 'Earlier attempts and changes' (kept)")
    args = ap.parse_args(argv)
    try:
        print(update_results(args.runs, out=args.out, throughput=args.throughput, notes=args.note))
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
