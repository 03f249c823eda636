"""Render a chase-camera still and the agent's 84x84 camera view of each registered scenario into
docs/images/ (the pictures in the README).

    python scripts/render_stills.py --out docs/images [--steps 8]
"""

import argparse

from agents.reports.stills import render_stills

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the folder for the pictures (docs/images: the README's)")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    for path in render_stills(args.out, args.steps):
        print(path)
