"""Which files make up a plan: kept apart from validation so a worker finds them without a YAML parser."""

from __future__ import annotations

import os
from pathlib import Path


def plan_files(location: Path) -> list[Path]:
    """The YAML files of a plan folder (templates/ excluded), or the one file named."""
    if location.is_file():
        return [location]
    return sorted(
        p for p in location.rglob("*")
        if p.suffix in (".yaml", ".yml") and p.is_file() and "templates" not in p.relative_to(location).parts
    )


def relative_to_root(path: Path, root: Path) -> str:
    """``path`` as the plan names it: relative to the rootdir, with ``..`` for a plan outside it.

    The same string is a plan file's node id and the path of its errors' locations.
    """
    real, real_root = path.resolve(), root.resolve()
    if real.is_relative_to(real_root):
        return real.relative_to(real_root).as_posix()
    return Path(os.path.relpath(real, real_root)).as_posix()
