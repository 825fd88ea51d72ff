"""The progress display: per-phase lines in CI and pipes, a line redrawn in place on a real terminal (a pty)."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pytest_orch.handlers.command import CommandHandler

from pytest_orch.plan.validate import load_plan_and_graph
from pytest_orch.reports.progress import choose_mode
from pytest_orch.reports.progress_model import ProgressModel, format_seconds

PLAN = {
    "phases/p1": """
        phase: 1
        name: First
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "true"}
              - {id: "1.2", type: command, run: "true"}
              - {id: "1.3", type: command, run: "true", depends_on: ["1.1"]}
        """,
    "phases/p2": """
        phase: 2
        name: Second
        depends_on: [1]
        groups:
          - id: b
            tasks:
              - {id: "2.1", type: command, run: "true"}
              - {id: "2.2", type: command, run: "exit 1", critical: false}
        """,
}


def model(tmp_path, durations=None, workers=1):
    folder = tmp_path / "phases"
    folder.mkdir()
    for name, text in PLAN.items():
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text))
    plan, graph = load_plan_and_graph(folder, tmp_path, {"command": CommandHandler()})
    return ProgressModel(plan, graph, list(plan.tasks), durations or {}, workers)


def test_counts_running_tasks_and_phase_lines(tmp_path):
    progress = model(tmp_path)
    progress.start("1.1", 100.0)
    progress.start("1.2", 100.0)
    line = progress.status_line(100.5)
    assert "phase 1: 0/3 done, 2 running (1.1, 1.2), 1 waiting" in line
    assert "1 phase to come" in line and "time left unknown" in line
    assert progress.finish("1.1", "passed", 101.0) is None
    progress.start("1.3", 101.0)
    assert progress.finish("1.2", "up_to_date", 101.5) is None
    ended = progress.finish("1.3", "failed", 102.0)
    assert ended is not None and ended.id == "1"
    assert progress.phase_line(ended) == "phase 1 (First) ended: 1 passed, 1 up to date, 1 failed in 2.0 s"


def test_the_time_left_comes_from_earlier_durations_and_the_workers(tmp_path):
    durations = {"1.1": 10.0, "1.2": 4.0, "1.3": 10.0, "2.1": 3.0, "2.2": 3.0}
    one = model(tmp_path, durations, workers=1)
    assert one.estimate_left(0.0) == pytest.approx(30.0)  # all the work, one worker
    (tmp_path / "two").mkdir()
    two = model(tmp_path / "two", durations, workers=4)
    # four workers: the critical path 1.1 -> 1.3 -> phase 2 bounds it
    assert two.estimate_left(0.0) == pytest.approx(23.0)
    two.start("1.1", 0.0)
    assert two.estimate_left(4.0) == pytest.approx(19.0)  # 1.1 has run 4 of its 10 s
    assert "about 19 s left" in two.status_line(4.0)


def test_format_seconds_and_the_mode_choice():
    assert (format_seconds(3.25), format_seconds(42), format_seconds(125), format_seconds(7300)) == \
        ("3.2 s", "42 s", "2 min 05 s", "2 h 01 min")

    class Reporter:
        def __init__(self, tty):
            self.isatty = lambda: tty

    assert choose_mode("auto", Reporter(True), 0, {}) == "live"
    assert choose_mode("auto", Reporter(True), 0, {"CI": "true"}) == "lines"
    assert choose_mode("auto", Reporter(True), 1, {}) == "lines"  # -v prints a line per task: no live line
    assert choose_mode("auto", Reporter(False), 0, {}) == "lines"
    assert choose_mode("auto", Reporter(True), -2, {}) == "off"
    assert choose_mode("off", Reporter(True), 0, {}) == "off"
    assert choose_mode("auto", None, 0, {}) == "off"


def test_without_a_terminal_each_finished_phase_prints_one_line(pytester):
    pytester.makefile(".yaml", **PLAN)
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([
        "phase 1 (First) ended: 3 passed in *; time left unknown (no earlier run)",
        "phase 2 (Second) ended: 1 passed, 1 failed in *",
    ])
    # -rA's summary is pytest's own, words included
    result.stdout.fnmatch_lines(["PASSED phases/p1.yaml::1::a::1.1", "FAILED phases/p2.yaml::2::b::2.2*"])
    again = pytester.runpytest("--force", "-q")
    again.stdout.fnmatch_lines(["phase 1 (First) ended: 3 passed in *; about * left"])
    assert pytester.runpytest("--orch-progress", "off").stdout.str().count(" ended: ") == 0


def test_under_xdist_the_worker_status_does_not_mix_with_results(pytester):
    pytester.makefile(".yaml", **PLAN)
    result = pytester.runpytest_subprocess("-n", "2", "--orch-parallel=always")
    result.assert_outcomes(passed=4, failed=1)
    out = result.stdout.str()
    assert "collecting: " not in out and not re.search(r"\d+ workers \[\d+ items\]", out)
    result.stdout.fnmatch_lines(["phase 1 (First) ended: 3 passed in *", "phase 2 (Second) ended: *"])


def run_in_pty(cwd: Path, *args: str) -> str:
    """Run pytest under util-linux's script(1): a real pseudo-terminal, so pytest sees a TTY."""
    script = shutil.which("script")
    if script is None:
        pytest.skip("script(1) from util-linux is needed for a pseudo-terminal")
    command = " ".join([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args])
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "PYTEST_ADDOPTS")}
    env["COLUMNS"] = "160"
    # bytes, not text: universal newlines would turn the carriage returns of a redraw into line ends
    done = subprocess.run([script, "-qec", command, "/dev/null"], cwd=cwd, env=env, capture_output=True,
                          timeout=300)
    return done.stdout.decode(errors="replace")


@pytest.mark.parametrize("args", [(), ("-n", "2", "--orch-parallel=always")])
def test_on_a_terminal_the_status_line_is_redrawn_in_place(pytester, args):
    pytester.makefile(".yaml", **{**PLAN, "phases/p1": PLAN["phases/p1"].replace('run: "true"}', 'run: "sleep 0.3"}')})
    out = run_in_pty(pytester.path, *args)
    assert "\rorch [time left unknown (no earlier run)] phase 1: " in out  # drawn over the same line
    assert re.search(r"\rphase 1 \(First\) ended: 3 passed in [\d.]+ s; time left unknown", out)
    assert "phase 2 (Second) ended: 1 passed, 1 failed in" in out
    first = out.index("\rorch [")
    assert "collecting: " not in out[first:] and "workers [" not in out[first:]
    assert "1 failed, 4 passed" in out


def test_on_a_terminal_minus_r_a_and_minus_v_keep_their_words(pytester):
    pytester.makefile(".yaml", **PLAN)
    out = run_in_pty(pytester.path, "-rA")
    assert "PASSED phases/p1.yaml::1::a::1.1" in out and "FAILED phases/p2.yaml::2::b::2.2" in out
    verbose = run_in_pty(pytester.path, "-v", "--force")
    assert "phases/p1.yaml::1::a::1.1 PASSED" in verbose and "\rorch [" not in verbose
    assert "phase 1 (First) ended:" in verbose


def test_the_compat_probe_for_the_terminal_status_line_passes():
    from pytest_orch.compat import PROBES

    PROBES["pytest-xdist and pytest: the terminal's status line (progress display)"]()
