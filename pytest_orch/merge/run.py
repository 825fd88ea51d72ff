"""``--orch-merge`` and ``--orch-restore``: bring CI jobs' work into this project.

Both merge the jobs' states into one ``.orch/state.db`` and put the files the plan's tasks wrote in
place; ``--orch-merge`` also writes one set of reports. Everything is read and checked first (plan
version, state schema, files two unordered jobs both changed, a local state or a hand edit in the
way): a refusal changes nothing.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pytest_orch.dag import barrier_name
from pytest_orch.fileio import atomic_write
from pytest_orch.fingerprint import FileHasher
from pytest_orch.gitstate import git_status
from pytest_orch.merge.inputs import JobInput, MergeError, check_state_schema, check_versions, read_job
from pytest_orch.merge.reports_merge import MergedRun, classname, merge_results, write_run_json
from pytest_orch.merge.state_merge import FileChoice, StateMerge, sources_of
from pytest_orch.plan.digest import plan_digest
from pytest_orch.reports.junit import write_junit
from pytest_orch.reports.pictures import write_pictures
from pytest_orch.runlock import RunLock, RunLocked
from pytest_orch.session import OrchSession
from pytest_orch.state import DB_NAME, EVENTS_NAME, STATE_DIR, StateStore


@dataclass
class BroughtIn:
    """What a merge or restore did: the jobs read, those missing, the runs kept, the files changed."""

    jobs: list[JobInput]
    missing: list[str]
    runs: int
    files_written: list[str] = field(default_factory=list)
    files_deleted: list[str] = field(default_factory=list)
    merged: MergedRun | None = None
    report_paths: list[Path] = field(default_factory=list)


def bring_in(session: OrchSession, dirs: list[str], *, reports: bool, force: bool) -> BroughtIn:
    """Merge the jobs' artifacts in ``dirs`` into the project (and its reports when ``reports``)."""
    settings = session.settings
    root = settings.root
    base = session.config.invocation_params.dir
    jobs, missing = [], []
    for shown in dirs:
        folder = Path(shown) if Path(shown).is_absolute() else base / shown
        if not folder.exists() and reports:
            missing.append(shown)  # a job that never ran uploads nothing: its tasks are reported not run
            continue
        jobs.append(read_job(folder, shown))
    if not jobs:
        raise MergeError(f"none of {', '.join(dirs)} exists: no job's artifact to merge")
    check_versions(jobs, session.plan.name, plan_digest(session.plan))
    check_state_schema(jobs)
    graph = session.graph
    state = StateMerge(sources_of(jobs), {barrier_name(b): members for b, members in graph.barriers.items()})
    merged = None
    if reports:
        nodeid_of = {task_id: nodeid for nodeid, task_id in session.nodeids.items()}
        scope = [t.id for t in session.plan.tasks.values() if session.in_selected_scope(t)]
        merged = merge_results(jobs, session.plan, nodeid_of, scope)
    _check_local_state(root, force)
    writes, deletes = _file_changes(root, state.files, force)
    lock = RunLock(root)
    try:
        lock.acquire()
    except RunLocked as exc:
        raise MergeError(str(exc)) from None
    try:
        # the files first, then the state that vouches for them: a merge cut off halfway leaves no state
        # naming files that are not there. Each file is replaced atomically; one sync makes them all durable.
        for choice in writes:
            assert choice.copy is not None
            atomic_write(root / choice.path, choice.copy.read_bytes(), fsync=False)
            os.chmod(root / choice.path, choice.copy.stat().st_mode & 0o777)  # a generated script stays runnable
        for choice in deletes:
            (root / choice.path).unlink()
        if writes or deletes:
            os.sync()
        _install_state(root, state, force)
        outcome = BroughtIn(jobs, missing, len(state.runs), [c.path for c in writes], [c.path for c in deletes])
        if merged is not None:
            outcome.merged = merged
            outcome.report_paths = _write_reports(session, merged)
        return outcome
    finally:
        lock.release()


def _check_local_state(root: Path, force: bool) -> None:
    db = root / STATE_DIR / DB_NAME
    if not db.exists() or force:
        return
    with StateStore.open(root, readonly=True) as store:
        runs = len(store.runs())
    if runs:
        raise MergeError(f"{STATE_DIR}/{DB_NAME} exists with {runs} local runs: the merge writes a new one from the "
                         f"jobs' states; pass --force to replace it (kept as {DB_NAME}.before-merge)")


