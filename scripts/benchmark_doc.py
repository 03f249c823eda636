"""Write docs/benchmark.md: the leaderboard from a finished `drive-sim bench` folder, and worker scaling.

python scripts/benchmark_doc.py --out docs/benchmark.md --results results/leaderboard   # the leaderboard (and its plots)
python scripts/benchmark_doc.py --out docs/benchmark.md --scaling                       # measure 1 vs 2 workers (~10 min)
python scripts/benchmark_doc.py --out docs/benchmark.md --results ... --video NAME.mp4  # also keep some worst-episode videos
python scripts/benchmark_doc.py --out docs/benchmark.md                                 # the page again from its .json

Both parts are kept in docs/benchmark.json, so either can be refreshed alone (agents.reports.benchmark_page).
"""

from __future__ import annotations

import argparse
import sys

from agents.reports.benchmark_page import write_benchmark_page


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", help="a finished drive-sim bench folder (summary.json, bench.json, plots)")
    ap.add_argument("--command", default="", help="the drive-sim bench command that made --results (default: from bench.json)")
    ap.add_argument("--note", default="", help="a sentence about the run (wall clock, interruptions)")
    ap.add_argument("--video", action="append", default=[], help="a worst-episode video of --results to keep in docs/videos/benchmark")
    ap.add_argument("--scaling", action="store_true", help="measure episodes/min with 1 and 2 workers")
    ap.add_argument("--repeats", type=int, default=3, help="scaling repeats (default 3)")
    ap.add_argument("--out", required=True, help="the page to write (docs/benchmark.md: the committed page; its .json beside it)")
    args = ap.parse_args(argv)
    try:
        out = write_benchmark_page(
            args.out,
            results=args.results,
            command=args.command,
            note=args.note,
            videos=args.video,
            scaling=args.scaling,
            repeats=args.repeats,
        )
    except ValueError as err:
        print(f"benchmark_doc: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
