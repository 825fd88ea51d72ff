"""Whether the project's git work tree has uncommitted changes the harness did not write.

Runs the real ``git`` in a subprocess. Paths are relative to the project root, which may be a folder
inside the repository; changes outside the root do not count, nor do ignored files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Never dirty: the harness's own state and its reports.
ALWAYS_IGNORED = (".orch", "reports")


@dataclass(frozen=True)
class GitStatus:
    """``is_repo`` False means the root is not in a git work tree (or git is missing: see ``note``)."""

    is_repo: bool
    dirty: list[str] = field(default_factory=list)
    note: str = ""


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    # GIT_OPTIONAL_LOCKS=0: status must not take index.lock and race a git command the user runs.
    return subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=60,
                          env=_env(), check=False)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


def git_status(root: Path) -> GitStatus:
    """Return whether ``root`` is in a git work tree and its dirty paths (tracked changes, untracked files)."""
    root = Path(root)
    if shutil.which("git") is None:
        return GitStatus(False, [], "git is not installed; the work tree is not checked")
    probe = _git(root, "rev-parse", "--is-inside-work-tree", "--show-prefix")
    lines = probe.stdout.decode("utf-8", "surrogateescape").splitlines()
    if probe.returncode != 0 or not lines or lines[0].strip() != "true":
        return GitStatus(False, [], f"{root} is not in a git work tree; the work tree is not checked")
    prefix = lines[1].strip() if len(lines) > 1 else ""
    proc = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        return GitStatus(True, [], f"git status failed: {err}")
    return GitStatus(True, _parse_porcelain(proc.stdout, prefix))


def _parse_porcelain(out: bytes, prefix: str) -> list[str]:
    """Return the paths of ``git status --porcelain=v1 -z``, relative to the folder ``prefix``."""
    entries = out.decode("utf-8", "surrogateescape").split("\0")
    paths: set[str] = set()
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        paths.add(path)
        if "R" in status or "C" in status:
            # A rename is followed by its source path; the source is gone, which is a change too.
            if i < len(entries) and entries[i]:
                paths.add(entries[i])
            i += 1
    out_paths = []
    for path in paths:
        if prefix and path.startswith(prefix):
            path = path[len(prefix):]
        elif prefix:
            continue  # outside the project root
        out_paths.append(path)
    return sorted(out_paths)


def _sha(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def dirty_excluding(
    status: GitStatus,
    harness_written: Mapping[str, str | None] | Iterable[str],
    root: Path,
    *,
    ignore_dirs: Iterable[str] = ALWAYS_IGNORED,
    ignore_files: Iterable[str] = (),
    sha: Callable[[Path], str | None] | None = None,
) -> list[str]:
    """Return the dirty paths that are not the harness's own work, sorted.

    ``harness_written`` is ``StateStore.harness_written()``: a path counts as the harness's while the
    file still holds the digest the harness left (None: it deleted the file), so a later hand edit
    makes it dirty again. A plain set of paths excludes them whatever they hold. ``sha`` is a
    ``FileHasher.sha`` to share the run's hash cache.
    """
    ignored = tuple(d.strip("/") + "/" for d in ignore_dirs)
    ignored_files = set(ignore_files)
    digest = sha or _sha
    known: Mapping[str, str | None] | None = harness_written if isinstance(harness_written, Mapping) else None
    paths = set(harness_written)
    dirty = []
    for path in status.dirty:
        if path.startswith(ignored) or path.rstrip("/") + "/" in ignored or path in ignored_files:
            continue
        if path in paths:
            if known is None or digest(Path(root) / path) == known[path]:
                continue
        dirty.append(path)
    return sorted(dirty)


def dirty_reason(paths: list[str], shown: int = 10) -> str:
    """One line: why a task that changes files refuses to run, and what to do."""
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return (f"refused: the git work tree has uncommitted changes the plan did not make: "
            f"{', '.join(paths[:shown])}{more} (commit or stash them, or pass --allow-dirty)")
