"""Thin front end: `python scripts/perf.py ...` is `drive-sim perf ...`."""

import sys

from agents.cli import main

if __name__ == "__main__":
    sys.exit(main(["perf", *sys.argv[1:]]))
