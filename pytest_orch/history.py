"""The state's answers for one run: is a task up to date, and if not why it runs; records results.

Answers are returned, never stored elsewhere: the coordinator keeps the reasons in its decisions.
Read-only (``--dry-run``, ``--orch-status``) never creates ``.orch/`` and records nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_orch.dag import barrier_name
from pytest_orch.fingerprint import (
    FileHasher,
    Fingerprint,
    compute,
    expand_inputs,
    sha256_bytes,
    up_to_date_message,
    why_stale,
)
from pytest_orch.handler import TaskContext
from pytest_orch.outcomes import Status
from pytest_orch.plan.model import Task
from pytest_orch.reports.run_json import iso
from pytest_orch.results import TaskResult
from pytest_orch.session import OrchSession
from pytest_orch.state import StateStore, TaskRecord


@dataclass(frozen=True)
class Freshness:
    """Whether a task need not run again, and the reason either way, in words for people."""

    up_to_date: bool
    reason: str


class History:
    """What earlier runs left behind, as the coordinator asks for it; records this run's results."""

    def __init__(self, session: OrchSession, store: StateStore, run_id: str, *,
                 context_of: Callable[[Task], TaskContext]) -> None:
        self.session = session
        self.root = session.settings.root
        self.store = store
        self.readonly = store.readonly
        self.run_id = run_id
        self.context_of = context_of
        self.hasher = FileHasher()
        self.last: dict[str, TaskRecord] = store.last_results()
        self.harness_written = store.harness_written()
        self.writers = store.harness_writers()
        self.confirmed = store.confirmations()
        self.fingerprints: dict[str, Fingerprint] = {}
        self.tokens: dict[str, str] = {}
        self.carried_over: set[str] = set()

    # -- start and end ---------------------------------------------------------------------------
    def begin(self, started: float, git_clean: bool | None) -> None:
        if not self.readonly:
            self.store.begin_run(self.run_id, iso(started), sys.argv, git_clean)
            self.store.event("run_start", run_id=self.run_id, pid=os.getpid())

    def end(self, finished: float, outcome: str) -> None:
        try:
            if not self.readonly:
                self.store.end_run(self.run_id, iso(finished), outcome)
                self.store.event("run_end", run_id=self.run_id, outcome=outcome)
        finally:
            self.store.close()

    def durations(self) -> dict[str, float]:
        """Seconds each task took when it last passed: the scheduler's estimates."""
        return self.store.durations()

    # -- the coordinator's questions --------------------------------------------------------------
    def previous_outcome(self, task_id: str) -> Status | None:
        record = self.last.get(task_id)
        return Status.from_wire(record.outcome) if record else None

    def is_confirmed(self, task_id: str) -> bool:
        return task_id in self.confirmed

    def freshness(self, task: Task, force: bool = False) -> Freshness:
        """Up to date, or why it must run ("never ran", "input src/a.ts changed", "forced").

        Called for every task that may run, forced or not, so the fingerprint is taken before
        the task changes its own inputs.
        """
        fingerprint = self.fingerprint(task)
        previous = self.last.get(task.id)
        reason = why_stale(previous, fingerprint, self.root, self.hasher, force=force,
                           harness_written=self.harness_written,
                           written_later=lambda path, digest: self._written_after(task.id, path, digest))
        if reason is None and previous is not None:
            self.carried_over.add(task.id)
            return Freshness(True, up_to_date_message(previous))
        return Freshness(False, reason or "never ran")

    def _written_after(self, task_id: str, path: str, digest: str | None) -> bool:
        """True when ``path`` holds exactly what another task of the plan wrote after this one passed.

        Several config edits of one file each read it as input: the later edits are the plan's own
        work, not a change that makes the earlier task stale (else every rerun redoes them).
        """
        writer = self.writers.get(path)
        if writer is None or writer == task_id or self.harness_written.get(path) != digest:
            return False
        mine, theirs = self.last.get(task_id), self.last.get(writer)
        return bool(mine and theirs and mine.since and theirs.finished and theirs.finished > mine.since)

    def fingerprint(self, task: Task) -> Fingerprint:
        """The task's fingerprint now, before it runs (the file it edits as it is before the edit)."""
        if task.id not in self.fingerprints:
            handler = self.session.handlers[task.type]
            paths = list(handler.inputs(task, self.context_of(task)))
            paths += expand_inputs(task.inputs, self.root, self.hasher)
            graph = self.session.graph
            deps = {dep: self.token(dep) for dep in sorted(graph.direct.get(task.id, ()))}
            deps.update({barrier_name(b): self.barrier_token(b) for b in graph.via.get(task.id, ())})
            self.fingerprints[task.id] = compute(task.definition, handler.version, paths, self.root,
                                                 deps, self.hasher)
        return self.fingerprints[task.id]

    def token(self, task_id: str) -> str:
        token = self.tokens.get(task_id)
        if token is None:  # a digest per dependency edge adds up: compute each task's once
            record = self.last.get(task_id)
            token = self.tokens[task_id] = record.token if record else ""
        return token

    def barrier_token(self, barrier: str) -> str:
        """One token for every task of a phase or group: what a task that depends on it records.

        Taken when a dependent is due, when every task of the barrier has ended, and kept: each
        dependent would otherwise hash the tokens of the whole phase again (quadratic in the plan).
        """
        token = self.tokens.get(barrier)
        if token is None:
            members = "\n".join(f"{t}:{self.token(t)}" for t in sorted(self.session.graph.barriers[barrier]))
            token = self.tokens[barrier] = sha256_bytes(members.encode())[:32]
        return token

    # -- recording ----------------------------------------------------------------------------------
    def task_started(self, task_id: str, attempt: int) -> None:
        if not self.readonly:
            self.store.event("task_start" if attempt == 1 else "task_retry", task_id=task_id, attempt=attempt)

    def task_ended(self, result: TaskResult, task: Task) -> None:
        """Record the final result; a task that ran changes what later fingerprints read."""
        if self.readonly or result.task_id is None:
            return
        status = result.status
        if task.id in self.carried_over and status is Status.UP_TO_DATE:
            return  # nothing happened: the earlier pass stays the task's last result, as its token does
        ran = status in (Status.PASSED, Status.FAILED)
        # Up to date by the handler (nothing to change): a new fingerprint, so the next run does
        # not find it stale again.
        fingerprint = self.fingerprints.get(task.id)
        if fingerprint is None and status.done:
            fingerprint = self.fingerprint(task)
        # A task that ran and knows it changed nothing keeps the pass its dependents rely on.
        unchanged = status.done and not result.changed and (
            status is Status.UP_TO_DATE or self.session.knows_changes(task))
        started, finished = iso(result.started), iso(result.finished)
        with self.store.transaction():  # one commit per task: it is all or nothing after a kill
            record = self.store.record_result(
                self.run_id, task.id, status.value, fingerprint, started, finished,
                result.duration, result.attempts, result.worker, result.changed if ran else [], {},
                result.message, unchanged=unchanged,
            )
            self.store.record_attempt(self.run_id, task.id, result.attempts, started, finished, status.value,
                                      result.worker, result.changed if ran else [])
            for call in result.calls:  # the ledger of requests to providers
                self.store.event("call", task_id=task.id, **call)
            self.store.event("task_end", task_id=task.id, outcome=status.value, attempts=result.attempts)
        if status.done:
            self.tokens[task.id] = record.token
            self.last[task.id] = record
            for path in result.changed:
                self.harness_written[path] = record.written.get(path)
                self.writers[path] = task.id
        if self.session.needs_confirmation(task) and status is Status.PASSED:
            self.store.confirm(task.id, iso(result.finished) or "")
            self.confirmed.add(task.id)
        if ran:
            self.hasher.invalidate()


def open_history(session: OrchSession, run_id: str, *, readonly: bool,
                 context_of: Callable[[Task], TaskContext]) -> History:
    return History(session, StateStore.open(session.settings.root, readonly=readonly), run_id,
                   context_of=context_of)


__all__ = ["Freshness", "History", "open_history", "Path"]
