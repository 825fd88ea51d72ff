"""Where in a plan something is, and the errors that point there."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a plan file: path relative to the rootdir, 1-based line and column."""

    path: str
    line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class OrchError(Exception):
    """Base of the errors pytest-orch reports to the user without a traceback."""


class PlanError(OrchError):
    """A mistake in a plan, found before any task runs."""

    def __init__(self, loc: Location | None, message: str) -> None:
        self.loc = loc
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.loc is None:
            return self.message
        column = f" (column {self.loc.column})" if self.loc.column else ""
        return f"{self.loc}: {self.message}{column}"


class PlanErrors(OrchError):
    """Several plan errors found in one pass, reported together."""

    def __init__(self, errors: list[PlanError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class HandlerError(OrchError):
    """A task's handler could not do its work; the message says why and where."""
