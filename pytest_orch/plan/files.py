"""Which files make up a plan: kept apart from validation so a worker finds them without a YAML parser."""

from __future__ import annotations

from pathlib import Path


def plan_files(location: Path) -> list[Path]:
    """The YAML files of a plan folder (templates/ excluded), or the one file named."""
    if location.is_file():
        return [location]
    return sorted(
        p for p in location.rglob("*")
        if p.suffix in (".yaml", ".yml") and p.is_file() and "templates" not in p.relative_to(location).parts
    )
