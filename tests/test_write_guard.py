""".git/ and .orch/ are off limits for writing (plan error at load, refusal at run time); reading stays allowed."""

from __future__ import annotations

import subprocess

import pytest
from handler_support import make_ctx

from pytest_orch.errors import HandlerError
from pytest_orch.write_guard import protected_folder


@pytest.mark.parametrize(("path", "folder"), [
    (".git/hooks/pre-commit", ".git"),
    (".git", ".git"),
    ("sub/../.git/config", ".git"),
    ("vendor/lib/.git/HEAD", ".git"),  # a nested repository's internals
    (".GIT/config", ".git"),  # the same folder on a case-insensitive file system
    (".orch/state.db", ".orch"),
    ("./.orch/events.jsonl", ".orch"),
    (".gitignore", None),
    (".github/workflows/ci.yml", None),
    ("docs/.orch/notes.md", None),  # only the root's .orch holds the state
    ("src/git/x.py", None),
])
def test_protected_folder(path, folder):
    assert protected_folder(path) == folder


def test_resolve_for_writing_refuses_symlinks_into_git(tmp_path):
    (tmp_path / ".git" / "hooks").mkdir(parents=True)
    (tmp_path / "hooks").symlink_to(tmp_path / ".git" / "hooks")
    ctx = make_ctx(tmp_path)
    assert ctx.resolve("hooks/pre-commit", key="target") == (tmp_path / ".git/hooks/pre-commit").resolve()
    with pytest.raises(HandlerError, match=r"^target: 'hooks/pre-commit' is inside \.git/, which tasks may "
                                           r"read but never write$"):
        ctx.resolve("hooks/pre-commit", key="target", write=True)
    assert ctx.resolve("docs/x.md", key="target", write=True) == (tmp_path / "docs/x.md").resolve()


def git(path, *args):
    subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


@pytest.fixture
def repo(pytester):
    git(pytester.path, "init", "-q")
    git(pytester.path, "config", "user.email", "t@example.com")
    git(pytester.path, "config", "user.name", "t")
    return pytester


def plan(*tasks: str) -> str:
    return "phase: 1\ngroups:\n  - id: a\n    tasks:\n" + "".join(f"      - {t}\n" for t in tasks)


@pytest.mark.parametrize(("task", "line"), [
    ('{id: "1.1", type: file_generation, content: "x", target: .git/hooks/pre-commit}',
     "*phases/p1.yaml:5: task '1.1': target: '.git/hooks/pre-commit' is inside .git/, which tasks may read "
     "but never write*"),
    ('{id: "1.1", type: config_edit, file: .orch/settings.json, set: {a: 1}}',
     "*phases/p1.yaml:5: task '1.1': file: '.orch/settings.json' is inside .orch/, which tasks may read "
     "but never write*"),
    ('{id: "1.1", type: test_generation, subject: src/a.py, target: docs/../.git/x_test.py}',
     "*phases/p1.yaml:5: task '1.1': target: 'docs/../.git/x_test.py' is inside .git/*"),
])
def test_write_paths_into_git_or_orch_are_plan_errors(repo, task, line):
    repo.makefile(".yaml", **{"phases/p1": plan(task)})
    result = repo.runpytest("-p", "no:cacheprovider", "--allow-dirty")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([line])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert not (repo.path / ".git" / "hooks" / "pre-commit").exists()
    assert not (repo.path / ".orch" / "settings.json").exists()


def test_a_symlink_into_git_is_refused_when_the_task_runs(repo):
    (repo.path / "hooks").symlink_to(repo.path / ".git" / "hooks")
    repo.makefile(".yaml", **{"phases/p1": plan(
        '{id: "1.1", type: file_generation, content: "#!/bin/sh\\n", target: hooks/pre-commit}')})
    result = repo.runpytest("-p", "no:cacheprovider", "--allow-dirty")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*target: 'hooks/pre-commit' is inside .git/, which tasks may read but never write*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert not (repo.path / ".git" / "hooks" / "pre-commit").exists()


def test_reading_git_stays_allowed(repo):
    repo.makefile(".yaml", **{"phases/p1": plan(
        '{id: "1.1", type: command, run: "cat HEAD", cwd: .git, inputs: [.git/HEAD]}',
        '{id: "1.2", type: file_generation, content: "{{ 1 + 1 }}\\n", target: docs/out.txt, inputs: [.git/HEAD]}')})
    result = repo.runpytest("-p", "no:cacheprovider", "--allow-dirty")
    result.assert_outcomes(passed=2)
    assert (repo.path / "docs" / "out.txt").read_text() == "2\n"
