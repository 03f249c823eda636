"""Every hostile-input case of agents/reports/reliability.py: exit 2, one line naming the file or field, no traceback,
no code from a file run, nothing already written changed (issue 16). docs/reliability.md is the same run as a page."""

from __future__ import annotations

import pytest

from agents.reports.reliability import CASES, make_fixtures, run_case


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return make_fixtures(tmp_path_factory.mktemp("fixtures"))


def test_the_cases_cover_every_surface_the_issue_names():
    surfaces = {c.surface for c in CASES}
    assert {"train", "resume", "model files", "agent files", "episode logs", "bench", "replay", "outputs"} <= surfaces
    assert len({c.name for c in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[f"{c.surface}: {c.name}" for c in CASES])
def test_hostile_input_is_one_line_and_loses_nothing(case, fixtures):
    outcome = run_case(case, fixtures)
    assert outcome.handled, f"{case.surface}: {case.name}: {outcome.why}\n{outcome.stderr[-1500:]}"
