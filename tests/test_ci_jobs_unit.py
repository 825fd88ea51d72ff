"""Pure parts of the CI export: the job graph, the plan's version, the artifact's layout."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from pytest_orch.handlers.command import CommandHandler

from pytest_orch.dag import build_graph
from pytest_orch.export.jobs import ExportError, build_jobs, slug
from pytest_orch.export.pack import pack
from pytest_orch.plan.digest import plan_digest
from pytest_orch.plan.validate import load_plan_and_graph
from pytest_orch.state import StateStore


def _plan(tmp_path: Path, text: str):
    folder = tmp_path / "phases"
    folder.mkdir(exist_ok=True)
    (folder / "plan.yaml").write_text(text)
    return load_plan_and_graph(folder, tmp_path, {"command": CommandHandler()})


PLAN = """
phases:
  - phase: 1
    groups:
      - id: "a b"
        tasks: [{id: "1.1", type: command, run: "true"}]
      - id: a-b
        tasks: [{id: "1.2", type: command, run: "true"}]
  - phase: 2
    groups:
      - id: g
        tasks: [{id: "2.1", type: command, run: "true", depends_on: ["1.2"]}]
"""


def test_jobs_by_group_keep_groups_whose_names_slug_alike_apart(tmp_path):
    plan, graph = _plan(tmp_path, PLAN)
    jobs = build_jobs(plan, graph, "group")
    assert [(j.id, j.tasks, j.needs) for j in jobs] == [
        ("orch-1-a-b", ("1.1",), ()),
        ("orch-1-a-b-2", ("1.2",), ()),
        ("orch-2-g", ("2.1",), ("orch-1-a-b-2",)),  # only the group its task needs
    ]
    assert jobs[0].command == "pytest --phase 1 --group '1.a b'"


def test_slug_makes_ids_both_ci_systems_accept():
    assert slug("Phase 2: services/api") == "Phase-2-services-api"
    assert slug("...") == "x"


def test_plan_digest_follows_what_decides_a_run(tmp_path):
    plan, _ = _plan(tmp_path, PLAN)
    same, _ = _plan(tmp_path, PLAN + "\n# a comment changes nothing\n")
    assert plan_digest(same) == plan_digest(plan)
    for changed in (PLAN.replace('run: "true", depends_on', 'run: "false", depends_on'),
                    PLAN.replace('depends_on: ["1.2"]', 'depends_on: ["1.1"]'),
                    PLAN.replace('depends_on: ["1.2"]}', 'depends_on: ["1.2"], critical: false}')):
        other, _ = _plan(tmp_path, changed)
        assert plan_digest(other) != plan_digest(plan), changed


def test_a_cycle_of_phase_jobs_names_the_tasks(tmp_path):
    plan, graph = _plan(tmp_path, """
phases:
  - phase: 1
    groups:
      - id: g
        tasks:
          - {id: "1.1", type: command, run: "true"}
          - {id: "1.2", type: command, run: "true", depends_on: ["2.1"]}
  - phase: 2
    groups:
      - id: g
        tasks:
          - {id: "2.1", type: command, run: "true"}
          - {id: "2.2", type: command, run: "true", depends_on: ["1.1"]}
""")
    with pytest.raises(ExportError) as caught:
        build_jobs(plan, graph, "phase")
    message = str(caught.value)
    assert message.startswith("jobs orch-phase-") and "need each other" in message
    assert "task 1.2 needs 2.1" in message and "task 2.2 needs 1.1" in message
    assert build_graph(plan).requires["1.2"] == {"2.1"}


def test_pack_copies_the_state_consistently_and_the_files_the_plan_wrote(tmp_path):
    root = tmp_path / "project"
    (root / "reports").mkdir(parents=True)
    (root / "reports/run.json").write_text("{}")
    (root / "gen").mkdir()
    (root / "gen/a.txt").write_text("a")
    (root / "untouched.txt").write_text("not the plan's")
    store = StateStore.open(root)
    store.begin_run("r1", "2026-01-01T00:00:00Z", [], True)
    conn = store._conn  # noqa: SLF001 - the test writes the rows a run would, without a run
    conn.execute("INSERT INTO written_paths VALUES ('gen/a.txt', 'x', 1, '1.1'), ('gone.txt', NULL, 1, '1.2')")
    # the store stays open, its last commits in the WAL: the copy must still hold them
    manifest = pack(root, tmp_path / "out" / "orch-phase-1")
    store.close()
    assert manifest == {"schema": 1, "job": "orch-phase-1", "files": ["gen/a.txt"], "deleted": ["gone.txt"],
                        "state": True}
    out = tmp_path / "out" / "orch-phase-1"
    assert (out / "files/gen/a.txt").read_text() == "a"
    assert not (out / "files/untouched.txt").exists()
    assert json.loads((out / "orch-job.json").read_text())["job"] == "orch-phase-1"
    copy = sqlite3.connect(out / "state/state.db")
    assert copy.execute("SELECT run_id FROM runs").fetchall() == [("r1",)]
    assert (out / "reports/run.json").exists()
