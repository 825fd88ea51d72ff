"""Flags that name nothing, report paths that cannot be written: exit 4 before any task.

Issue 10, items 4, 6, 9, 11 and 12.
"""

import json
import os
import subprocess

import pytest

PLAN = """
phase: 1
vars: {NAME: x}
pools: {llm: 2}
groups:
  - id: build
    tasks:
      - {id: "1.1", type: command, run: "touch ran.txt", pool: llm}
      - {id: "3.5", type: manual, instructions: "Rotate the key"}
"""


@pytest.fixture
def plan(pytester):
    pytester.makefile(".yaml", **{"phases/p1": PLAN})
    return pytester


def assert_usage_error(pytester, args, *expected, runner="runpytest"):
    result = getattr(pytester, runner)(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(list(expected))
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert not (pytester.path / "ran.txt").exists(), "a task ran despite the usage error"
    assert not (pytester.path / ".orch").exists() and not (pytester.path / "reports").exists()
    return result


@pytest.mark.parametrize("args, expected", [
    (["--confirm", "9.9"], "*--confirm 9.9: no such manual step in the plan (manual steps: 3.5)*"),
    (["--confirm", "3.55"], "*--confirm 3.55: no such manual step in the plan (manual steps: 3.5); "
                             "did you mean '3.5'?*"),
    (["--confirm", "1.1"], "*--confirm 1.1: task 1.1 is a command task, not a manual step (manual steps: 3.5)*"),
    (["--var", "NOPE=1"], "*--var NOPE: the plan has no variable NOPE (variables: NAME)*"),
    (["--var", "NAM=1"], "*--var NAM: the plan has no variable NAM (variables: NAME); did you mean 'NAME'?*"),
    (["--pool", "nosuch=2"], "*--pool nosuch: the plan has no pool nosuch (pools: llm)*"),
    (["--pool", "llm=20000"], "*--pool llm=20000: N must be a whole number from 1 to 10000*"),
    (["--phase", ",,"], "*--phase ',,': names nothing (expected ids, comma-separated)*"),
    (["--group", ","], "*--group ',': names nothing*"),
    (["--confirm", " , "], "*--confirm ' , ': names nothing*"),
    (["--phase", "11"], "*--phase 11: no such phase in the plan (phases: 1); did you mean '1'?*"),
    (["--group", "biuld"], "*--group biuld: no such group in the plan (groups: 1.build, build); "
                           "did you mean 'build'?*"),
])
def test_flag_that_names_nothing_is_a_usage_error(plan, args, expected):
    assert_usage_error(plan, args, expected)


def test_confirming_the_manual_step_still_works(plan):
    plan.runpytest("--confirm", "3.5").assert_outcomes(passed=2)


def test_var_of_a_variable_only_used_in_the_plan_is_accepted(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "touch ${OUT}"}
        """})
    pytester.runpytest("--var", "OUT=out.txt").assert_outcomes(passed=1)


def test_report_folder_that_is_a_file_is_refused_before_any_task(plan):
    plan.makefile(".ini", pytest="[pytest]\n")
    assert_usage_error(plan, ["--orch-report", "pytest.ini"], "*--orch-report pytest.ini is a file; name a folder*")


def test_report_folder_below_a_file_is_refused(plan):
    (plan.path / "notes.txt").write_text("x")
    assert_usage_error(plan, ["--orch-report", "notes.txt/sub"],
                       "*--orch-report notes.txt/sub cannot be created: notes.txt is a file; name a folder*")


def test_reports_symlink_out_of_the_project_is_refused(plan, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    os.symlink(outside, plan.path / "reports")
    result = plan.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*the report folder reports leads outside the project*"])
    assert list(outside.iterdir()) == []
    assert not (plan.path / "ran.txt").exists()


def test_orch_status_with_a_bad_plan_is_a_plan_error(pytester):
    pytester.makefile(".yaml", **{"phases/p1": 'phase: 1\ngroups:\n  - id: a\n    tasks:\n      - {id: "1.1"}\n'})
    result = pytester.runpytest("--orch-status")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*phases/p1.yaml:5: task '1.1' needs a 'type'*"])


def test_orch_status_without_a_plan_says_so(pytester):
    pytester.makepyfile(test_own="def test_own():\n    open('ran.txt', 'w').close()\n")
    result = assert_usage_error(pytester, ["--orch-status"],
                                "*--orch-status: there is no plan here (phases does not exist*")
    result.stdout.no_fnmatch_line("*passed*")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_plan_outside_the_project_keeps_the_root(pytester, workers):
    project = pytester.mkdir("project")
    (project / "pytest.ini").write_text("[pytest]\n")
    pytester.makefile(".yaml", **{"plans/extra": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "touch ran.txt"}
        """})
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    os.chdir(project)
    result = pytester.runpytest_subprocess("--plan", "../plans/extra.yaml", *workers)
    result.stdout.fnmatch_lines([f"rootdir: {project}", "configfile: pytest.ini"])
    assert result.ret == 0, result.stdout.str()
    assert (project / "ran.txt").exists()
    run = json.loads((project / "reports" / "run.json").read_text())
    assert [(t["id"], t["phase"], t["outcome"]) for t in run["tasks"]] == [("1.1", "1", "passed")]
    assert (project / ".orch").is_dir()
    outside = {p.name for p in pytester.path.iterdir()}
    assert not outside & {"ran.txt", ".orch", "reports"}, "the run wrote outside the project"
    result.stdout.fnmatch_lines(["phase 1 (Phase 1): 1 passed*"])


def test_plan_outside_the_project_reads_the_projects_ini_and_its_addopts(pytester):
    project = pytester.mkdir("project")
    (project / "pytest.ini").write_text("[pytest]\naddopts = -v --orch-report=out\n")
    pytester.makefile(".yaml", **{"plans/extra": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "true"}
        """})
    os.chdir(project)
    result = pytester.runpytest_subprocess("--plan", "../plans/extra.yaml")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([f"rootdir: {project}", "configfile: pytest.ini", "*1.1 PASSED*"])
    assert (project / "out" / "run.json").exists()
