"""How handlers read and write project files: on disk, or through a dry run's in-memory overlay.

In a dry run nothing on disk changes, yet the fourth edit of a workflow file should be previewed
against the first three: every write lands in the overlay, and later reads see it.
"""

from __future__ import annotations

from pathlib import Path

from pytest_orch.fileio import atomic_write


class ProjectFiles:
    """One per process; every task's context shares it, so tasks see each other's would-be edits."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self._overlay: dict[Path, str] = {}

    def exists(self, path: Path) -> bool:
        return path in self._overlay or path.exists()

    def is_file(self, path: Path) -> bool:
        return path in self._overlay or path.is_file()

    def read_text(self, path: Path) -> str:
        """The file's text exactly as stored (UTF-8, line endings untouched), or as a dry run left it."""
        if path in self._overlay:
            return self._overlay[path]
        return path.read_bytes().decode("utf-8")

    def write_text(self, path: Path, text: str) -> None:
        """Write atomically; in a dry run, only into the overlay."""
        if self.dry_run:
            self._overlay[path] = text
        else:
            atomic_write(path, text)
