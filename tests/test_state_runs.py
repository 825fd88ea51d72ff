"""Across runs: up to date, reasons, phase by phase, dirty work trees, one run at a time, kills."""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import assert_tasks
from pytest_orch.state import StateStore

TWO_PHASES = {
    "phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, shell: true, run: "echo 1.1 >> log", inputs: ["src/*.txt"]}
              - {id: "1.2", type: file_generation, target: out/gen.txt, content: "made by 1.2\\n",
                 depends_on: ["1.1"]}
        """,
    "phases/p2": """
        phase: 2
        depends_on: [1]
        groups:
          - id: b
            tasks:
              - {id: "2.1", type: command, shell: true, run: "echo 2.1 >> log"}
        """,
}


def git(path, *args):
    subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def init_repo(pytester):
    git(pytester.path, "init", "-q")
    git(pytester.path, "config", "user.email", "t@example.com")
    git(pytester.path, "config", "user.name", "t")
    (pytester.path / ".gitignore").write_text(".orch/\nreports/\nlog\n")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-qm", "start")


@pytest.fixture
def project(pytester):
    pytester.makefile(".yaml", **TWO_PHASES)
    (pytester.path / "src").mkdir()
    (pytester.path / "src" / "a.txt").write_text("one\n")
    init_repo(pytester)
    return pytester


def tasks_of(pytester):
    data = json.loads((pytester.path / "reports" / "run.json").read_text())
    return data, {t["id"]: t for t in data["tasks"]}


def log_lines(pytester):
    return (pytester.path / "log").read_text().split()


def test_rerun_of_unchanged_plan_is_up_to_date(project):
    project.runpytest().assert_outcomes(passed=3)
    result = project.runpytest("-v")
    assert_tasks(result, up_to_date=3)
    result.stdout.fnmatch_lines(["*::1.1 UP TO DATE*"])
    _, tasks = tasks_of(project)
    assert {t["outcome"] for t in tasks.values()} == {"up_to_date"}
    assert tasks["1.1"]["message"].startswith("up to date (run 1 at 20")
    assert log_lines(project) == ["1.1", "2.1"]


def test_force_runs_again_and_says_so(project):
    project.runpytest().assert_outcomes(passed=3)
    result = project.runpytest("--force", "-v")
    # every forced task runs and passes; the generated file was already as rendered: changed nothing
    assert_tasks(result, passed=3)
    result.stdout.fnmatch_lines(["*::1.1 PASSED (forced)*"])
    assert log_lines(project) == ["1.1", "2.1", "1.1", "2.1"]
    _, tasks = tasks_of(project)
    assert (tasks["1.2"]["outcome"], tasks["1.2"]["changed"]) == ("passed", [])


def test_changed_input_reruns_the_task_and_its_dependents_with_reasons(project):
    project.runpytest().assert_outcomes(passed=3)
    (project.path / "src" / "a.txt").write_text("two\n")
    git(project.path, "commit", "-qam", "edit input")
    result = project.runpytest("-v")
    assert_tasks(result, passed=2, up_to_date=1)
    _, tasks = tasks_of(project)
    assert tasks["1.1"]["reason"] == "input src/a.txt changed"
    # 1.2 is checked again because 1.1 ran; its file is already as rendered
    assert (tasks["1.2"]["reason"], tasks["1.2"]["outcome"]) == ("dependency 1.1 ran again", "up_to_date")
    assert tasks["2.1"]["outcome"] == "passed"
    assert_tasks(project.runpytest(), up_to_date=3)  # and then everything is up to date
    result.stdout.fnmatch_lines(["*::1.1 PASSED (input src/a.txt changed)*"])


def test_generated_file_edited_by_hand_makes_its_task_stale(project):
    project.runpytest().assert_outcomes(passed=3)
    (project.path / "out" / "gen.txt").write_text("edited by a person\n")
    result = project.runpytest("--allow-dirty")
    # 1.2 runs again and, with overwrite: false, keeps the hand edit: up to date, saying why; it
    # changed nothing, so 2.1 stays up to date too
    assert_tasks(result, up_to_date=3)
    _, tasks = tasks_of(project)
    assert tasks["1.2"]["reason"] == "output out/gen.txt changed since it was written"
    assert tasks["1.2"]["outcome"] == "up_to_date"
    assert tasks["1.2"]["message"] == "out/gen.txt: edited by hand since generated; overwrite: true replaces it"
    assert (project.path / "out" / "gen.txt").read_text() == "edited by a person\n"


def test_phase_by_phase_sees_earlier_phases_done(project):
    project.runpytest("--phase", "1").assert_outcomes(passed=2)
    project.runpytest("--phase", "2").assert_outcomes(passed=1)
    assert log_lines(project) == ["1.1", "2.1"]


def test_dependency_not_done_blocks_with_a_reason_and_the_unblocking_command(project):
    result = project.runpytest("--phase", "2")
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*2.1: dependency 1.1 is not done (never ran) and is not selected"
                                 "  -> pytest --phase 1*"])


def test_dirty_tree_refuses_to_change_a_file_with_uncommitted_changes_and_lists_it(project):
    (project.path / "phases" / "p1.yaml").write_text(
        TWO_PHASES["phases/p1"].replace("depends_on: [\"1.1\"]", "depends_on: [\"1.1\"], overwrite: true"))
    git(project.path, "commit", "-qam", "1.2 overwrites")
    (project.path / "out").mkdir()
    (project.path / "out" / "gen.txt").write_text("a person's uncommitted work\n")
    result = project.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)  # 1.1 runs; 1.2 refuses, so 2.1 cannot run
    result.stdout.fnmatch_lines(["*refused: the git work tree has uncommitted changes the plan did not make:"
                                 " out/gen.txt (commit or stash them, or pass --allow-dirty)*"])
    assert (project.path / "out" / "gen.txt").read_text() == "a person's uncommitted work\n"
    data, _ = tasks_of(project)
    assert data["git_clean"] is False
    assert_tasks(project.runpytest("--allow-dirty"), passed=2, up_to_date=1)
    assert (project.path / "out" / "gen.txt").read_text() == "made by 1.2\n"


def test_uncommitted_changes_to_other_files_do_not_stop_a_task(project):
    (project.path / "notes.md").write_text("uncommitted\n")
    (project.path / "src" / "a.txt").write_text("an uncommitted input edit\n")
    (project.path / "phases" / "p2.yaml").write_text(TWO_PHASES["phases/p2"] + "\n# an uncommitted plan edit\n")
    result = project.runpytest("--junitxml=out.xml")
    assert_tasks(result, passed=3)
    data, _ = tasks_of(project)
    assert data["git_clean"] is False  # the whole tree is still recorded as it was


def test_changes_written_by_earlier_runs_do_not_count_as_dirty(project):
    project.runpytest().assert_outcomes(passed=3)  # writes out/gen.txt, uncommitted
    (project.path / "phases" / "p2.yaml").write_text(TWO_PHASES["phases/p2"].replace("2.1 >>", "2.1 again >>"))
    git(project.path, "commit", "-qam", "change 2.1")
    result = project.runpytest()
    assert_tasks(result, passed=1, up_to_date=2)
    data, _ = tasks_of(project)
    assert data["git_clean"] is False  # out/gen.txt is the plan's own work, yet uncommitted


def test_outside_git_a_note_says_so_and_the_run_goes_on(pytester):
    pytester.makefile(".yaml", **TWO_PHASES)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["note: *not in a git work tree*"])
    data, _ = tasks_of(pytester)
    assert data["git_clean"] is None


def test_preview_dry_run_and_status_never_write_state(project):
    project.runpytest("--collect-only")
    project.runpytest("--dry-run")
    result = project.runpytest("--orch-status")
    assert result.ret == pytest.ExitCode.OK
    assert not (project.path / ".orch").exists()


def test_status_shows_last_outcome_and_staleness(project):
    project.runpytest("--phase", "1").assert_outcomes(passed=2)
    (project.path / "src" / "a.txt").write_text("changed\n")
    result = project.runpytest("--orch-status")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        "phase 1: *", "  group a: a (parallel)",
        "    1.1 *passed*stale: input src/a.txt changed",
        "    1.2 *passed*stale: dependency 1.1 is not up to date",
        "phase 2: *", "  group b: b (parallel)", "    2.1 * never ran",
    ])
    assert log_lines(project) == ["1.1"]


def test_second_run_refuses_while_one_is_running(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, shell: true,
                 run: "echo 1.1 >> log; echo $$ > shell.pid; touch started; sleep 30"}
        """})
    first = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], cwd=pytester.path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (pytester.path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        result = pytester.runpytest()
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*another pytest-orch run holds .orch/run.lock: pid {first.pid} on host *"])
        assert log_lines(pytester) == ["1.1"], "the refused run ran its task"
        owner = json.loads((pytester.path / ".orch" / "lock-owner.json").read_text())
        assert owner["pid"] == first.pid, "the refused run took the lock's owner record"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        # the command's own process group: pytest's watchdog ends it too, perhaps before this line
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int((pytester.path / "shell.pid").read_text()), signal.SIGKILL)
    # the killed run's lock is noticed and taken over
    (pytester.path / "phases" / "p1.yaml").write_text(
        'phase: 1\ngroups:\n  - id: a\n    tasks:\n'
        '      - {id: "1.1", type: command, shell: true, run: "echo again >> log"}\n')
    pytester.runpytest().assert_outcomes(passed=1)
    assert log_lines(pytester) == ["1.1", "again"], "the run after the kill did not run its task"
    assert not (pytester.path / ".orch" / "lock-owner.json").exists()


KILL_PLAN = "phase: 1\ngroups:\n" + "".join(
    f"  - id: g{g}\n    tasks:\n" + "".join(
        f'      - {{id: "t{g}.{i}", type: command, shell: true, run: "sleep 0.05; echo t{g}.{i} >> log"'
        + (f', depends_on: ["t{g - 1}.{i}"]' if g else "") + "}\n"
        for i in range(4))
    for g in range(5))


@pytest.mark.parametrize("workers", [[], ["-n", "2", "--orch-parallel=always"], ["-n", "4", "--orch-parallel=always"]],
                         ids=["in-process", "n2", "n4"])
def test_kills_at_random_moments_lose_nothing_and_redo_nothing(pytester, workers):
    pytester.makefile(".yaml", **{"phases/p1": KILL_PLAN})
    rng = random.Random(20261121)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *workers]
    for _ in range(4):
        proc = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.3, 1.5))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    final = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout[-2000:]
    with StateStore.open(pytester.path, readonly=True) as store:
        assert store.integrity_check() == "ok"
        passes = [e["task_id"] for e in store.events("task_end") if e["outcome"] == "passed"]
        last = store.last_results()
    ids = [f"t{g}.{i}" for g in range(5) for i in range(4)]
    assert sorted(passes) == sorted(ids), "a finished task ran again, or one never finished"
    assert all(last[t].outcome in ("passed", "up_to_date") for t in ids)
    rerun = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)
    assert "20 up to date" in rerun.stdout


HOLD_PLAN = """
phase: 1
groups:
  - id: a
    execution: sequential
    tasks:
      - {id: "1.1", type: command, shell: true, run: "echo 1.1 >> log"}
      - {id: "1.2", type: command, shell: true, run: "echo 1.2 >> log"}
      - {id: "1.3", type: command, shell: true, run: "echo 1.3 >> log"}
      - {id: "1.4", type: command, shell: true, depends_on: ["1.3"],
         run: "echo 1.4 >> log; if [ -e held-once ]; then exit 0; fi; echo $$ > hold.pid; touch held-once; sleep 60"}
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2", "--orch-parallel=always"], ["-n", "4", "--orch-parallel=always"]],
                         ids=["in-process", "n2", "n4"])
def test_tasks_finished_before_a_kill_are_done_and_never_run_again(pytester, workers):
    """Each finished task's result is committed when it ends, not when the run ends.

    1.4 starts only after 1.1-1.3 have ended and been recorded; the run is killed while 1.4 holds.
    The side effects in ``log`` count how often each task really ran.
    """
    pytester.makefile(".yaml", **{"phases/p1": HOLD_PLAN})
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *workers]
    proc = subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (pytester.path / "held-once").exists():
            assert time.monotonic() < deadline, "task 1.4 never started"
            assert proc.poll() is None, "the first run ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # pytest and its workers
        proc.wait()
        if (pytester.path / "hold.pid").exists():  # the command has a process group of its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int((pytester.path / "hold.pid").read_text()), signal.SIGKILL)
    with StateStore.open(pytester.path, readonly=True) as store:
        last = store.last_results()
    assert {t: last[t].outcome for t in ("1.1", "1.2", "1.3") if t in last} == \
        {"1.1": "passed", "1.2": "passed", "1.3": "passed"}, "a finished task was not recorded"
    assert "1.4" not in last or last["1.4"].outcome != "passed"
    final = subprocess.run(command, cwd=pytester.path, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout[-2000:]
    assert log_lines(pytester) == ["1.1", "1.2", "1.3", "1.4", "1.4"], "a finished task ran again"
