"""--dry-run: every handler says what it would change, with a diff, and nothing on disk changes."""

import json

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
