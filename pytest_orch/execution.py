"""Running a task's handler in this process: its context, its outcome, its rate limit in process."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from pytest_orch.errors import HandlerError
from pytest_orch.handler import Outcome, TaskContext
from pytest_orch.outcomes import Status
from pytest_orch.overlay import ProjectFiles
from pytest_orch.plan.model import Task
from pytest_orch.ratelimit import TokenBucket, buckets_for
from pytest_orch.secrets import Masker, secret_names
from pytest_orch.session import OrchSession, is_worker


class TaskRunner:
    """One per process: the controller in process, or each xdist worker.

    ``confirmed(task_id)`` says whether a manual step was confirmed; on a worker it is always
    true, since the controller sends a step only once it is.
    """

    def __init__(self, session: OrchSession, confirmed: Callable[[str], bool] | None = None) -> None:
        self.session = session
        worker = is_worker(session.config)
        self.confirmed = confirmed or (lambda task_id: worker)
        self.files = ProjectFiles(dry_run=session.settings.dry_run)
        self.interactive = interactive(session)
        self._buckets: dict[str, TokenBucket] | None = None
        self._written: Mapping[str, str | None] | None = None
        self._phase_variables: dict[str, Mapping[str, str]] = {}
        self.live_written: Callable[[], Mapping[str, str | None] | None] = lambda: None
        """The controller's history, when there is one: what this run's tasks have written so far."""

    def context(self, task: Task) -> TaskContext:
        settings = self.session.settings
        ctx = TaskContext(
            root=settings.root,
            dry_run=settings.dry_run,
            force=settings.force,
            variables=self._variables(task.phase),
            templates_dir=self.session.templates_dir(task),
            timeout=task.timeout,
            confirmed=self.confirmed(task.id),
            interactive=self.interactive,
            files=self.files,
            written_digests=self.written_digests(),
            providers=self.session.plan.providers,
        )
        ctx.__dict__["real_root"] = self.real_root  # the cached_property's value, resolved once per run
        return ctx

    @functools.cached_property
    def real_root(self) -> Path:
        return self.session.settings.root.resolve()

    def _variables(self, phase_id: str) -> Mapping[str, str]:
        """The phase's variables, read-only: one view per phase, shared by its tasks' contexts."""
        view = self._phase_variables.get(phase_id)
        if view is None:
            variables = dict(self.session.plan.phase(phase_id).variables)
            view = self._phase_variables[phase_id] = MappingProxyType(variables)
        return view

    def written_digests(self) -> Mapping[str, str | None]:
        """The state's digests of what tasks wrote: the run's live view on the controller; a worker
        reads the store once (what earlier runs wrote is what a guard like ``overwrite: false`` needs)."""
        live = self.live_written()
        if live is not None:
            return live
        if self._written is None:
            from pytest_orch.state import read_written_digests  # a worker imports the store only now

            self._written = read_written_digests(self.session.settings.root)
        return self._written

    @functools.cached_property
    def masker(self) -> Masker:
        """Masks the values of the plan's secrets and API keys, as this process sees them."""
        return Masker.from_env(secret_names(self.session.plan))

    def execute(self, task: Task, attempt: int = 1) -> Outcome:
        """Run the task's handler; an expected handler error becomes a failed outcome.

        Under ``--force`` the work is done for real: a handler that found nothing to change has
        still passed (with ``changed`` empty), never "up to date".
        """
        ctx = self.context(task)
        ctx.attempt = attempt
        lines: list[str] = []
        ctx.log = lines.append
        try:
            outcome = self.session.handlers[task.type].run(task, ctx)
        except HandlerError as exc:
            outcome = Outcome(Status.FAILED, message=str(exc))
        if lines:
            outcome.output = "\n".join(lines) + ("\n" + outcome.output if outcome.output else "")
        if ctx.force and outcome.status is Status.UP_TO_DATE:
            outcome.status = Status.PASSED
        return outcome

    def wait_for_rate_limit(self, task: Task) -> None:
        """In process, hold a task of a rate-limited pool until its bucket has a token.

        Under xdist the controller's scheduler takes the token before it sends the task.
        """
        if self._buckets is None:
            self._buckets = buckets_for(self.session.plan.rate_limits)
        bucket = self._buckets.get(task.pool or "")
        if bucket is None:
            return
        while not bucket.try_take():
            time.sleep(bucket.wait_time())


def interactive(session: OrchSession) -> bool:
    """A person can answer a prompt: -s, a terminal on stdin, not CI, not an xdist worker."""
    config = session.config
    return (
        config.getoption("capture", "fd") == "no"
        and sys.stdin is not None and sys.stdin.isatty()
        and not os.environ.get("CI")
        and not is_worker(config)
    )
