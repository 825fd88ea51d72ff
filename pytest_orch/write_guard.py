"""Folders of a project that tasks may read but never write: git's own and pytest-orch's state.

A task that writes into ``.git/`` (a hook, the index, a ref) or ``.orch/`` (the state of the run that is
running it) changes what git status and the up-to-date decisions rely on, and git status shows nothing.
``.git`` is refused at any depth (a nested repository's internals too); ``.orch`` only at the root,
where the state lives. Checked when the plan is loaded, for the path keys a handler says it writes
(lexically), and again when a handler resolves a path for writing (symlinks resolved).
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

GIT_DIR = ".git"
STATE_DIR = ".orch"  # pytest_orch.state.STATE_DIR; not imported, to keep this module free of SQLite


def protected_folder(relpath: str) -> str | None:
    """Return ``.git`` or ``.orch`` when the project-relative ``relpath`` lies inside one, else None."""
    parts = PurePosixPath(os.path.normpath(relpath).replace(os.sep, "/")).parts
    # casefold: on a case-insensitive file system .GIT is the same folder
    if any(part.casefold() == GIT_DIR for part in parts):
        return GIT_DIR
    if parts and parts[0].casefold() == STATE_DIR:
        return STATE_DIR
    return None


def refusal(key: str, value: str, folder: str) -> str:
    """The one-line reason a write path is refused, the same at plan validation and at run time."""
    return f"{key}: {value!r} is inside {folder}/, which tasks may read but never write"
