"""Command-line flags and ini keys, and the Settings they resolve to once per session."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PLAN_HELP = "plan file or folder (default: the orch_phases ini value, else phases/)"
PHASE_HELP = "run only these phases (repeat or comma-separate)"
GROUP_HELP = "run only these groups: ID or PHASE.ID (repeat or comma-separate)"
DRY_RUN_HELP = "every handler says what it would change, with a diff, and changes nothing"
FORCE_HELP = "run tasks even when they are up to date"
VAR_HELP = "override a plan variable (repeatable)"
CONFIRM_HELP = "record that the manual task ID has been done (repeat or comma-separate)"
ALLOW_DIRTY_HELP = "run tasks that change files although the git work tree has uncommitted changes"
REPORT_HELP = "where reports go (default: reports/)"
POOL_HELP = "limit the named pool to N tasks at once (repeatable)"
STATUS_HELP = "print each task's last outcome and whether it is up to date; run nothing"
PARALLEL_HELP = ("with -n: auto (default) starts the number of workers the plan's estimated schedule says is "
                 "fastest, none when one process is; always starts every worker -n asks for")
PROGRESS_HELP = ("progress while the plan runs: live (a line redrawn in place), lines (one per finished phase), "
                 "off; auto (default): live on a terminal, lines in CI or a pipe")
NOTIFY_HELP = "notifiers for the end of a run, as YAML: the plan's top-level notify key (see the README)"
SSH_KEEPALIVE_HELP = ("seconds between SSH keep-alives to remote workers (--tx ssh=...): three missed and the "
                      "host counts as lost; 0 leaves ssh's own settings (default 2)")
GRAPH_HELP = "print the selected tasks' graph as mermaid, dot or json (with the critical path); run nothing"
EXPORT_HELP = ("write the plan as CI jobs: github (.github/workflows/<plan>.yml) or gitlab (.gitlab/ci/<plan>.yml, "
               "to include from .gitlab-ci.yml); run nothing")
EXPORT_BY_HELP = "with --orch-export: one job per phase (default) or per group"
EXPORT_FILE_HELP = "with --orch-export: write here instead of the target's usual path"
MERGE_HELP = ("merge CI jobs' artifacts (python -m pytest_orch.export.pack) into one set of reports, one "
              ".orch/state.db and the files the tasks wrote; run nothing")
RESTORE_HELP = "as --orch-merge, without reports: bring earlier jobs' state and files in before a CI job runs"
CI_SETUP_HELP = "the commands an exported CI job runs before pytest, one a line (default: install the test extras)"


# the flags that take a value: written "--plan PATH" (not "--plan=PATH"), pytest takes the value for a
# test path while it decides the rootdir, before it knows these flags (see compat.redetermine_rootdir)
VALUE_FLAGS = frozenset({"--plan", "--phase", "--group", "--var", "--confirm", "--orch-report", "--pool"})
MAX_POOL = 10_000  # as a plan's pool sizes (plan/checks.py)


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"{flag} {value!r}: expected KEY=VALUE")
        pairs[key.strip()] = val
    return pairs


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("orch", "pytest-orch: run a YAML plan")
    group.addoption("--plan", dest="orch_plan", metavar="PATH", help=PLAN_HELP)
    group.addoption("--phase", dest="orch_phase", action="append", metavar="N", help=PHASE_HELP)
    group.addoption("--group", dest="orch_group", action="append", metavar="ID", help=GROUP_HELP)
    group.addoption("--dry-run", dest="orch_dry_run", action="store_true", help=DRY_RUN_HELP)
    group.addoption("--force", dest="orch_force", action="store_true", help=FORCE_HELP)
    group.addoption("--var", dest="orch_var", action="append", metavar="KEY=VALUE", help=VAR_HELP)
    group.addoption("--confirm", dest="orch_confirm", action="append", metavar="ID", help=CONFIRM_HELP)
    group.addoption("--allow-dirty", dest="orch_allow_dirty", action="store_true", help=ALLOW_DIRTY_HELP)
    group.addoption("--orch-report", dest="orch_report", metavar="DIR", help=REPORT_HELP)
    group.addoption("--pool", dest="orch_pool", action="append", metavar="NAME=N", help=POOL_HELP)
    group.addoption("--orch-status", dest="orch_status", action="store_true", help=STATUS_HELP)
    group.addoption("--orch-parallel", dest="orch_parallel", choices=("auto", "always"), default="auto",
                    help=PARALLEL_HELP)
    group.addoption("--orch-progress", dest="orch_progress", choices=("auto", "live", "lines", "off"),
                    default="auto", help=PROGRESS_HELP)
    group.addoption("--orch-graph", dest="orch_graph", choices=("mermaid", "dot", "json"), help=GRAPH_HELP)
    group.addoption("--orch-export", dest="orch_export", choices=("github", "gitlab"), help=EXPORT_HELP)
    group.addoption("--orch-export-by", dest="orch_export_by", choices=("phase", "group"), default="phase",
                    help=EXPORT_BY_HELP)
    group.addoption("--orch-export-file", dest="orch_export_file", metavar="PATH", help=EXPORT_FILE_HELP)
    group.addoption("--orch-merge", dest="orch_merge", nargs="+", metavar="DIR", help=MERGE_HELP)
    group.addoption("--orch-restore", dest="orch_restore", nargs="+", metavar="DIR", help=RESTORE_HELP)
    parser.addini("orch_ci_setup", CI_SETUP_HELP, type="linelist", default=[])
    parser.addini("orch_phases", "plan file or folder, relative to the rootdir", default="phases")
    parser.addini("orch_notify", NOTIFY_HELP, default="")
    parser.addini("orch_ssh_keepalive", SSH_KEEPALIVE_HELP, default="2")


@dataclass(frozen=True)
class Settings:
    """Every flag resolved once; paths are absolute."""

    root: Path
    plan_path: Path
    plan_named: bool
    phases: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    dry_run: bool = False
    force: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    confirm: frozenset[str] = frozenset()
    allow_dirty: bool = False
    report_dir: Path = Path("reports")
    report_named: bool = False
    """--orch-report was given: a dry run writes reports only then (or with --junitxml)."""
    pools: dict[str, int] = field(default_factory=dict)
    status: bool = False
    parallel: str = "auto"
    graph: str | None = None
    notify: tuple[Any, ...] = ()
    progress: str = "auto"
    export: str | None = None
    export_by: str = "phase"
    export_file: str | None = None
    merge: tuple[str, ...] = ()
    restore: tuple[str, ...] = ()
    ci_setup: tuple[str, ...] = ()

    @property
    def ci_command(self) -> bool:
        """--orch-export, --orch-merge or --orch-restore: the session runs no task."""
        return bool(self.export or self.merge or self.restore)

    @property
    def has_plan(self) -> bool:
        """True when the plan location exists: without one the plugin stays out of the way."""
        return self.plan_path.exists()


def resolve_settings(config: pytest.Config) -> Settings:
    """Read the flags; a malformed one is a UsageError (exit 4) before anything runs."""
    root = config.rootpath
    named = config.getoption("orch_plan")
    plan_path = Path(named) if named else root / config.getini("orch_phases")
    if named and not plan_path.is_absolute():
        plan_path = config.invocation_params.dir / plan_path
    if named and not plan_path.exists():
        raise pytest.UsageError(f"--plan {named}: no such file or folder")
    pools = {}
    for name, value in _pairs(config.getoption("orch_pool"), "--pool").items():
        if not value.isdigit() or not 1 <= int(value) <= MAX_POOL:
            raise pytest.UsageError(f"--pool {name}={value}: N must be a whole number from 1 to {MAX_POOL}")
        pools[name] = int(value)
    report = config.getoption("orch_report")
    report_dir = Path(report) if report else root / "reports"
    if report and not report_dir.is_absolute():
        report_dir = config.invocation_params.dir / report_dir
    return Settings(
        root=root,
        plan_path=plan_path.resolve() if plan_path.exists() else plan_path,
        plan_named=bool(named),
        phases=frozenset(_split(config.getoption("orch_phase"))),
        groups=frozenset(_split(config.getoption("orch_group"))),
        dry_run=config.getoption("orch_dry_run"),
        force=config.getoption("orch_force"),
        variables=_pairs(config.getoption("orch_var"), "--var"),
        confirm=frozenset(_split(config.getoption("orch_confirm"))),
        allow_dirty=config.getoption("orch_allow_dirty"),
        report_dir=report_dir,
        report_named=bool(report),
        pools=pools,
        status=config.getoption("orch_status"),
        parallel=config.getoption("orch_parallel"),
        graph=config.getoption("orch_graph", None),
        notify=_ini_notify(config),
        progress=config.getoption("orch_progress", "auto"),
        **_ci_options(config),
    )


def _ci_options(config: pytest.Config) -> dict[str, Any]:
    """The CI flags; two of export, merge and restore at once are a usage error."""
    export, merge, restore = (config.getoption(name, None) for name in ("orch_export", "orch_merge", "orch_restore"))
    given = [flag for flag, value in (("--orch-export", export), ("--orch-merge", merge),
                                      ("--orch-restore", restore)) if value]
    if len(given) > 1:
        raise pytest.UsageError(f"{' and '.join(given)}: give one of them at a time")
    if config.getoption("orch_export_file", None) and not export:
        raise pytest.UsageError("--orch-export-file: only with --orch-export")
    return {
        "export": export,
        "export_by": config.getoption("orch_export_by", "phase"),
        "export_file": config.getoption("orch_export_file", None),
        "merge": tuple(merge or ()),
        "restore": tuple(restore or ()),
        "ci_setup": tuple(line for line in config.getini("orch_ci_setup") if line.strip()),
    }


def _ini_notify(config: pytest.Config) -> tuple[Any, ...]:
    """The orch_notify ini option, checked now: a mistake in it stops the run before any task (exit 4)."""
    text = config.getini("orch_notify")
    if not text or not text.strip():
        return ()
    from pytest_orch.errors import PlanError
    from pytest_orch.notify import ini_notifiers

    ini = config.inipath.name if config.inipath else "ini"
    try:
        return tuple(ini_notifiers(text, ini, config.rootpath))
    except PlanError as err:
        raise pytest.UsageError(str(err)) from None
