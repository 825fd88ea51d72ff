"""--orch-export github|gitlab: the jobs, their needs, real validators, and the refusals."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent

PLAN = {
    "phases/p1": """
        phase: 1
        name: Foundations
        groups:
          - id: cfg
            tasks:
              - {id: "1.1", type: config_edit, file: settings.json, set: {a.b: 1}}
        """,
    "phases/p2": """
        phase: 2
        depends_on: [1]
        groups:
          - id: a
            tasks:
              - {id: "2.1", type: command, run: "python -c pass"}
          - id: b
            depends_on: [a]
            tasks:
              - {id: "2.2", type: command, run: "python -c pass"}
        checkpoints:
          - {id: "2.check", type: command, run: "python -c pass"}
        """,
    "phases/p3": """
        phase: 3
        groups:
          - id: c
            tasks:
              - {id: "3.1", type: command, run: "python -c pass", depends_on: ["1.1"]}
        """,
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", **PLAN)
    pytester.makefile(".json", settings='{"a": {"b": 0}}')
    pytester.makeini('[pytest]\norch_ci_setup =\n    python -m pip install -e ".[test]"\n    echo ready\n')
    return pytester


def _validator(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is in the test extra: pip install -e '.[test]'"
    return found


@functools.cache
def _can_unshare_net() -> bool:
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("unshare")):
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False).returncode == 0


def _offline(cmd: list[str]) -> list[str]:
    """Run a validator with no network at all where we can (root: a new network namespace of its own).

    Elsewhere the validators still read only their vendored schemas (check-jsonschema's --builtin-schema)."""
    return ["unshare", "--net", *cmd] if _can_unshare_net() else cmd


def _check(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_offline(cmd), capture_output=True, text=True, timeout=120, check=False)


def test_github_one_job_per_phase_with_needs_from_the_graph(project):
    result = project.runpytest("--orch-export", "github")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["wrote .github/workflows/phases.yml: 3 jobs and orch-merge, one per phase"])
    workflow = yaml.safe_load((project.path / ".github/workflows/phases.yml").read_text())
    jobs = workflow["jobs"]
    assert list(jobs) == ["orch-phase-1", "orch-phase-2", "orch-phase-3", "orch-merge"]
    assert "needs" not in jobs["orch-phase-1"]
    assert jobs["orch-phase-2"]["needs"] == ["orch-phase-1"]  # phase depends_on
    assert jobs["orch-phase-3"]["needs"] == ["orch-phase-1"]  # a task's depends_on across phases
    assert jobs["orch-merge"]["needs"] == ["orch-phase-1", "orch-phase-2", "orch-phase-3"]
    assert jobs["orch-merge"]["if"] == "always()"
    runs = [step.get("run") for step in jobs["orch-phase-2"]["steps"]]
    assert 'python -m pip install -e ".[test]"\necho ready' in runs  # orch_ci_setup, one command a line
    assert "pytest --orch-restore .orch/ci/out/orch-phase-1" in runs
    assert "pytest --phase 2" in runs
    assert runs.index("pytest --orch-restore .orch/ci/out/orch-phase-1") < runs.index("pytest --phase 2")
    assert not project.path.joinpath("reports").exists()  # nothing ran
    assert not project.path.joinpath(".orch", "state.db").exists()


def test_by_group_a_job_per_group_and_one_for_the_checkpoints(project):
    result = project.runpytest("--orch-export", "gitlab", "--orch-export-by", "group")
    assert result.ret == 0, result.stdout.str()
    document = yaml.safe_load((project.path / ".gitlab/ci/phases.yml").read_text())
    needs = {job: [n["job"] for n in body["needs"]] for job, body in document.items()}
    assert "pytest --phase 2 -k 2.check || status=$?" in document["orch-2-checkpoints"]["script"]
    assert needs == {
        "orch-1-cfg": [],
        "orch-2-a": ["orch-1-cfg"],
        "orch-2-b": ["orch-1-cfg", "orch-2-a"],  # group b depends_on group a
        "orch-2-checkpoints": ["orch-1-cfg", "orch-2-a", "orch-2-b"],
        "orch-3-c": ["orch-1-cfg"],
        "orch-merge": ["orch-1-cfg", "orch-2-a", "orch-2-b", "orch-2-checkpoints", "orch-3-c"],
    }
    assert "pytest --phase 2 --group 2.b || status=$?" in document["orch-2-b"]["script"]
    assert document["orch-merge"]["when"] == "always"
    assert document["orch-merge"]["artifacts"]["reports"] == {"junit": "reports/junit.xml"}


def test_default_setup_installs_the_test_extras(pytester):
    pytester.makefile(".yaml", **PLAN)
    pytester.runpytest("--orch-export", "github").assert_outcomes()
    workflow = yaml.safe_load((pytester.path / ".github/workflows/phases.yml").read_text())
    assert {"name": "Set up (orch_ci_setup)", "run": 'python -m pip install -e ".[test]"'} in \
        workflow["jobs"]["orch-phase-1"]["steps"]


