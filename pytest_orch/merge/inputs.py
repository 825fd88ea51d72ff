"""Read CI jobs' artifacts (export/layout.py) and check that they belong to this plan's version."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_orch.export import layout
from pytest_orch.state import SCHEMA_VERSION


class MergeError(Exception):
    """Inputs that cannot be merged; the message names the file and the reason. Nothing was written."""


@dataclass(frozen=True)
class Case:
    """What a job's junit.xml holds for one testcase beyond run.json: outputs and failure texts."""

    output: str = ""
    stderr: str = ""
    failure_text: str = ""
    error: bool = False
    earlier_failures: tuple[str, ...] = ()


@dataclass
class JobInput:
    """One job's artifact folder."""

    dir: Path
    job: str
    run: dict[str, Any] | None
    cases: dict[tuple[str, str], Case] = field(default_factory=dict)
    state: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    """Path in the project -> the copy in the artifact."""
    deleted: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.job


def read_job(folder: Path, shown: str) -> JobInput:
    """Read one artifact folder; ``shown`` is how the user named it, for messages."""
    if not folder.is_dir():
        raise MergeError(f"{shown}: no such folder")
    manifest_path = folder / layout.MANIFEST
    manifest: dict[str, Any] = {}
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MergeError(f"{shown}/{layout.MANIFEST}: not readable JSON ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("schema") != layout.SCHEMA:
            raise MergeError(f"{shown}/{layout.MANIFEST}: not a pytest-orch job artifact of schema {layout.SCHEMA}")
    run_path = folder / layout.REPORTS / "run.json"
    run = None
    if run_path.exists():
        try:
            run = json.loads(run_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MergeError(f"{shown}/{layout.REPORTS}/run.json: not readable JSON ({exc})") from None
        if not isinstance(run, dict) or not isinstance(run.get("tasks"), list):
            raise MergeError(f"{shown}/{layout.REPORTS}/run.json: not a pytest-orch run.json (no tasks list)")
    if not manifest and run is None:
        raise MergeError(f"{shown}: neither {layout.MANIFEST} nor {layout.REPORTS}/run.json: "
                         "not the artifact of an exported job (python -m pytest_orch.export.pack writes one)")
    state = folder / layout.STATE
    files = {path: folder / layout.FILES / path for path in manifest.get("files", [])}
    missing = [path for path, copy in files.items() if not copy.is_file()]
    if missing:
        raise MergeError(f"{shown}/{layout.FILES}/{missing[0]}: listed in {layout.MANIFEST} but missing")
    return JobInput(dir=folder, job=str(manifest.get("job") or folder.name), run=run,
                    cases=_read_junit(folder / layout.REPORTS / "junit.xml", f"{shown}/{layout.REPORTS}/junit.xml"),
                    state=state if state.exists() else None, files=files,
                    deleted=tuple(manifest.get("deleted", [])))


def _read_junit(path: Path, shown: str) -> dict[tuple[str, str], Case]:
    if not path.exists():
        return {}
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise MergeError(f"{shown}: not well-formed XML ({exc})") from None
    cases = {}
    for case in root.iter("testcase"):
        failure = case.find("failure")
        error = case.find("error")
        bad = failure if failure is not None else error
        earlier = tuple((rerun.findtext("stackTrace") or "") for rerun in case
                        if rerun.tag in ("rerunFailure", "flakyFailure"))
        cases[(case.get("classname", ""), case.get("name", ""))] = Case(
            output=case.findtext("system-out") or "", stderr=case.findtext("system-err") or "",
            failure_text=(bad.text or "") if bad is not None else "", error=error is not None,
            earlier_failures=earlier)
    return cases


def check_versions(jobs: list[JobInput], plan_name: str, digest: str) -> None:
    """Refuse reports of another plan or plan version, naming the file and both versions."""
    for job in jobs:
        if job.run is None:
            continue
        where = f"{job.dir}/{layout.REPORTS}/run.json"
        theirs, their_digest = job.run.get("plan"), job.run.get("plan_digest")
        if their_digest is None:
            raise MergeError(f"{where}: has no plan_digest (written by a pytest-orch without --orch-merge): "
                             "its plan version cannot be checked")
        if theirs != plan_name:
            raise MergeError(f"{where}: reports of plan {theirs!r}, but this project's plan is {plan_name!r}: "
                             "reports of different plans cannot be merged")
        if their_digest != digest:
            raise MergeError(f"{where}: plan {theirs!r} version {their_digest}, but this checkout's plan is "
                             f"version {digest}: the plan changed between the job and now (check out the "
                             "commit the jobs ran, or run the jobs again)")


def check_state_schema(jobs: list[JobInput]) -> None:
    """Refuse a state of another schema version: its rows would not mean what ours do."""
    for job in jobs:
        if job.state is None:
            continue
        try:
            conn = sqlite3.connect(f"{job.state.resolve().as_uri()}?immutable=1", uri=True)
            try:
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise MergeError(f"{job.dir}/{layout.STATE}: not a pytest-orch state database ({exc})") from None
        version = int(row[0]) if row else SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise MergeError(f"{job.dir}/{layout.STATE}: state schema version {version}, this pytest-orch "
                             f"writes {SCHEMA_VERSION}: merge with the pytest-orch the jobs ran")
