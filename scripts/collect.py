"""Collect a labelled camera dataset: ``python scripts/collect.py --out data`` is ``drive-sim collect --out data``."""

from __future__ import annotations

import sys

from agents.cli import main

if __name__ == "__main__":
    sys.exit(main(["collect", *sys.argv[1:]]))
