"""``--orch-export``, ``--orch-merge`` and ``--orch-restore``: the plan as CI jobs, and their work brought back.

Registered on the controller for those flags, as ``--orch-graph`` is: the session collects nothing
and runs no task (no workers, no coordinator, no run lock but the merge's own). A bad plan is
reported the way ``--orch-graph`` reports it; a refusal is one line and exit status 4.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_orch import compat
from pytest_orch.export.jobs import (
    DEFAULT_SETUP,
    EXPORT_MARK,
    MERGE_JOB,
    Export,
    ExportError,
    build_jobs,
    slug,
    unordered_writes,
)
from pytest_orch.fileio import atomic_write
from pytest_orch.merge.inputs import MergeError
from pytest_orch.options import Settings
from pytest_orch.outcomes import RunOutcome
from pytest_orch.plan.digest import plan_digest
from pytest_orch.session import OrchSession


class CiCommand:
    """Does one of export, merge or restore at collection time, then ends the session."""

    def __init__(self, session: OrchSession) -> None:
        self.session = session
        self.exit_status: int = pytest.ExitCode.OK
        config = session.config
        config.option.collectonly = True  # nothing runs: the controller and progress stay idle
        compat.run_in_process(config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.session.ok:
            raise pytest.UsageError("\n".join(self.session.all_errors()))

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        settings = self.session.settings
        try:
            if settings.export:
                lines = self._export()
            else:
                lines = self._bring_in()
        except (ExportError, MergeError) as exc:
            raise pytest.UsageError(str(exc)) from None
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)
            else:
                sys.stdout.write(line + "\n")
        return True  # collect nothing

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        session.exitstatus = self.exit_status

    # -- the three commands ------------------------------------------------------------------------
    def _export(self) -> list[str]:
        from pytest_orch.export import github, gitlab

        settings = self.session.settings
        plan = self.session.plan
        target = settings.export
        module = github if target == "github" else gitlab
        relpath = settings.export_file or module.path_for(slug(plan.name))
        path = Path(relpath) if Path(relpath).is_absolute() else settings.root / relpath
        jobs = build_jobs(plan, self.session.graph, settings.export_by)
        export = Export(plan=plan.name, plan_digest=plan_digest(plan), by=settings.export_by, jobs=jobs,
                        setup=settings.ci_setup or (DEFAULT_SETUP,),
                        python=f"{sys.version_info.major}.{sys.version_info.minor}")
        shown = _shown(path, settings.root)
        if path.exists() and not settings.force and not _written_by_export(path):
            raise ExportError(f"{shown} exists and was not written by --orch-export (its first line is not "
                              f"{EXPORT_MARK!r}...): pass --force to replace it")
        atomic_write(path, module.render(export, shown))
        lines = [f"wrote {shown}: {len(jobs)} jobs and {MERGE_JOB}, one per {settings.export_by}"]
        for job in jobs:
            needs = f" (needs {', '.join(job.needs)})" if job.needs else ""
            lines.append(f"  {job.id}: {job.command}{needs}")
        return lines + [f"warning: {line}" for line in unordered_writes(jobs, self._writes_of)]

    def _writes_of(self, task_id: str) -> list[str] | None:
        """The files a task's handler says it writes (relative), or None when it cannot say."""
        from pytest_orch.collect import RUNNER_KEY

        task = self.session.plan.tasks[task_id]
        writes = getattr(self.session.handlers[task.type], "writes", None)
        if writes is None:
            return None
        ctx = self.session.config.stash[RUNNER_KEY].context(task)
        try:
            return [ctx.relative(p) for p in writes(task, ctx)]
        except Exception:  # noqa: BLE001 - a bad path is the run's to report; the export only warns
            return None

    def _bring_in(self) -> list[str]:
        from pytest_orch.merge.run import bring_in, describe

        settings = self.session.settings
        reports = bool(settings.merge)
        outcome = bring_in(self.session, list(settings.merge or settings.restore), reports=reports,
                           force=settings.force)
        if outcome.merged is not None and outcome.merged.outcome is not RunOutcome.PASSED:
            # the merged run failed (or is blocked): so does the merge job, as a local run would
            self.exit_status = pytest.ExitCode.TESTS_FAILED
            if outcome.merged.outcome is RunOutcome.INTERRUPTED:
                self.exit_status = pytest.ExitCode.INTERRUPTED
        return describe(outcome, settings.root, reports)


def no_plan_message(config: pytest.Config, settings: Settings) -> str:
    """Why --orch-export/--orch-merge/--orch-restore found no plan; most often, the rootdir pytest chose."""
    flag = "--orch-export" if settings.export else "--orch-merge" if settings.merge else "--orch-restore"
    message = f"{flag}: no plan at {settings.plan_path}"
    if settings.root != config.invocation_params.dir:
        # pytest takes its rootdir from the paths on the command line before it knows our flags,
        # so folders given outside the project move it
        message += (f" (pytest chose the rootdir {settings.root} from the folders given; give folders inside the "
                    "project, e.g. unpacked under .orch/ci/in/, or name it with --rootdir and -c)")
    return message


def _written_by_export(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline().startswith(EXPORT_MARK)
    except (OSError, UnicodeDecodeError):
        return False


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
