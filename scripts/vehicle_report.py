"""Measure the ego car's top speed, 0-100 km/h time and braking distances; write docs/vehicle.md.

python scripts/vehicle_report.py --out docs/vehicle.md
"""

import argparse
import sys

from agents.reports.vehicle_report import write_vehicle_report

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the page to write (docs/vehicle.md: the committed page)")
    args = parser.parse_args()
    print(write_vehicle_report(args.out))
    sys.exit(0)
