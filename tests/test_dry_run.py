"""--dry-run: every handler says what it would change, with a diff, and nothing on disk changes."""

import json
import subprocess

import pytest

FILES = {
    "package.json": ('{\n  "name": "webapp",\n  "jest": {\n'
                     '    "collectCoverageFrom": ["src/services/**/*.ts"]\n  }\n}\n'),
    ".github/workflows/ci.yml": (
        "# CI for the web app\n"
        "name: ci\n"
        "jobs:\n"
        "  test:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - name: Unit tests  # flaky for now\n"
        "        run: npm test\n"
        "        continue-on-error: true\n"
    ),
    "pyproject.toml": "# service settings\n[tool.coverage.report]\nfail_under = 60  # raise me\n",
    "src/services/auth.ts": "export function login(user: string): boolean {\n  return user.length > 0;\n}\n",
}

PLAN = """
phase: 1
groups:
  - id: cfg
    tasks:
      - id: "1.1"
        type: config_edit
        file: package.json
        append: {jest.collectCoverageFrom: ["src/routes/**/*.ts"]}
        set: {jest.coverageThreshold.global.branches: 80}
      - {id: "1.2", type: config_edit, file: .github/workflows/ci.yml, remove: [jobs.test.steps.1.continue-on-error]}
      - {id: "1.3", type: config_edit, file: pyproject.toml, set: {tool.coverage.report.fail_under: 85}}
  - id: gen
    tasks:
      - {id: "1.4", type: file_generation, target: docs/runbook.md, content: "# Runbook for {{ APP }}\\n"}
      - {id: "1.5", type: test_generation, framework: jest, subject: src/services/auth.ts}
      - {id: "1.6", type: command, run: "touch command-ran"}
vars: {APP: webapp}
"""


@pytest.fixture
def project(pytester):
    for name, text in FILES.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    pytester.makefile(".yaml", **{"phases/p1": PLAN})
    return pytester


def snapshot(root, leave_out=("reports",)):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not {*leave_out, "__pycache__", ".pytest_cache"} & set(p.parts)}


def test_dry_run_changes_nothing_anywhere(project):
    before = snapshot(project.path, leave_out=())
    result = project.runpytest("--dry-run")
    result.assert_outcomes(passed=6)
    assert result.ret == pytest.ExitCode.OK
    assert snapshot(project.path, leave_out=()) == before, "a dry run changed files, reports/ included"
    assert not (project.path / ".orch").exists()
    assert not (project.path / "reports").exists()


def test_dry_run_shows_diffs_and_writes_reports_only_where_asked(project):
    before = snapshot(project.path)
    result = project.runpytest("--dry-run", "--orch-report=reports")
    result.assert_outcomes(passed=6)
    assert snapshot(project.path) == before, "a dry run changed files"
    assert not (project.path / ".orch").exists()
    result.stdout.fnmatch_lines([
        "*dry run: what would change*",
        "--- a/package.json", "+++ b/package.json",
        '+    "collectCoverageFrom": ["src/services/**/*.ts", "src/routes/**/*.ts"],',  # stays inline
        "--- a/.github/workflows/ci.yml",
        "-        continue-on-error: true",
        "-fail_under = 60  # raise me", "+fail_under = 85  # raise me",
        "+++ b/docs/runbook.md", "+# Runbook for webapp",
        "+++ b/src/services/auth.test.ts",
    ])
    tasks = {t["id"]: t for t in json.loads((project.path / "reports" / "run.json").read_text())["tasks"]}
    assert "+fail_under = 85  # raise me" in tasks["1.3"]["diff"]
    assert tasks["1.6"]["message"].startswith("would run")


