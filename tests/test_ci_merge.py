"""The exported jobs run locally as the CI would (a copy each, artifacts carried), then merged:
the merged reports equal one local run's, and a later local run finds every task up to date.
And the merge's refusals: another plan or plan version, files two unordered jobs changed, local state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from ci_local import env, run_github, run_gitlab

JUNIT_SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent / "data" / "junit-10.xsd"))

# Two parallel branches after phase 1, each with a chain inside (a dependent's fingerprint holds
# its dependency's token, which the merge renumbers), config edits of one file across phases, a
# generated file, a command with `creates`, a checkpoint and a non-critical failure.
PLAN = {
    "phases/p1": """
        phase: 1
        name: Foundations
        groups:
          - id: cfg
            tasks:
              - {id: "1.1", type: config_edit, file: settings.json, set: {a.b: 1}}
              - id: "1.2"
                type: command
                run: ["python", "-c", "open('built.txt', 'w').write('built')"]
                creates: built.txt
        """,
    "phases/p2": """
        phase: 2
        depends_on: [1]
        groups:
          - id: a
            tasks:
              - {id: "2.1", type: config_edit, file: settings.json, set: {c: 2}}
              - {id: "2.2", type: file_generation, content: "two {{ 1 + 1 }}\\n", target: gen/two.txt,
                 depends_on: ["2.1"]}
          - id: b
            tasks:
              - {id: "2.3", type: command, run: "python -c \\"raise SystemExit(3)\\"", critical: false}
        checkpoints:
          - {id: "2.check", type: command, run: ["python", "-c", "import json; json.load(open('settings.json'))"]}
        """,
    "phases/p3": """
        phase: 3
        depends_on: [1]
        groups:
          - id: c
            tasks:
              - {id: "3.1", type: file_generation, content: "three\\n", target: gen/three.txt}
              - {id: "3.2", type: command, run: ["python", "-c", "open('gen/three.txt').read()"],
                 depends_on: ["3.1"]}
          - id: d
            depends_on: [c]
            tasks:
              - {id: "3.3", type: command, run: ["python", "-c", "pass"]}
        """,
}
INI = '[pytest]\norch_ci_setup =\n    python -c "print(\'set up\')"\n'
TIME_FIELDS = ("started", "finished", "duration", "worker")


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args], cwd=cwd,
                   check=True, capture_output=True)


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    pytester.makefile(".yaml", **PLAN)
    pytester.makefile(".json", settings='{"a": {"b": 0}}\n')
    pytester.makeini(INI)
    pytester.path.joinpath(".gitignore").write_text("reports/\n.orch/\n")
    _git(pytester.path, "init", "-q")
    _git(pytester.path, "add", "-A")
    _git(pytester.path, "commit", "-qm", "the project")
    return pytester.path


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=600, check=False)


def _export(project: Path, target: str, by: str) -> Path:
    proc = _pytest(project, "--orch-export", target, "--orch-export-by", by)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "the exported CI")
    return project / (".github/workflows/phases.yml" if target == "github" else ".gitlab/ci/phases.yml")


def _local_run(project: Path, where: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    shutil.copytree(project, where, symlinks=True)
    return _pytest(where), where


def _tasks(run_json: Path) -> dict[str, dict]:
    data = json.loads(run_json.read_text())
    return {t["id"]: {k: v for k, v in t.items() if k not in TIME_FIELDS} for t in data["tasks"]}


def _cases(junit: Path) -> list[tuple]:
    JUNIT_SCHEMA.validate(str(junit))
    cases = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = sorted(child.tag for child in case if child.tag not in ("system-out", "system-err"))
        cases.append((case.get("classname"), case.get("name"), tuple(kinds), case.findtext("system-out") or ""))
    return cases


def _tree(root: Path) -> dict[str, bytes]:
    """The project's files, without git's, the state's and the reports' (they hold times)."""
    skip = {".git", ".orch", "reports", ".pytest_cache", "__pycache__"}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not skip & set(p.relative_to(root).parts)}


@pytest.mark.parametrize(("target", "by"), [("github", "phase"), ("gitlab", "phase"), ("github", "group"),
                                           ("gitlab", "group")])
def test_jobs_run_locally_then_merged_equal_one_local_run(project, tmp_path, target, by):
    path = _export(project, target, by)
    ci = (run_github if target == "github" else run_gitlab)(path, project, tmp_path / "ci")
    # phase 2 has a non-critical failure: its job passes, as `pytest --phase 2` exits 0
    assert set(ci.status.values()) == {"success"}, ci.status
    merged = ci.workspaces["orch-merge"]

    local, local_dir = _local_run(project, tmp_path / "local")
    assert local.returncode == 0, local.stdout

    assert _tasks(merged / "reports/run.json") == _tasks(local_dir / "reports/run.json")
    merged_run = json.loads((merged / "reports/run.json").read_text())
    assert merged_run["outcome"] == json.loads((local_dir / "reports/run.json").read_text())["outcome"] == "passed"
    assert [job["job"] for job in merged_run["merged_from"]] == [j for j in ci.status if j != "orch-merge"]
    assert _cases(merged / "reports/junit.xml") == _cases(local_dir / "reports/junit.xml")
    assert (merged / "reports/index.html").exists() and (merged / "reports/timeline.svg").exists()
    # the project as the plan left it: every file each job changed, in one place
    assert _tree(merged) == _tree(local_dir)

    # a later local run knows what CI did: the merge job's artifact brought into a fresh checkout
    later = tmp_path / "later"
    shutil.copytree(project, later, symlinks=True)
    shutil.copytree(ci.packed["orch-merge"], later / ".orch/ci/in/merged")  # the downloaded artifact, unpacked
    restore = _pytest(later, "--orch-restore", ".orch/ci/in/merged")
    assert restore.returncode == 0, restore.stdout + restore.stderr
    rerun = _pytest(later)
    assert rerun.returncode == 0, rerun.stdout
    outcomes = {t["id"]: t["outcome"] for t in json.loads((later / "reports/run.json").read_text())["tasks"]}
    # the failed non-critical task runs again, as it would after a local run; the rest are up to date, 3.2
    # and 3.3 too: they need 3.1 and group 3.c, whose run the merge numbered anew (after phase 2's)
    assert outcomes == {**dict.fromkeys(_tasks(local_dir / "reports/run.json"), "up_to_date"), "2.3": "failed"}


def test_a_failed_job_skips_its_dependents_and_the_merge_says_failed(project, tmp_path):
    plan = project / "phases/p1.yaml"
    plan.write_text(plan.read_text().replace("write('built')", "write('built'); raise SystemExit(1)"))
    _git(project, "commit", "-qam", "phase 1 fails")
    path = _export(project, "github", "phase")
    ci = run_github(path, project, tmp_path / "ci")
    assert ci.status == {"orch-phase-1": "failure", "orch-phase-2": "skipped", "orch-phase-3": "skipped",
                         "orch-merge": "failure"}  # the merge ran (always) and failed, as the plan did
    merged = ci.workspaces["orch-merge"]
    local, local_dir = _local_run(project, tmp_path / "local")
    assert local.returncode == 1
    merged_run = json.loads((merged / "reports/run.json").read_text())
    local_run = json.loads((local_dir / "reports/run.json").read_text())
    assert merged_run["outcome"] == local_run["outcome"] == "failed"
    assert {t["id"]: t["outcome"] for t in merged_run["tasks"]} == {t["id"]: t["outcome"] for t in local_run["tasks"]}
    skipped = next(t for t in merged_run["tasks"] if t["id"] == "3.1")
    assert skipped["message"].startswith("not run in CI: no job reported it")
    assert _cases(merged / "reports/junit.xml")  # valid against junit-10.xsd, one case per task


# -- refusals: each one line, exit 4, nothing changed ---------------------------------------------------
def _make_project(root: Path) -> Path:
    """The same project as the fixture's, without pytester (for a fixture shared by several tests)."""
    for name, text in PLAN.items():
        path = root / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).strip() + "\n")
    (root / "settings.json").write_text('{"a": {"b": 0}}\n')
    (root / "tox.ini").write_text(INI)
    (root / ".gitignore").write_text("reports/\n.orch/\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "the project")
    return root


@pytest.fixture(scope="module")
def ci_done(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The project and its jobs' packed artifacts, run once for the refusal tests."""
    base = tmp_path_factory.mktemp("ci-done")
    project = _make_project(base / "project")
    ci = run_github(_export(project, "github", "phase"), project, base / "ci")
    return project, ci.packed


def _artifacts(project: Path, packed: dict[str, Path], tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The jobs' artifacts, unpacked into a fresh checkout (as paths relative to it)."""
    fresh = tmp_path / "fresh"
    shutil.copytree(project, fresh, symlinks=True)
    found = {}
    for name, artifact in packed.items():
        shutil.copytree(artifact, fresh / ".orch/ci/in" / name)
        found[name] = f".orch/ci/in/{name}"
    return found, fresh


def _untouched(folder: Path) -> None:
    assert not (folder / ".orch/state.db").exists()
    assert not (folder / "reports").exists()
    assert json.loads((folder / "settings.json").read_text()) == {"a": {"b": 0}}


def test_a_merge_of_another_plan_version_is_refused(ci_done, tmp_path):
    artifacts, fresh = _artifacts(*ci_done, tmp_path)
    plan = fresh / "phases/p3.yaml"
    plan.write_text(plan.read_text().replace("three\\n", "three, changed\\n"))
    result = _pytest(fresh, "--orch-merge", *(v for k, v in artifacts.items() if k != "orch-merge"))
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "plan 'phases' version" in result.stderr and "the plan changed between the job and now" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    _untouched(fresh)


def test_a_merge_of_another_plan_is_refused(ci_done, tmp_path):
    artifacts, fresh = _artifacts(*ci_done, tmp_path)
    (fresh / "phases").rename(fresh / "roadmap")
    (fresh / "pytest.ini").write_text(INI + "orch_phases = roadmap\n")
    result = _pytest(fresh, "--orch-restore", artifacts["orch-phase-1"])
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "reports of plan 'phases', but this project's plan is 'roadmap'" in result.stderr
    _untouched(fresh)


def test_files_changed_by_two_jobs_that_do_not_need_each_other_are_refused(project, tmp_path):
    plan = project / "phases/p3.yaml"
    plan.write_text(plan.read_text().replace('{id: "3.3", type: command, run: ["python", "-c", "pass"]}',
                                             '{id: "3.3", type: config_edit, file: settings.json, set: {d: 3}}'))
    _git(project, "commit", "-qam", "3.3 edits settings.json too")
    export = _pytest(project, "--orch-export", "github")
    assert export.returncode == 0  # the export warns, from what the handlers say they write
    assert ("warning: settings.json: written by task 2.1 (job orch-phase-2) and task 3.3 (job orch-phase-3), which "
            "do not need each other: --orch-merge will refuse their changes") in export.stdout
    assert "warning: settings.json: written by task 1.1" not in export.stdout  # phase 1's jobs come before
    ci = run_github(_export(project, "github", "phase"), project, tmp_path / "ci")
    artifacts, fresh = _artifacts(project, ci.packed, tmp_path)
    result = _pytest(fresh, "--orch-merge", *(v for k, v in artifacts.items() if k != "orch-merge"))
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert ("settings.json: changed by task 2.1 (job orch-phase-2) and by task 3.3 (job orch-phase-3), which ran "
            "in jobs that do not need each other") in result.stderr
    _untouched(fresh)


def test_a_project_with_local_state_is_kept_unless_force(ci_done, tmp_path):
    artifacts, fresh = _artifacts(*ci_done, tmp_path)
    assert _pytest(fresh, "--phase", "1").returncode == 0
    before = (fresh / ".orch/state.db").read_bytes()
    result = _pytest(fresh, "--orch-restore", artifacts["orch-merge"])
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert ".orch/state.db exists with 1 local runs" in result.stderr
    assert (fresh / ".orch/state.db").read_bytes() == before
    forced = _pytest(fresh, "--orch-restore", artifacts["orch-merge"], "--force")
    assert forced.returncode == 0, forced.stderr
    assert (fresh / ".orch/state.db.before-merge").exists()
    assert _pytest(fresh).returncode == 0
    outcomes = {t["id"]: t["outcome"] for t in json.loads((fresh / "reports/run.json").read_text())["tasks"]}
    assert outcomes["3.2"] == "up_to_date"


def test_a_folder_that_is_not_an_artifact_is_refused(project, tmp_path):
    (project / "empty").mkdir()
    result = _pytest(project, "--orch-merge", "empty")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "empty: neither orch-job.json nor reports/run.json: not the artifact of an exported job" in result.stderr
    result = _pytest(project, "--orch-merge", "nowhere")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "none of nowhere exists: no job's artifact to merge" in result.stderr
    assert not (project / ".orch/state.db").exists()


def test_folders_outside_the_project_say_how_pytest_chose_the_rootdir(project, tmp_path):
    (tmp_path / "outside").mkdir()
    result = _pytest(project, "--orch-restore", str(tmp_path / "outside"))
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--orch-restore: no plan at" in result.stderr and "give folders inside the project" in result.stderr


def test_an_uncommitted_edit_of_a_file_the_jobs_changed_is_kept_unless_force(ci_done, tmp_path):
    artifacts, fresh = _artifacts(*ci_done, tmp_path)
    (fresh / "settings.json").write_text('{"mine": true}\n')
    result = _pytest(fresh, "--orch-restore", artifacts["orch-merge"])
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "uncommitted changes in settings.json, which the jobs' tasks also changed" in result.stderr
    assert (fresh / "settings.json").read_text() == '{"mine": true}\n'
    assert not (fresh / ".orch/state.db").exists() and not (fresh / "gen").exists()
    assert _pytest(fresh, "--orch-restore", artifacts["orch-merge"], "--force").returncode == 0
    assert json.loads((fresh / "settings.json").read_text()) == {"a": {"b": 1}, "c": 2}


def test_a_job_that_ended_before_pytest_ran_leaves_its_tasks_not_run(ci_done, tmp_path):
    artifacts, fresh = _artifacts(*ci_done, tmp_path)
    # what the pack step leaves when the job's setup failed: a manifest, no reports, no state
    third = fresh / artifacts["orch-phase-3"]
    shutil.rmtree(third)
    third.mkdir()
    (third / "orch-job.json").write_text(json.dumps({"schema": 1, "job": "orch-phase-3", "files": [],
                                                     "deleted": [], "state": False}))
    dirs = [v for k, v in artifacts.items() if k != "orch-merge"]
    result = _pytest(fresh, "--orch-merge", *dirs)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "run outcome blocked" in result.stdout
    merged = json.loads((fresh / "reports/run.json").read_text())
    assert merged["outcome"] == "blocked"
    assert {"job": "orch-phase-3", "outcome": None, "run_id": None} in merged["merged_from"]
    outcomes = {t["id"]: t["outcome"] for t in merged["tasks"]}
    assert outcomes["3.1"] == outcomes["3.3"] == "skipped" and outcomes["2.1"] == "passed"
    assert not (fresh / "gen/three.txt").exists() and (fresh / "gen/two.txt").exists()
