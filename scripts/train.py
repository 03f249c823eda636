"""Thin front end: `python scripts/train.py ...` is `drive-sim train ...`."""

import sys

from agents.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