@pytest.mark.parametrize("by", ["phase", "group"])
def test_github_export_passes_check_jsonschema_and_actionlint_offline(project, by):
    assert project.runpytest("--orch-export", "github", "--orch-export-by", by).ret == 0
    path = project.path / ".github/workflows/phases.yml"
    schema = _check([_validator("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)])
    assert schema.returncode == 0, schema.stdout + schema.stderr
    lint = _check([_validator("actionlint"), "-no-color", str(path)])
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("by", ["phase", "group"])
def test_gitlab_export_passes_check_jsonschema_offline(project, by):
    assert project.runpytest("--orch-export", "gitlab", "--orch-export-by", by).ret == 0
    path = project.path / ".gitlab/ci/phases.yml"
    schema = _check([_validator("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(path)])
    assert schema.returncode == 0, schema.stdout + schema.stderr


def test_the_validators_do_reject_a_broken_export(project, tmp_path):
    """The checks above can fail: the same validators on a damaged copy of each export."""
    assert project.runpytest("--orch-export", "github").ret == 0
    assert project.runpytest("--orch-export", "gitlab").ret == 0
    workflow = yaml.safe_load((project.path / ".github/workflows/phases.yml").read_text())
    workflow["jobs"]["orch-phase-2"]["needs"] = ["orch-phase-9"]  # actionlint: no such job
    del workflow["jobs"]["orch-phase-1"]["runs-on"]  # the schema: runs-on is required
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(workflow))
    assert _check([_validator("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                   str(broken)]).returncode != 0
    lint = _check([_validator("actionlint"), "-no-color", str(broken)])
    assert lint.returncode != 0 and "orch-phase-9" in lint.stdout
    include = yaml.safe_load((project.path / ".gitlab/ci/phases.yml").read_text())
    include["orch-merge"]["when"] = "sometimes"
    broken_gl = tmp_path / "broken-gitlab.yml"
    broken_gl.write_text(yaml.safe_dump(include))
    assert _check([_validator("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci",
                   str(broken_gl)]).returncode != 0


def test_an_unknown_target_is_a_usage_error(project):
    result = project.runpytest("--orch-export", "jenkins")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--orch-export: invalid choice: 'jenkins' (choose from*github*gitlab*"])
    assert not project.path.joinpath(".github").exists()


def test_a_file_the_export_did_not_write_is_kept_unless_force(project):
    mine = project.path / ".github/workflows/phases.yml"
    mine.parent.mkdir(parents=True)
    mine.write_text("name: my own workflow\n")
    result = project.runpytest("--orch-export", "github")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "ERROR: .github/workflows/phases.yml exists and was not written by --orch-export*pass --force to replace it"])
    result.stderr.no_fnmatch_line("*Traceback*")
    assert mine.read_text() == "name: my own workflow\n"
    assert project.runpytest("--orch-export", "github", "--force").ret == 0
    assert mine.read_text().startswith("# Written by pytest-orch (pytest --orch-export github)")
    # its own earlier export is replaced without --force: exporting again is the way to update it
    assert project.runpytest("--orch-export", "github", "--orch-export-by", "group").ret == 0
    assert "orch-2-checkpoints" in mine.read_text()


def test_export_file_names_another_path(project):
    result = project.runpytest("--orch-export", "gitlab", "--orch-export-file", "ci/orch.yml")
    assert result.ret == 0
    text = (project.path / "ci/orch.yml").read_text()
    assert "include: [{local: ci/orch.yml}]" in text


def test_jobs_that_need_each_other_are_refused_with_the_tasks_that_cause_it(pytester):
    pytester.makefile(".yaml", **{
        "phases/p1": """
            phase: 1
            groups:
              - id: g
                tasks:
                  - {id: "1.1", type: command, run: "true"}
                  - {id: "1.2", type: command, run: "true", depends_on: ["2.1"]}
            """,
        "phases/p2": """
            phase: 2
            groups:
              - id: g
                tasks:
                  - {id: "2.1", type: command, run: "true"}
                  - {id: "2.2", type: command, run: "true", depends_on: ["1.1"]}
            """,
    })
    result = pytester.runpytest("--orch-export", "github")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: jobs orch-phase-* need each other (task * needs *; task * needs *)*"
                                 "--orch-export-by group*"])
    assert not pytester.path.joinpath(".github").exists()
    # per group, the two groups' tasks still form a cycle of jobs; with one group per task it would not
    assert pytester.runpytest("--orch-export", "github", "--orch-export-by", "group").ret == \
        pytest.ExitCode.USAGE_ERROR


def test_a_bad_plan_is_reported_and_nothing_is_written(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: g
            tasks:
              - {id: "1.1", type: command, run: "true", depends_on: ["9.9"]}
        """})
    result = pytester.runpytest("--orch-export", "github")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*phases/p1.yaml:*task '1.1' depends on unknown task '9.9'*"])
    assert not pytester.path.joinpath(".github").exists()


def test_export_with_merge_is_a_usage_error(project):
    result = project.runpytest("--orch-export", "github", "--orch-merge", "x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --orch-export and --orch-merge: give one of them at a time"])
