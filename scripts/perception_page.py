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

NOTES = (
    "Why the lead distance misses: at 84 px a lead's distance shows only as the image row where it meets the road",
    "and as its width, and rounding either to the nearest pixel alone gives a mean error of about 1.1 m over this",
    "test set's leads (docs/design.md, \"Lead distance at 84 px\"); the 1.0 m target cannot be met at the env's camera",
    "size by any net. At 128 px the same bound is 0.74 m. The net's 3.4 m is three times that floor, though: more",
    "training, a larger input or a head made for it can still gain much.",
    "",
    "Cost: `drive-sim perf` times the shipped net at 1.6-1.9 ms per frame at batch 1 on one core with the driving heads",
    "(lane, lead, light; 1.3 ms in a quieter run), 3.1-4.2 ms with the segmentation decoder and 1.1-1.5 ms per frame",
    "in batches of 64, against the 1 ms target: missed so far. Per-operator overhead dominates at batch 1; int8 and a",
    "pruned student through a maintained runtime are the next issue items.",
    "",
    "The held-out scenario (merge, the on-ramp) is not learned: lane offset and heading are no better than the",
    'baseline there and its give-way lines (state "yield", seen in training only at roundabout entries) are never',
    "recognised. Fog and night cost the lane offset most (0.13 m against 0.06 m in clear weather).",
)


STUDY_NOTES: tuple[str, ...] = ()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a perception training run folder")
    p.add_argument("--data", required=True, help="its dataset folder")
    p.add_argument("--eval", required=True, help="drive-sim perception eval's JSON for the run's model")
    p.add_argument("--out", required=True, help="the page to write (docs/perception.md is the committed one)")
    p.add_argument("--studies", default=None, help="folder of the le-*, st-* and mt-uncertainty runs and pretrain-s0 (optional)")
    p.add_argument("--rl", default=None, help="scripts/rl_pretrain.py output folder (optional)")
    p.add_argument("--compress", default=None, help="drive-sim perception compress output folder (optional)")
    a = p.parse_args(argv)
    try:
        page = perception_page(
            a.run,
            a.data,
            a.eval,
            a.out,
            commands=COMMANDS,
            notes=NOTES,
            studies=a.studies,
            rl=a.rl,
            compress=a.compress,
            study_notes=STUDY_NOTES,
        )
        print(f"page: {page}")
    except (ValueError, OSError) as err:
        print(f"perception_page: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
