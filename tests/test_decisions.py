"""Issue 9's semantics end to end: typed outcomes, a rerun that does nothing, --force, blocked runs."""

import json
import subprocess

import pytest

from conftest import assert_tasks, handler_conftest


def git(path, *args):
    subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def init_repo(pytester, ignore=".orch/\nreports/\nlog\n"):
    git(pytester.path, "init", "-q")
    git(pytester.path, "config", "user.email", "t@example.com")
    git(pytester.path, "config", "user.name", "t")
    (pytester.path / ".gitignore").write_text(ignore)
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-qm", "start")


def run_json(pytester):
    data = json.loads((pytester.path / "reports" / "run.json").read_text())
    return data, {t["id"]: t for t in data["tasks"]}


def log(pytester):
    path = pytester.path / "log"
    return path.read_text().split() if path.exists() else []


# Several config edits of one file, each read by the next as its input, then a command and a
# checkpoint that depend on them: the shape that made a second run redo nine tasks.
ROADMAP = {
    "package.json": '{\n  "name": "webapp",\n  "jest": {"collectCoverageFrom": ["src/**/*.ts"]}\n}\n',
    ".github/workflows/ci.yml": "name: ci\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
                                "      - uses: actions/checkout@v4\n",
}
ROADMAP_PLAN = """
phase: 1
groups:
  - id: cfg
    tasks:
      - {id: "1.1", type: config_edit, file: package.json, set: {jest.coverageThreshold.global.lines: 80}}
      - {id: "1.2", type: config_edit, file: package.json, append: {jest.collectCoverageFrom: ["lib/**/*.ts"]},
         depends_on: ["1.1"]}
      - {id: "1.3", type: config_edit, file: .github/workflows/ci.yml, set: {jobs.test.timeout-minutes: 10}}
      - {id: "1.4", type: config_edit, file: .github/workflows/ci.yml, set: {env.CI: "true"}, depends_on: ["1.3"]}
      - {id: "1.5", type: command, shell: true, run: "echo 1.5 >> log", depends_on: ["1.2", "1.4"]}
      - {id: "1.6", type: manual, instructions: "Enable branch protection", depends_on: ["1.5"]}
  - id: gen
    depends_on: [cfg]
    tasks:
      - {id: "1.7", type: file_generation, target: docs/coverage.md, content: "# Coverage\\n"}
checkpoints:
  - {id: "1.check", type: command, shell: true, run: "echo check >> log"}
"""


@pytest.fixture
def roadmap(pytester):
    for name, text in ROADMAP.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    pytester.makefile(".yaml", **{"phases/p1": ROADMAP_PLAN})
    init_repo(pytester)
    return pytester


def test_a_rerun_after_a_successful_run_executes_no_task(roadmap):
    assert_tasks(roadmap.runpytest("--confirm", "1.6"), passed=8)
    assert log(roadmap) == ["1.5", "check"]
    result = roadmap.runpytest()
    assert_tasks(result, up_to_date=8)
    assert result.ret == pytest.ExitCode.OK
    assert log(roadmap) == ["1.5", "check"], "a task ran again"
    _, tasks = run_json(roadmap)
    assert {t["outcome"] for t in tasks.values()} == {"up_to_date"}


def test_an_edit_that_changed_nothing_leaves_its_dependents_up_to_date(roadmap):
    assert_tasks(roadmap.runpytest("--confirm", "1.6", "--allow-dirty"), passed=8)
    # a person's change elsewhere in the file 1.1 edits: 1.1 runs again, finds its value set, changes
    # nothing; what depends on it (1.2, then 1.5, 1.6, the generated file, the checkpoint) stays done
    package = roadmap.path / "package.json"
    package.write_text(package.read_text().replace('"name": "webapp"', '"name": "webapp2"'))
    result = roadmap.runpytest("--allow-dirty")
    _, tasks = run_json(roadmap)
    assert tasks["1.1"]["reason"] == "output package.json changed since it was written"
    assert tasks["1.1"]["outcome"] == "up_to_date" and tasks["1.1"]["changed"] == []
    assert_tasks(result, up_to_date=8)
    assert log(roadmap) == ["1.5", "check"]


def test_force_runs_every_task_for_real_and_never_reports_up_to_date(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, shell: true, run: "echo 1.1 >> log; touch made", creates: made}
              - {id: "1.2", type: config_edit, file: conf.json, set: {a: 1}}
        """})
    (pytester.path / "conf.json").write_text('{"a": 1}\n')
    (pytester.path / "made").write_text("")
    result = pytester.runpytest()
    assert_tasks(result, up_to_date=2)  # the path exists; the value is set: nothing to do
    assert log(pytester) == []
    result = pytester.runpytest("--force")
    assert_tasks(result, passed=2)
    assert log(pytester) == ["1.1"], "--force did not run the command despite creates:"
    _, tasks = run_json(pytester)
    assert {t["outcome"] for t in tasks.values()} == {"passed"}
    assert tasks["1.2"]["changed"] == []


PROJECT_SKIP_HANDLER = handler_conftest(
    "upstream", '        return Outcome("skipped", message="up to date with upstream? no")', keys=("repo",))


@pytest.mark.parametrize("workers", [[], ["-n", "2", "--orch-parallel=always"]], ids=["in-process", "n2"])
def test_a_skip_is_a_skip_whatever_its_message_says(pytester, workers):
    pytester.makeconftest(PROJECT_SKIP_HANDLER)
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: upstream, repo: x}
              - {id: "1.2", type: command, run: "touch dependent-ran", depends_on: ["1.1"]}
        """})
    result = pytester.runpytest_subprocess(*workers)
    assert_tasks(result, skipped=2)
    assert not (pytester.path / "dependent-ran").exists()
    _, tasks = run_json(pytester)
    assert tasks["1.1"]["outcome"] == "skipped"
    assert tasks["1.1"]["message"] == "up to date with upstream? no"
    assert tasks["1.2"]["outcome"] == "skipped"


def test_a_run_blocked_by_a_manual_step_says_so(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "true"}
              - {id: "1.2", type: manual, instructions: "Rotate the key", depends_on: ["1.1"]}
              - {id: "1.3", type: command, run: "true", depends_on: ["1.2"]}
        """})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data, tasks = run_json(pytester)
    assert data["outcome"] == "blocked"
    assert (tasks["1.2"]["outcome"], tasks["1.3"]["outcome"]) == ("skipped", "skipped")
    result = pytester.runpytest("--confirm", "1.2")
    assert result.ret == pytest.ExitCode.OK
    data, _ = run_json(pytester)
    assert data["outcome"] == "passed"


def test_a_failed_critical_task_makes_the_run_failed_not_blocked(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "false"}
              - {id: "1.2", type: manual, instructions: "Rotate the key"}
        """})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data, _ = run_json(pytester)
    assert data["outcome"] == "failed"
