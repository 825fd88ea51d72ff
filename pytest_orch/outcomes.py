"""Typed outcomes: what a task did, why an item is not run, and how the run ended.

Each process works with these enums; across the xdist wire (execnet carries only builtin types)
a status travels as its ``value`` and becomes a ``Status`` again in ``Status.from_wire``, the one
place that converts it back. No code decides an outcome by reading a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    """A task's (or a test's) final outcome, as run.json, the state and the reports name it."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    UP_TO_DATE = "up_to_date"

    @property
    def done(self) -> bool:
        """Passed or up to date: what a dependent task needs."""
        return self in (Status.PASSED, Status.UP_TO_DATE)

    @classmethod
    def from_wire(cls, value: object) -> Status:
        """The status a report or a handler carried as a plain value (or already as a Status)."""
        if isinstance(value, Status):
            return value
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown task status {value!r} (known: {known})") from None


class NotRun(Enum):
    """Why the coordinator did not run an item."""

    UP_TO_DATE = "up_to_date"          # nothing it depends on changed since it last passed
    DEPENDENCY = "dependency"          # a task it needs failed, was not done, or is not selected
    UNCONFIRMED = "unconfirmed"        # a manual step that awaits --confirm
    ABORTED = "aborted"                # a task with on_failure: abort failed
    REFUSED_DIRTY = "refused_dirty"    # a file it would change has uncommitted changes
    NOT_READY = "not_ready"            # its handler says it cannot start now (a spent quota)
    NO_WORKER = "no_worker"            # no live worker may run it (its hosts were lost, refused or down)

    @property
    def status(self) -> Status:
        return Status.UP_TO_DATE if self is NotRun.UP_TO_DATE else Status.SKIPPED

    @property
    def blocks(self) -> bool:
        """A critical item not run for this reason makes the run ``blocked`` (exit status 1)."""
        return self is not NotRun.UP_TO_DATE


@dataclass(frozen=True)
class Decision:
    """The coordinator's answer for one due item: run it (``not_run`` is None) or not, and why.

    ``reason`` says why in words: why it runs ("never ran", "input src/a.ts changed", "forced") or
    why not. ``blocked_by`` names the task at the root of a block, ``hint`` the command that would
    unblock it (``pytest --confirm 3.5``).
    """

    not_run: NotRun | None = None
    reason: str = ""
    blocked_by: str | None = None
    hint: str = ""

    @property
    def runs(self) -> bool:
        return self.not_run is None


@dataclass(frozen=True)
class PlainNeeds:
    """What a plain test marked ``@pytest.mark.dependency(depends=[...])`` waits for."""

    tasks: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()


class RunOutcome(Enum):
    """How a whole run ended (run.json's ``outcome``)."""

    PASSED = "passed"
    FAILED = "failed"
    BLOCKED = "blocked"            # no critical task failed, but one could not run
    INTERRUPTED = "interrupted"