def _file_changes(root: Path, files: dict[str, FileChoice], force: bool) -> tuple[list[FileChoice],
                                                                                   list[FileChoice]]:
    """The files to write and to delete; a hand edit in the way (uncommitted) stops it unless --force."""
    hasher = FileHasher()
    writes, deletes = [], []
    for path, choice in files.items():
        target = (root / path).resolve()
        if Path(path).is_absolute() or root.resolve() not in target.parents:
            raise MergeError(f"{path}: outside the project; a job's state may only name files inside it")
        now = hasher.sha(target)
        if now == choice.sha:
            continue
        (deletes if choice.sha is None else writes).append(choice)
    if force or not (writes or deletes):
        return writes, deletes
    status = git_status(root)
    dirty = set(status.dirty)
    edited = sorted(c.path for c in writes + deletes if c.path in dirty and (root / c.path).exists())
    if edited:
        shown = ", ".join(edited[:5]) + (f" and {len(edited) - 5} more" if len(edited) > 5 else "")
        raise MergeError(f"uncommitted changes in {shown}, which the jobs' tasks also changed: commit or stash "
                         "them, or pass --force to take the jobs' version")
    return writes, deletes


def _install_state(root: Path, state: StateMerge, force: bool) -> None:
    """Build the merged database beside the old one, then move it into place."""
    folder = root / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / DB_NAME
    if db.exists():
        # a consistent copy first (the WAL included), then the old files go
        backup = folder / f"{DB_NAME}.before-merge"
        source, copy = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True), sqlite3.connect(backup)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    work = Path(tempfile.mkdtemp(prefix="merge-", dir=folder))
    try:
        built = state.write(work)
        for suffix in ("-wal", "-shm"):
            (folder / f"{DB_NAME}{suffix}").unlink(missing_ok=True)
        os.replace(built, db)
        lines = "".join(data + "\n" for _, _, data in state.events())
        atomic_write(folder / EVENTS_NAME, lines)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_reports(session: OrchSession, merged: MergedRun) -> list[Path]:
    settings = session.settings
    folder = settings.report_dir
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-merge-" + uuid.uuid4().hex[:6]
    junit = folder / "junit.xml"
    write_junit(junit, merged.results, session.plan.name, merged.started,
                lambda result: classname(session.plan, result))
    write_run_json(folder / "run.json", merged, session.plan, run_id)
    with StateStore.open(settings.root, readonly=True) as store:
        write_pictures(folder, merged.results, session.plan, session.graph, run_id=run_id, started=merged.started,
                       outcome=merged.outcome.value, git_clean=merged.git_clean, dry_run=False,
                       command="pytest --orch-merge " + " ".join(job["job"] for job in merged.jobs),
                       blocked=(), store=store)
    return [junit, folder / "run.json", folder / "timeline.svg", folder / "index.html"]


def describe(outcome: BroughtIn, root: Path, reports: bool) -> list[str]:
    """The lines the terminal shows after a merge or restore."""
    lines = []
    names = ", ".join(job.job for job in outcome.jobs)
    changed = len(outcome.files_written) + len(outcome.files_deleted)
    verb = "merged" if reports else "restored"
    lines.append(f"{verb} {_count(len(outcome.jobs), 'job')} ({names}): {_count(outcome.runs, 'run')} in "
                 f"{STATE_DIR}/{DB_NAME}, {_count(changed, 'file')} changed in the project")
    for shown in outcome.missing:
        lines.append(f"{shown}: no such folder: that job reported nothing (it did not run)")
    if outcome.merged is not None:
        merged = outcome.merged
        counts = Counter(r.status.value for r in merged.results)
        words = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items()))
        lines.append(f"run outcome {merged.outcome.value}: {words}")
        shown = []
        for path in outcome.report_paths:
            try:
                shown.append(path.relative_to(root).as_posix())
            except ValueError:
                shown.append(str(path))
        lines.append("reports: " + ", ".join(shown))
    return lines


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


__all__ = ["MergeError", "BroughtIn", "bring_in", "describe"]
