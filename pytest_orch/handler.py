"""The interface every handler implements, built-in or a project's own."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pytest_orch.errors import HandlerError
from pytest_orch.outcomes import Status
from pytest_orch.overlay import ProjectFiles
from pytest_orch.plan.model import Task
from pytest_orch.write_guard import protected_folder, refusal


@dataclass
class Outcome:
    """What a handler did: its status, the files it changed, a diff, its output and a message.

    ``status`` is ``passed`` when the work was done (or, in a dry run, would be done),
    ``up_to_date`` when there was nothing to change, ``skipped`` when it could not run for
    a reason that is not a failure (an unconfirmed manual step), ``failed`` otherwise. A plain
    string such as ``"passed"`` is accepted and becomes the ``Status``.
    """

    status: Status
    message: str = ""
    changed: list[str] = field(default_factory=list)
    diff: str = ""
    output: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    """One record per request the handler made to an outside service (the prompt handler's ledger)."""

    def __post_init__(self) -> None:
        self.status = Status.from_wire(self.status)


@dataclass
class TaskContext:
    """What a handler may use besides the task: where the project is and how to behave."""

    root: Path
    dry_run: bool = False
    force: bool = False
    """``--force``: do the work even where the handler would find it done (a command's ``creates``)."""
    variables: Mapping[str, str] = field(default_factory=dict)
    templates_dir: Path | None = None
    timeout: float | None = None
    confirmed: bool = False
    interactive: bool = False
    log: Callable[[str], None] = lambda line: None
    files: ProjectFiles = field(default_factory=lambda: ProjectFiles(dry_run=False))
    """Read and write project files through this: a dry run keeps its writes in memory."""
    written_digests: Mapping[str, str | None] = field(default_factory=dict)
    """What the plan's tasks last wrote: project-relative path -> sha256 of the bytes left there (None:
    deleted), as the state stores it. A file whose digest differs was changed by someone else since."""
    providers: Mapping[str, Any] = field(default_factory=dict)
    """The plan's ``providers:`` by name (pytest_orch.plan.providers.Provider)."""
    attempt: int = 1
    """Which attempt of the task this is (1, then 2 ... under ``retries``)."""
    in_flight: tuple[Task, ...] = ()
    """For ``not_ready`` on the controller: the tasks decided to run that have not ended yet."""

    def resolve(self, path: str | os.PathLike[str], key: str = "path", *, write: bool = False) -> Path:
        """Return ``path`` resolved inside the project root, symlinks included.

        Raises HandlerError for an absolute path or ``..`` that leads outside the root, and with
        ``write`` for a path inside ``.git/`` or ``.orch/`` (tasks may read those, never write them).
        """
        root = self.real_root
        candidate = Path(path)
        full = candidate if candidate.is_absolute() else root / candidate
        resolved = full.resolve()
        if resolved != root and root not in resolved.parents:
            raise HandlerError(f"{key}: {str(path)!r} is outside the project root {root}")
        if write:
            folder = protected_folder(resolved.relative_to(root).as_posix())
            if folder is not None:
                raise HandlerError(refusal(key, str(path), folder))
        return resolved

    def relative(self, path: Path) -> str:
        """Return ``path`` relative to the project root, with forward slashes."""
        return path.resolve().relative_to(self.real_root).as_posix()

    @cached_property
    def real_root(self) -> Path:
        """The root with symlinks resolved, once: every path a handler touches is checked against it."""
        return self.root.resolve()


def plan_templates_dir(root: Path, plan_dir: str) -> Path | None:
    """The plan's ``templates/`` folder beside its plan files, when there is one."""
    folder = root / plan_dir / "templates"
    return folder if folder.is_dir() else None


@runtime_checkable
class Handler(Protocol):
    """A task type. Instances are stateless; one serves every task of its type.

    :cvar keys: the YAML keys the handler reads; any other handler key is a plan error.
    :cvar version: part of every task's fingerprint; bump it when results would differ.
    :cvar writes_files: True when the handler changes files, so a dirty work tree stops it.
    :cvar path_keys: optional; keys whose value is a path, checked to stay inside the project
        root when the plan is loaded (``TaskContext.resolve`` checks symlinks when it runs).
    :cvar write_keys: optional; the path keys the handler writes to, refused inside ``.git/`` and
        ``.orch/`` when the plan is loaded; resolve them with ``ctx.resolve(value, key, write=True)``.
    :cvar needs_confirmation: optional; True for a step a person does: it runs only once
        confirmed (``--confirm ID``, or a "y" at the prompt), and blocks its dependents until then.
    :cvar knows_changes: optional; True when ``Outcome.changed`` lists everything the task
        changed, so a run that changed nothing leaves its dependents up to date. A handler that
        cannot know (a command) is taken to have changed something whenever it ran.
    :cvar contained: optional; True when running a task cannot take the calling process down (its
        work is a subprocess, or this package's own Python). Only such tasks may run in the xdist
        controller while the workers start (``pytest_orch/xdist/early.py``); others wait for a worker.

    Optional method ``writes(task, ctx) -> list[Path] | None``: the files the task would write,
    so the dirty-tree guard asks only about those; None (or no method) guards the whole tree.
    Optional method ``not_ready(task, ctx) -> str | None``: why the task cannot start now (a spent
    quota), asked on the controller when the task is due; ``ctx.in_flight`` lists running tasks.
    Optional method ``preflight(tasks, ctx) -> list[str]``: what stops a real run before any task
    (a missing API key); each line is a usage error (exit 4). Not asked for ``--dry-run``.
    """

    keys: ClassVar[frozenset[str]]
    version: ClassVar[str]
    writes_files: ClassVar[bool]

    def validate(self, task: Task) -> None:
        """Raise PlanError(task.loc_of(key), ...) for a missing or wrong key."""

    def inputs(self, task: Task, ctx: TaskContext) -> list[Path]:
        """Return the files the task reads or edits, for its fingerprint."""

    def run(self, task: Task, ctx: TaskContext) -> Outcome:
        """Do the work, or with ``ctx.dry_run`` say what would change without changing it."""


__all__ = ["Handler", "HandlerError", "Outcome", "Status", "TaskContext"]
