"""Run every hostile-input case against the commands and write the reliability page.

python scripts/reliability.py --out docs/reliability.md [--before-tree OLD_CHECKOUT] [--workers 2]

--before-tree runs the same cases against another checkout's packages (git worktree add OLD REV).
"""

from __future__ import annotations

import argparse
import sys

from agents.reports.reliability import CASES, run_cases, write_reliability_page


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the page to write (docs/reliability.md: the committed page)")
    ap.add_argument("--before-tree", default=None, help="a checkout whose packages run the cases too (the 'before' column)")
    ap.add_argument("--before-label", default="", help="how the page names the before checkout (a commit)")
    ap.add_argument("--workers", type=int, default=2, help="cases at a time (default 2)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        print("reliability: error: --workers must be at least 1", file=sys.stderr)
        return 2
    after = run_cases(CASES, workers=args.workers)
    before = run_cases(CASES, python_path=args.before_tree, workers=args.workers) if args.before_tree else None
    command = f"python scripts/reliability.py --out {args.out}" + (
        f" --before-tree <checkout of {args.before_label or 'the old commit'}>" if args.before_tree else ""
    )
    out = write_reliability_page(args.out, after, before, command=command)
    bad = [o for o in after if not o.handled]
    for o in bad:
        print(f"not handled: {o.case.surface}: {o.case.name}: {o.why}")
    print(f"{len(after) - len(bad)} of {len(after)} cases handled well; page: {out}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
