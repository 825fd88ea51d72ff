"""The terminal explains itself: a full reason with -v (item 13), why a run without failures exits 1 (item 15)."""

import pytest

LONG = "Open the repository settings, enable branch protection on main and require two reviews"


def plan(pytester, *tasks):
    body = "".join(f"      - {t}\n" for t in tasks)
    pytester.makefile(".yaml", **{"phases/p1": f"phase: 1\ngroups:\n  - id: a\n    tasks:\n{body}"})


@pytest.fixture(autouse=True)
def narrow_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def test_verbose_shows_a_long_skip_reason_in_full(pytester):
    plan(pytester, f'{{id: "1.1", type: manual, instructions: "{LONG}"}}',
         '{id: "1.2", type: command, run: "true", depends_on: ["1.1"]}')
    result = pytester.runpytest("-v")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*1.1 SKIPPED (manual step not confirmed: Open t*",
        f"    manual step not confirmed: {LONG}",
        "*1.2 SKIPPED (dependency 1.1 was not done*",
        "    dependency 1.1 was not done: manual step not confirmed",
        "",
        "*tasks that could not run*",
    ])


def test_a_reason_that_fits_is_not_repeated(pytester):
    plan(pytester, '{id: "1.1", type: manual, instructions: "Do it"}')
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*1.1 SKIPPED (manual step not confirmed: Do it)*"])
    assert sum("manual step not confirmed" in line for line in result.stdout.lines) == 2  # the line, the summary


def test_up_to_date_reason_in_full_under_xdist(pytester):
    plan(pytester, '{id: "1.1", type: command, run: "true"}')
    pytester.runpytest().assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("-v", "-n", "2")
    result.stdout.fnmatch_lines(["*1.1 * (up to date*", "    up to date (run 1 at *Z)"])


def test_closing_line_names_the_manual_step_that_awaits(pytester):
    plan(pytester, '{id: "1.1", type: command, run: "true"}',
         '{id: "3.5", type: manual, instructions: "Rotate the key"}',
         '{id: "3.6", type: command, run: "true", depends_on: ["3.5"]}')
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "1 manual step awaits: pytest --confirm 3.5" in result.stdout.lines[-1]
    assert "failed" not in result.stdout.lines[-1]
    result.assert_outcomes(passed=1, skipped=2)


def test_closing_line_without_a_blocked_task_is_pytest_own(pytester):
    plan(pytester, '{id: "1.1", type: command, run: "true"}')
    result = pytester.runpytest()
    assert result.ret == 0
    assert "await" not in result.stdout.lines[-1] and "1 passed" in result.stdout.lines[-1]
