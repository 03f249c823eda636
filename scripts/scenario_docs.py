"""Render a picture of every registered scenario and write the scenario page.

python scripts/scenario_docs.py --out docs/scenarios.md [--images docs/images/scenarios]
"""

import argparse

from agents.reports.scenario_docs import write_scenario_docs

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the page to write (docs/scenarios.md: the committed page)")
    parser.add_argument("--images", default=None, help="the pictures' folder (default: images/scenarios beside the page)")
    args = parser.parse_args()
    write_scenario_docs(args.out, args.images)
    print(args.out)
