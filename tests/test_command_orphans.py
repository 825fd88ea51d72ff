"""No orphan after SIGKILL: a killed pytest or xdist worker takes its commands' process groups with it.

Each test starts a real pytest session on a plan whose command leaves a grandchild (a background
``sleep``) in its process group, kills the process that started the command with SIGKILL, and waits
(generously: the machine may be loaded) until no process of that group is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pytest_orch.handlers.group_watchdog import GroupWatchdog

pytest.importorskip("xdist")

# The shell is the group's leader ($$ is its pid and the group id), the background sleep its grandchild
# in the same group; $PPID is the process that started the command: pytest itself or an xdist worker.
# The second's pause before the pids appear leaves the starting process ample time to register the group
# (one write right after the spawn) on a loaded machine: the kill must test the watchdog, not that window.
COMMAND = "sleep 300 & sleep 1; echo $! > bg.pid; echo $PPID > parent.pid; echo $$ > leader.pid; wait"
PLAN = f"""
phase: 1
groups:
  - id: a
    tasks:
      - {{id: "1.1", type: command, shell: true, run: "{COMMAND}"}}
"""
WAIT = 60.0  # seconds: far more than the watchdog needs, for a machine shared with other test runs


def read_pid(path: Path, seconds: float = WAIT) -> int:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
    return int(path.read_text())


def running(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by init) has ended."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[int]:
    """Pids still running in process group ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            if os.getpgid(proc.pid) == pgid and running(proc.pid):
                members.append(proc.pid)
    return members


def wait_until_group_gone(pids: list[int], pgid: int) -> list[int]:
    """Wait up to WAIT seconds; return the pids and group members still running then."""
    deadline = time.monotonic() + WAIT
    while True:
        left = sorted({p for p in pids if running(p)} | set(group_members(pgid)))
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def start_session(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def end_everything(session: subprocess.Popen[bytes], root: Path) -> None:
    """Clean up after the test, whatever it found: the session we started and the command's group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(session.pid, signal.SIGKILL)
    session.wait()
    for name in ("leader.pid", "bg.pid"):
        path = root / name
        if path.exists() and path.read_text().strip() and running(int(path.read_text())):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(path.read_text()), signal.SIGKILL)


@pytest.mark.parametrize(("args", "victim"), [
    ([], "pytest"),
    (["-n", "2", "--orch-parallel=always"], "worker"),
    (["-n", "2", "--orch-parallel=always"], "controller"),
], ids=["in-process", "n2-worker", "n2-controller"])
def test_sigkill_of_the_starting_process_ends_the_commands_group(pytester, monkeypatch, args, victim):
    if victim == "worker":  # the command must start on a worker, not on the controller while the workers start
        monkeypatch.setenv("ORCH_EARLY_START", "0")
    pytester.makefile(".yaml", **{"phases/p1": PLAN})
    root = pytester.path
    session = start_session(root, *args)
    try:
        leader, bg, parent = read_pid(root / "leader.pid"), read_pid(root / "bg.pid"), read_pid(root / "parent.pid")
        assert running(bg) and os.getpgid(bg) == leader  # the grandchild sits in the command's group
        if victim == "pytest":
            assert parent == session.pid  # in process: pytest itself started the command
        elif victim == "worker":
            assert parent != session.pid and psutil.Process(parent).ppid() == session.pid
        os.kill(session.pid if victim in ("pytest", "controller") else parent, signal.SIGKILL)
        assert wait_until_group_gone([leader, bg], leader) == []
    finally:
        end_everything(session, root)


def test_registered_groups_end_with_the_parent_and_the_watchdog_exits(tmp_path):
    """A plain Python parent (no pytest) killed outright: its registered group ends, then the watchdog."""
    child = subprocess.Popen([sys.executable, "-c", f"""
import os, subprocess, sys, time
sys.path[:0] = {sys.path!r}
from pytest_orch.handlers.group_watchdog import WATCHDOG_OF_PROCESS as w
done = subprocess.Popen(["true"], start_new_session=True)
w.register(done.pid); done.wait(); w.unregister(done.pid)
kept = subprocess.Popen(["sleep", "300"], start_new_session=True)
w.register(kept.pid)
print(w.pid, kept.pid, flush=True)
time.sleep(300)
"""], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        watchdog, kept = (int(x) for x in child.stdout.readline().split())  # type: ignore[union-attr]
        assert running(watchdog) and running(kept)
        child.kill()
        child.wait()
        assert wait_until_group_gone([kept, watchdog], kept) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


def test_one_watchdog_per_process_started_by_the_first_command(tmp_path):
    dog = GroupWatchdog()
    assert dog.pid is None  # nothing started before a command needs it
    try:
        for _ in range(3):
            proc = subprocess.Popen(["true"], start_new_session=True)
            dog.register(proc.pid)
            proc.wait()
            dog.unregister(proc.pid)
        first = dog.pid
        assert first is not None and running(first)
        dog.register(12345)
        dog.unregister(12345)
        assert dog.pid == first
    finally:
        dog._forget()  # closes the pipe: the watchdog reads EOF and exits
    assert first is not None
    deadline = time.monotonic() + WAIT
    while running(first) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(first)


@contextlib.contextmanager
def watchdog_and_a_group() -> Iterator[tuple[GroupWatchdog, subprocess.Popen[bytes]]]:
    """A watchdog of this process and a long command in a group of its own; both ended afterwards."""
    dog = GroupWatchdog()
    kept = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        yield dog, kept
    finally:
        dog._forget()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(kept.pid, signal.SIGKILL)
        kept.wait()


def test_a_killed_watchdog_is_started_again_and_told_the_running_groups(tmp_path):
    with watchdog_and_a_group() as (dog, kept):
        dog.register(kept.pid)
        first = dog.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        os.waitpid(first, 0)
        dog.register(1 << 22)  # the write meets a closed pipe: a new watchdog takes over
        assert dog.pid not in (None, first) and running(dog.pid)  # type: ignore[arg-type]
        dog.unregister(1 << 22)
        dog._forget()  # as if this process died: the new watchdog ends the group registered before
        assert wait_until_group_gone([kept.pid], kept.pid) == []


def test_more_lines_than_the_pipe_holds_all_reach_the_watchdog(tmp_path):
    """The watchdog reads its pipe now and then, not at each line: lines beyond the pipe's 64 KB wait
    for its next read (the write blocks meanwhile), and none is lost."""
    with watchdog_and_a_group() as (dog, kept):
        for n in range(10_000):  # some 170 KB of lines; above pid_max, so no such group exists
            dog.register(1 << 22 | n)
            dog.unregister(1 << 22 | n)
        dog.register(kept.pid)
        dog._forget()  # as if this process died: the last line still reaches the watchdog
        assert wait_until_group_gone([kept.pid], kept.pid) == []
