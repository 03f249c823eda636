"""Render a picture of every registered scenario and write docs/scenarios.md.

python scripts/scenario_docs.py
"""

from agents.reports.scenario_docs import write_scenario_docs

if __name__ == "__main__":
    write_scenario_docs()
    print("docs/scenarios.md")
