"""Measure the expert driver on 50 seeds per scenario and write docs/expert.md.

python scripts/expert_table.py --out docs/expert.md [--episodes 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys

from agents.reports.expert_page import write_expert_page


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50, help="seeds 0..N-1 per scenario (default 50)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--out", required=True, help="the page to write (docs/expert.md: the committed page; its .json beside it)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.episodes < 1 or args.workers < 1:
        print("expert_table: error: --episodes and --workers must be at least 1", file=sys.stderr)
        return 2
    rows = write_expert_page(args.out, episodes=args.episodes, workers=args.workers, progress=not args.no_progress)
    for r in rows:
        print(f"{r['env_id']:32s} success {r['success_rate']:.0%}  speed/limit {r['speed_ratio']:.2f}  plan {r['act_ms']:.1f} ms")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
