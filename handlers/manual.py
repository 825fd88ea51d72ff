"""The ``manual`` handler: a step a person does, passed once it is confirmed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

from pytest_orch.handlers import params

from pytest_orch.handler import Outcome, TaskContext
from pytest_orch.plan.model import Task

YES = ("y", "yes")


class ManualHandler:
    """Pass when confirmed (``--confirm ID``, or a "y" at the prompt); otherwise skip with the
    instructions as the reason, so the tasks that depend on it do not run.

    It reads the terminal only when ``ctx.interactive`` is set, which the core does only with
    ``-s`` on a terminal outside CI and outside xdist workers: under CI it never waits.
    """

    keys: ClassVar[frozenset[str]] = frozenset({"instructions"})
    version: ClassVar[str] = "1"
    contained: ClassVar[bool] = True  # a check of a confirmation: it may run in the xdist controller
    writes_files: ClassVar[bool] = False
    needs_confirmation: ClassVar[bool] = True
    knows_changes: ClassVar[bool] = True  # it changes no file
    typical_seconds: ClassVar[float] = 0.001  # a check of a confirmation: -n does not pay off for it

    def validate(self, task: Task) -> None:
        params.expect(task, "instructions", str, required=True)

    def inputs(self, task: Task, ctx: TaskContext) -> list[Path]:
        return []

    def run(self, task: Task, ctx: TaskContext) -> Outcome:
        instructions = str(task.params["instructions"]).strip()
        if ctx.confirmed:
            return Outcome("passed", message="confirmed")
        if ctx.interactive and not ctx.dry_run and _ask(f"{instructions}\nDone? [y/N] "):
            return Outcome("passed", message="confirmed at the prompt")
        return Outcome("skipped", message=instructions)


def _ask(prompt: str) -> bool:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):  # stdin closed or captured
        return False
    return answer.strip().lower() in YES
