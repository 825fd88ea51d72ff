"""One run's use of the .orch/ state: lock, git check, up-to-date decisions and records."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_orch.fingerprint import FileHasher, Fingerprint, compute, expand_inputs, up_to_date_message, why_stale
from pytest_orch.gitstate import dirty_excluding, git_status
from pytest_orch.plan.model import Task
from pytest_orch.reports.run_json import iso
from pytest_orch.runlock import RunLock
from pytest_orch.state import StateStore, TaskRecord

if TYPE_CHECKING:
    from pytest_orch.results import TaskResult
    from pytest_orch.runtime import Runtime


class RunState:
    """The coordinator's History, backed by the state store; writes nothing when read-only.

    Read-only (``--dry-run``, ``--orch-status``) never creates ``.orch/``, takes no lock and
    records nothing; decisions still read what earlier runs left.
    """

    def __init__(self, runtime: Runtime, run_id: str, started: float, *, readonly: bool) -> None:
        self.runtime = runtime
        self.root = runtime.settings.root
        self.run_id = run_id
        self.readonly = readonly
        self.lock: RunLock | None = None
        if not readonly:
            self.lock = RunLock(self.root)
            self.lock.acquire(started=iso(started), argv=sys.argv)  # raises RunLocked at once
        self.store = StateStore.open(self.root, readonly=readonly)
        self.hasher = FileHasher()
        self.last: dict[str, TaskRecord] = self.store.last_results()
        self.harness_written = self.store.harness_written()
        self.confirmed = self.store.confirmations()
        self.fingerprints: dict[str, Fingerprint] = {}
        self.tokens: dict[str, str] = {}
        self.carried_over: set[str] = set()
        self.git_clean: bool | None = None
        self.git_note = ""
        self.dirty: list[str] = []
        runtime.durations = self.store.durations()

    # -- start and end ---------------------------------------------------------------------------
    def check_git(self, report_dir: Path) -> None:
        """Find uncommitted changes the plan did not make (its reports and .orch/ never count)."""
        status = git_status(self.root)
        if not status.is_repo:
            self.git_note = status.note or "not a git work tree: changes cannot be checked"
            return
        ignore = [".orch"]
        try:
            ignore.append(report_dir.resolve().relative_to(self.root.resolve()).as_posix())
        except ValueError:
            pass
        self.dirty = dirty_excluding(status, self.harness_written, self.root, ignore_dirs=ignore,
                                     sha=self.hasher.sha)
        self.git_clean = not self.dirty

    def begin(self, started: float) -> None:
        if not self.readonly:
            self.store.begin_run(self.run_id, iso(started), sys.argv, self.git_clean)
            self.store.event("run_start", run_id=self.run_id, pid=os.getpid())

    def end(self, finished: float, outcome: str) -> None:
        try:
            if not self.readonly:
                self.store.end_run(self.run_id, iso(finished), outcome)
                self.store.event("run_end", run_id=self.run_id, outcome=outcome)
        finally:
            self.store.close()
            if self.lock is not None:
                self.lock.release()

    # -- the coordinator's History ------------------------------------------------------------------
    def previous_outcome(self, task_id: str) -> str | None:
        record = self.last.get(task_id)
        return record.outcome if record else None

    def is_confirmed(self, task_id: str) -> bool:
        return task_id in self.confirmed

    def up_to_date(self, task: Task, force: bool = False) -> str | None:
        fingerprint = self.fingerprint(task)
        previous = self.last.get(task.id)
        reason = why_stale(previous, fingerprint, self.root, self.hasher, force=force,
                           harness_written=self.harness_written)
        if reason is None and previous is not None:
            self.carried_over.add(task.id)
            return up_to_date_message(previous)
        self.runtime.run_reasons[task.id] = reason or "never ran"
        return None

    def fingerprint(self, task: Task) -> Fingerprint:
        """The task's fingerprint now, before it runs (the file it edits as it is before the edit)."""
        if task.id not in self.fingerprints:
            runtime = self.runtime
            handler = runtime.handlers[task.type]
            ctx = runtime.context(task)
            paths = list(handler.inputs(task, ctx)) + expand_inputs(task.inputs, self.root, self.hasher)
            deps = {dep: self.token(dep) for dep in sorted(runtime.graph.requires.get(task.id, ()))}
            self.fingerprints[task.id] = compute(task.definition, handler.version, paths, self.root,
                                                 deps, self.hasher)
        return self.fingerprints[task.id]

    def token(self, task_id: str) -> str:
        token = self.tokens.get(task_id)
        if token is None:  # a digest per dependency edge adds up: compute each task's once
            record = self.last.get(task_id)
            token = self.tokens[task_id] = record.token if record else ""
        return token

    # -- recording ------------------------------------------------------------------------------
    def task_started(self, task_id: str, attempt: int) -> None:
        if not self.readonly:
            self.store.event("task_start" if attempt == 1 else "task_retry", task_id=task_id, attempt=attempt)

    def task_ended(self, result: TaskResult, task: Task) -> None:
        """Record the final result; a task that ran changes what later fingerprints read."""
        if self.readonly or result.task_id is None:
            return
        if task.id in self.carried_over and result.outcome == "up_to_date":
            # nothing happened: the earlier pass stays the task's last result, as its token does
            return
        ran = result.outcome in ("passed", "failed")
        # Up to date by our decision: the same fingerprint, and the store keeps the earlier pass's
        # run and outputs. Up to date by the handler (nothing to change): a new fingerprint, so the
        # next run does not find it stale again.
        fingerprint = self.fingerprints.get(task.id)
        if task.id in self.carried_over:
            fingerprint = None  # the store carries the earlier pass over, so dependents' tokens hold
        elif fingerprint is None and result.outcome in ("passed", "up_to_date"):
            fingerprint = self.fingerprint(task)
        with self.store.transaction():  # one commit per task: it is all or nothing after a kill
            record = self.store.record_result(
                self.run_id, task.id, result.outcome, fingerprint, iso(result.started), iso(result.finished),
                result.duration, result.attempts, result.worker, result.changed if ran else [], {},
                result.message,
            )
            self.store.record_attempt(self.run_id, task.id, result.attempts, iso(result.started),
                                      iso(result.finished), result.outcome, result.worker, None,
                                      result.changed if ran else [])
            self.store.event("task_end", task_id=task.id, outcome=result.outcome, attempts=result.attempts)
        if result.outcome in ("passed", "up_to_date"):
            self.tokens[task.id] = record.token
            self.last[task.id] = record
            for path in result.changed:
                self.harness_written[path] = record.written.get(path)
        if task.type == "manual" and result.outcome == "passed":
            self.store.confirm(task.id, iso(result.finished) or "")
            self.confirmed.add(task.id)
        if ran:
            self.hasher.invalidate()
