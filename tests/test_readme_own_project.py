"""The README's "Your own project" walk-through, word for word: its .gitignore, its plan, its commands.

The texts are read from README.md, so the README cannot drift from what works (issue 10, item 14).
"""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Your own project")
    return text[start:text.index("\n## ", start + 1)]


def blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of one language ("" for none), in order."""
    found, current, inside = [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, current = line[3:].strip(), []
            else:
                if inside == language:
                    found.append("\n".join(current) + "\n")
                inside = None
        elif inside is not None:
            current.append(line)
    return found


def git(path, *args):
    return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout


def outcomes(pytester) -> dict[str, str]:
    data = json.loads((pytester.path / "reports" / "run.json").read_text())
    return {task["id"]: task["outcome"] for task in data["tasks"]}


@pytest.fixture
def project(pytester):
    text = section()
    gitignore = blocks(text, "")[0]
    plan = blocks(text, "yaml")[0]
    assert ".orch/" in gitignore and "reports/" in gitignore
    git(pytester.path, "init", "-q")
    git(pytester.path, "config", "user.email", "t@example.com")
    git(pytester.path, "config", "user.name", "t")
    (pytester.path / "pyproject.toml").write_text('[project]\nname = "mine"\nversion = "0.1"\n')
    (pytester.path / ".gitignore").write_text(gitignore)
    (pytester.path / "phases").mkdir()
    (pytester.path / "phases" / "10-first.yaml").write_text(plan)
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-qm", "Add a plan")
    return pytester


def test_the_readme_walk_through_works_as_written(project):
    commands = [line.split("#")[0].strip() for block in blocks(section(), "bash") for line in block.splitlines()
                if line.startswith("pytest")]
    assert commands == ["pytest --collect-only", "pytest --dry-run", "pytest", "pytest --confirm 1.3", "pytest",
                        "pytest --orch-status"]
    pyproject = project.path / "pyproject.toml"
    original = pyproject.read_text()

    preview = project.runpytest(*shlex.split(commands[0])[1:])
    assert preview.ret == 0
    preview.stdout.fnmatch_lines(["*1.2 *config_edit *Coverage gate at 80%*", "3 tasks in 1 phase",
                                  "critical path: 3 tasks, 1.1 -> 1.2 -> 1.3"])

    dry = project.runpytest(*shlex.split(commands[1])[1:])
    dry.stdout.fnmatch_lines(["*+fail_under = 80*"])
    assert pyproject.read_text() == original, "the dry run wrote"

    first = project.runpytest(*shlex.split(commands[2])[1:])
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    assert "1 manual step awaits: pytest --confirm 1.3" in first.stdout.lines[-1]
    assert outcomes(project) == {"1.1": "passed", "1.2": "passed", "1.3": "skipped"}
    assert "fail_under = 80" in pyproject.read_text()

    confirmed = project.runpytest(*shlex.split(commands[3])[1:])
    assert confirmed.ret == 0
    assert outcomes(project) == {"1.1": "up_to_date", "1.2": "up_to_date", "1.3": "passed"}

    rerun = project.runpytest(*shlex.split(commands[4])[1:])
    assert rerun.ret == 0
    assert outcomes(project) == {"1.1": "up_to_date", "1.2": "up_to_date", "1.3": "up_to_date"}

    status = project.runpytest(*shlex.split(commands[5])[1:])
    assert status.ret == 0
    status.stdout.fnmatch_lines(["    1.3 *passed*up to date"])

    # the runs' own files stay out of git's way; the plan's one edit is there to commit
    assert git(project.path, "status", "--porcelain").split() == ["M", "pyproject.toml"]


def test_the_readme_refusal_examples_are_what_pytest_orch_says(project):
    text = section()
    plan_error = re.search(r"`(phases/10-first\.yaml:\d+: [^`]+)`", text).group(1)
    wrong = re.search(r"unknown task '([^']+)'", plan_error).group(1)
    path = project.path / "phases" / "10-first.yaml"
    path.write_text(path.read_text().replace("set: {tool.coverage.report.fail_under: 80}\n",
                                             f"set: {{tool.coverage.report.fail_under: 80}}\n"
                                             f'        depends_on: ["{wrong}"]\n'))
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([plan_error + "*"])
    git(project.path, "checkout", "phases")
    usage = project.runpytest("--confirm", "1.33")
    assert usage.ret == pytest.ExitCode.USAGE_ERROR
    usage.stderr.fnmatch_lines(["*--confirm 1.33: no such manual step*did you mean '1.3'?*"])
    assert "--confirm 1.33" in text


def test_the_reference_example_plan_is_valid(pytester):
    text = (README.parent / "docs" / "plan-format.md").read_text(encoding="utf-8")
    example = blocks(text, "yaml")[0]
    (pytester.path / "phases").mkdir()
    (pytester.path / "phases" / "plan.yaml").write_text(example)
    result = pytester.runpytest("--collect-only")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "    2.1 *test_generation *Auth service tests *-  *phase 1, group 2.b, 1.3",
        "    2.check *command *the tasks of phase 2 *phase 1",
        "4 tasks in 2 phases (1 checkpoint among them)",
    ])
    for flag in ("--phase", "--group", "--var", "--confirm", "--pool", "--orch-status", "--dry-run", "--force",
                 "--allow-dirty", "--orch-report", "--plan", "--orch-graph", "--orch-progress"):
        assert f"`{flag}" in text, f"{flag} is missing from the reference"


def test_every_package_of_the_plugin_goes_into_the_wheel():
    # 'pip install /path/to/pytest-orch' (the README's first step) builds a wheel from this list; a
    # package missing from it works in the editable install and fails as soon as it is imported
    import tomllib

    root = README.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "pytest_orch").rglob("__init__.py")}
    found |= {"pytest_orch.handlers" + "".join("." + part for part in p.parent.relative_to(root / "handlers").parts)
              for p in (root / "handlers").rglob("__init__.py")}
    assert found <= listed, f"missing from [tool.setuptools] packages: {sorted(found - listed)}"
