"""A worker with nothing left to run ends its process during the run, not with the others after it."""

from __future__ import annotations

import pytest

pytest.importorskip("xdist")

RECORD_WORKER_PIDS = '''
import os

def pytest_configure(config):
    if hasattr(config, "workerinput"):
        os.makedirs("pids", exist_ok=True)
        with open(os.path.join("pids", config.workerinput["workerid"]), "w") as out:
            out.write(str(os.getpid()))
'''

# run by the long task on its worker: is the other worker's process still there (a zombie is gone)?
CHECK_OTHER = '''
import os, sys
mine = os.environ["PYTEST_XDIST_WORKER"]
other = next(name for name in os.listdir("pids") if name != mine)
pid = open(os.path.join("pids", other)).read()
try:
    state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
except FileNotFoundError:
    state = "gone"
open("other-worker.txt", "w").write("gone" if state in ("gone", "Z", "X") else "running")
'''


def test_an_idle_worker_exits_while_the_last_task_runs(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_EARLY_START", "0")  # both tasks on workers
    pytester.makeconftest(RECORD_WORKER_PIDS)
    pytester.makepyfile(check_other=CHECK_OTHER)
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: g
            tasks:
              - {id: long, type: command, shell: true, run: "sleep 4 && python check_other.py"}
              - {id: short, type: command, run: "sleep 0.2"}
        """})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--orch-parallel=always")
    result.assert_outcomes(passed=2)
    # short's worker had nothing left once long had started: its session ended and its process with it
    assert (pytester.path / "other-worker.txt").read_text() == "gone"
