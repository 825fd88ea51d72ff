"""The dirty-work-tree check against real git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_orch.fingerprint import FileHasher
from pytest_orch.gitstate import dirty_excluding, dirty_reason, git_status


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "Test")
    (path / "tracked.txt").write_text("one\n")
    (path / ".gitignore").write_text("ignored/\n")
    (path / "app").mkdir()
    (path / "app" / "config.json").write_text("{}\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "init")
    return path


def test_clean_repo(tmp_path):
    status = git_status(repo(tmp_path))
    assert status.is_repo and status.dirty == []


def test_not_a_repo_says_so(tmp_path):
    status = git_status(tmp_path)
    assert not status.is_repo and "not in a git work tree" in status.note


def test_changes_untracked_files_and_renames_are_dirty_ignored_are_not(tmp_path):
    root = repo(tmp_path)
    (root / "tracked.txt").write_text("two\n")
    (root / "new dir").mkdir()
    (root / "new dir" / "ünïcode file.txt").write_text("x")
    (root / "ignored").mkdir()
    (root / "ignored" / "junk").write_text("x")
    git(root, "mv", "app/config.json", "app/settings.json")
    assert git_status(root).dirty == [
        "app/config.json", "app/settings.json", "new dir/ünïcode file.txt", "tracked.txt"]


def test_paths_are_relative_to_a_root_inside_the_repo(tmp_path):
    top = repo(tmp_path)
    (top / "outside.txt").write_text("x")
    (top / "app" / "config.json").write_text('{"a": 1}\n')
    assert git_status(top / "app").dirty == ["config.json"]


def test_harness_writes_and_own_folders_do_not_count_until_edited_by_hand(tmp_path):
    root = repo(tmp_path)
    (root / "app" / "config.json").write_text('{"edited": true}\n')
    (root / "generated.py").write_text("x = 1\n")
    (root / "tracked.txt").unlink()
    (root / ".orch").mkdir()
    (root / ".orch" / "state.db").write_text("db")
    (root / "reports").mkdir()
    (root / "reports" / "junit.xml").write_text("<x/>")
    (root / "mine.txt").write_text("by hand")
    h = FileHasher()
    written = {"app/config.json": h.sha(root / "app" / "config.json"),
               "generated.py": h.sha(root / "generated.py"), "tracked.txt": None}
    status = git_status(root)
    assert dirty_excluding(status, written, root) == ["mine.txt"]
    (root / "generated.py").write_text("x = 2\n")  # a hand edit after the harness wrote it
    assert dirty_excluding(status, written, root, sha=FileHasher().sha) == ["generated.py", "mine.txt"]
    # A plain set of paths excludes them whatever they hold.
    assert dirty_excluding(status, set(written), root) == ["mine.txt"]
    assert "mine.txt" in dirty_reason(["mine.txt"]) and "--allow-dirty" in dirty_reason(["mine.txt"])