def test_real_run_applies_what_the_dry_run_showed_then_is_up_to_date(project):
    project.runpytest().assert_outcomes(passed=6)
    text = (project.path / "pyproject.toml").read_text()
    assert text == "# service settings\n[tool.coverage.report]\nfail_under = 85  # raise me\n"
    ci = (project.path / ".github/workflows/ci.yml").read_text()
    assert ci == FILES[".github/workflows/ci.yml"].replace("        continue-on-error: true\n", "")
    assert (project.path / "command-ran").exists()
    after = snapshot(project.path)
    project.runpytest("--force").assert_outcomes(passed=6)  # forced: every task runs; edits change nothing
    assert {k: v for k, v in snapshot(project.path).items() if not k.startswith(".orch")} == \
        {k: v for k, v in after.items() if not k.startswith(".orch")}


WORKFLOW = "name: ci\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
FOUR_EDITS = """
phase: 1
groups:
  - id: ci
    execution: sequential
    tasks:
      - {id: "1.1", type: config_edit, file: ci.yml, set: {jobs.test.timeout-minutes: 10}}
      - {id: "1.2", type: config_edit, file: ci.yml, set: {jobs.lint.runs-on: ubuntu-latest}}
      - {id: "1.3", type: config_edit, file: ci.yml, set: {jobs.lint.timeout-minutes: 5}}
      - {id: "1.4", type: config_edit, file: ci.yml, set: {env.CI: "true"}}
"""


def test_each_dry_run_edit_is_shown_against_the_previous_one(pytester):
    (pytester.path / "ci.yml").write_text(WORKFLOW)
    pytester.makefile(".yaml", **{"phases/p1": FOUR_EDITS})
    result = pytester.runpytest("--dry-run", "--orch-report=reports")
    result.assert_outcomes(passed=4)
    assert (pytester.path / "ci.yml").read_text() == WORKFLOW
    tasks = {t["id"]: t for t in json.loads((pytester.path / "reports" / "run.json").read_text())["tasks"]}
    added = {task_id: [line for line in t["diff"].splitlines() if line.startswith("+") and not line.startswith("+++")]
             for task_id, t in tasks.items()}
    assert added == {
        "1.1": ["+    timeout-minutes: 10"],
        "1.2": ["+  lint:", "+    runs-on: ubuntu-latest"],
        "1.3": ["+    timeout-minutes: 5"],  # under a key only 1.2's would-be edit creates
        "1.4": ["+env:", "+  CI: 'true'"],
    }
    assert " timeout-minutes: 10" in tasks["1.4"]["diff"] or "lint" in tasks["1.4"]["diff"]
    result.stdout.fnmatch_lines(["[[]1.1[]] would edit ci.yml", "*+    timeout-minutes: 10",
                                 "[[]1.2[]] would edit ci.yml", "[[]1.3[]] would edit ci.yml",
                                 "[[]1.4[]] would edit ci.yml"])


def test_a_dry_run_previews_past_an_unconfirmed_manual_step_and_exits_0(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: manual, instructions: "Create the deploy key"}
              - {id: "1.2", type: file_generation, target: deploy.md, content: "key made\\n", depends_on: ["1.1"]}
        """})
    result = pytester.runpytest("--dry-run", "-rs")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*would wait for --confirm 1.1*", "[[]1.2[]] would create deploy.md"])
    assert not (pytester.path / "deploy.md").exists()
    assert pytester.runpytest().ret == pytest.ExitCode.TESTS_FAILED  # a real run still waits


def test_a_dry_run_names_the_tasks_a_real_run_would_refuse(pytester):
    (pytester.path / "notes.md").write_text("mine\n")
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: config_edit, file: notes.md, replace: [{pattern: mine, with: theirs}]}
        """})
    for args in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "t"],
                 ["add", "phases"], ["commit", "-qm", "plan"]):
        subprocess.run(["git", *args], cwd=pytester.path, check=True, capture_output=True)
    result = pytester.runpytest("--dry-run")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["[[]1.1[]] a real run would refuse it: refused: the git work tree has uncommitted "
                                 "changes the plan did not make: notes.md*"])
    assert pytester.runpytest().ret == pytest.ExitCode.TESTS_FAILED
    assert (pytester.path / "notes.md").read_text() == "mine\n"
