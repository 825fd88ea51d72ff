"""Build a Task and a TaskContext for calling a handler directly, without the plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_orch.errors import Location
from pytest_orch.handler import Outcome, TaskContext
from pytest_orch.outcomes import Status
from pytest_orch.overlay import ProjectFiles
from pytest_orch.plan.model import Task

PLAN_FILE = "phases/plan.yaml"


def make_task(type_: str, task_id: str = "1.1", **params: Any) -> Task:
    """A task of ``type_`` whose handler keys are ``params``; key ``k`` sits on line 10 + its index."""
    key_locs = {key: Location(PLAN_FILE, 10 + i, 7) for i, key in enumerate(params)}
    return Task(
        id=task_id, name=task_id, type=type_, phase="1", group="a", depends_on=(), timeout=None,
        retries=0, retry_delay=0.0, backoff=1.0, on_failure="skip_dependents", critical=True,
        pool=None, tags=(), inputs=(), params=params, definition={"type": type_, **params},
        loc=Location(PLAN_FILE, 9, 5), key_locs=key_locs,
    )


def make_ctx(root: Path, **fields: Any) -> TaskContext:
    """A context over ``root``, reading and writing through a ProjectFiles of its own (a dry run's
    overlay when ``dry_run=True``)."""
    fields.setdefault("files", ProjectFiles(dry_run=fields.get("dry_run", False)))
    return TaskContext(root=root, **fields)


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes, to prove a dry run wrote nothing."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def assert_status(outcome: Outcome, status: str) -> None:
    assert outcome.status is Status(status), f"{outcome.status}: {outcome.message}"
