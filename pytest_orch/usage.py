"""Flags that name nothing, or a place that cannot be written: usage errors (exit 4) before anything runs.

Two moments: ``check_flags`` at configure, before the plan is read (report paths, empty lists,
``--orch-status`` without a plan); ``selection_errors`` once the plan is known (every id a flag names
must exist in it, with a near name suggested).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_orch.plan.suggest import suggest

if TYPE_CHECKING:
    from pytest_orch.options import Settings
    from pytest_orch.plan.model import Plan

# flags whose value is a list of ids (repeat or comma-separate): ",," names nothing
LIST_FLAGS = (("orch_phase", "--phase"), ("orch_group", "--group"), ("orch_confirm", "--confirm"))


def check_flags(config: pytest.Config, settings: Settings) -> None:
    """Raise UsageError for flags that are wrong whatever the plan says."""
    for dest, flag in LIST_FLAGS:
        for value in config.getoption(dest) or []:
            if not any(part.strip() for part in value.split(",")):
                raise pytest.UsageError(f"{flag} {value!r}: names nothing (expected ids, comma-separated)")
    if settings.status and not settings.has_plan:
        raise pytest.UsageError(
            f"--orch-status: there is no plan here ({_shown(settings.plan_path, settings.root)} does not exist; "
            f"name one with --plan PATH or the orch_phases ini option)")
    if settings.has_plan:
        check_report_dir(settings.report_dir, settings.root, explicit=bool(config.getoption("orch_report")))


def check_report_dir(folder: Path, root: Path, explicit: bool) -> None:
    """The report folder must be a folder we may create or write, found before any task runs.

    The default ``reports/`` must also stay inside the project: a symlink that leads out of it
    would have the run write somewhere nobody asked for. A folder named with ``--orch-report``
    may be anywhere.
    """
    flag = "--orch-report" if explicit else "the report folder"
    shown = _shown(folder, root)
    for part in [folder, *folder.parents]:
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                what = "is a file" if part == folder else f"cannot be created: {_shown(part, root)} is a file"
                if part.is_symlink() and not part.exists():
                    what = f"is a broken symlink ({os.readlink(part)})"
                raise pytest.UsageError(f"{flag} {shown} {what}; name a folder")
            if not os.access(part, os.W_OK | os.X_OK) and part == folder:
                raise pytest.UsageError(f"{flag} {shown} is not writable")
            break
    if not explicit and folder.exists():
        real, real_root = folder.resolve(), root.resolve()
        if not real.is_relative_to(real_root):
            raise pytest.UsageError(f"the report folder {shown} leads outside the project (to {real}); "
                                    f"remove the link or name a folder with --orch-report")


def selection_errors(settings: Settings, plan: Plan, manual: Iterable[str]) -> list[str]:
    """Every --phase, --group, --confirm, --var and --pool value that names nothing in the plan.

    ``manual`` lists the tasks that wait for a confirmation (their handler needs one).
    """
    phases = [p.id for p in plan.phases]
    errors = [f"--phase {wanted}: no such phase in the plan (phases: {', '.join(phases)}){suggest(wanted, phases)}"
              for wanted in sorted(settings.phases - set(phases))]
    groups = sorted({g.id for p in plan.phases for g in p.groups} |
                    {f"{p.id}.{g.id}" for p in plan.phases for g in p.groups})
    errors += [f"--group {wanted}: no such group in the plan (groups: {', '.join(groups)}){suggest(wanted, groups)}"
               for wanted in sorted(settings.groups - set(groups))]
    manual = list(manual)
    for wanted in sorted(settings.confirm - set(manual)):
        if wanted in plan.tasks:
            errors.append(f"--confirm {wanted}: task {wanted} is a {plan.tasks[wanted].type} task, "
                          f"not a manual step (manual steps: {_listed(manual)})")
        else:
            errors.append(f"--confirm {wanted}: no such manual step in the plan (manual steps: {_listed(manual)})"
                          f"{suggest(wanted, manual)}")
    names = sorted(plan.variable_names)
    errors += [f"--var {name}: the plan has no variable {name} (variables: {_listed(names)}){suggest(name, names)}"
               for name in sorted(set(settings.variables) - set(names))]
    pools = sorted(set(plan.pools) | set(plan.rate_limits))  # a rate-limited name is a pool too
    errors += [f"--pool {name}: the plan has no pool {name} (pools: {_listed(pools)}){suggest(name, pools)}"
               for name in sorted(set(settings.pools) - set(pools))]
    return errors


def _listed(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)
