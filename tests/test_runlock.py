"""One run at a time: a second run refuses at once, a killed run's lock is taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import filelock
import pytest

from pytest_orch.runlock import RunLock, RunLocked, pid_alive

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import filelock
    from pytest_orch.runlock import RunLock
    lock = RunLock(Path(sys.argv[1]), getattr(filelock, sys.argv[3]))
    lock.acquire(started=sys.argv[2], argv=["pytest", "--phase", "1"])
    print("locked", flush=True)
    time.sleep(60)
    """
)


def now():
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hold_in_child(root, started, lock_class=filelock.FileLock):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), started, lock_class.__name__],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    return child


def test_second_run_refuses_at_once_naming_the_holder(tmp_path):
    started = now()
    child = hold_in_child(tmp_path, started)
    try:
        start = time.perf_counter()
        with pytest.raises(RunLocked) as info:
            RunLock(tmp_path).acquire()
        assert time.perf_counter() - start < 10  # it does not wait for the holder to finish
        assert str(info.value) == (
            f"another pytest-orch run holds .orch/run.lock: pid {child.pid} on host "
            f"{socket.gethostname()} since {started}"
        )
    finally:
        child.kill()
        child.wait()


def test_lock_of_a_killed_run_is_taken_over(tmp_path):
    child = hold_in_child(tmp_path, now())
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not pid_alive(child.pid)
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        assert lock.took_over is not None and lock.took_over["pid"] == child.pid
        assert lock.read_owner()["pid"] == os.getpid()
        with pytest.raises(RunLocked, match=f"pid {os.getpid()} "):
            RunLock(tmp_path).acquire()  # another instance in this process is refused too
    finally:
        lock.release()
    assert not (tmp_path / ".orch" / "lock-owner.json").exists()
    again = RunLock(tmp_path)
    again.acquire()
    assert again.took_over is None  # the last run ended cleanly
    again.release()


def test_pid_alive():
    assert pid_alive(os.getpid())
    # A pid created after the owner's start time is a reused pid.
    assert not pid_alive(os.getpid(), "2000-01-01T00:00:00Z")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)


# A file system without flock: filelock's soft lock is a marker file that outlives a killed holder,
# so whether the holder is alive decides between refusing and taking over.
@pytest.mark.parametrize("lock_class", [filelock.FileLock, filelock.SoftFileLock], ids=["flock", "soft"])
def test_a_live_holder_keeps_the_lock(tmp_path, lock_class):
    child = hold_in_child(tmp_path, now(), lock_class)
    try:
        second = RunLock(tmp_path, lock_class)
        with pytest.raises(RunLocked) as info:
            second.acquire()
        assert not second.held
        assert info.value.owner is not None and info.value.owner["pid"] == child.pid
        assert second.read_owner()["pid"] == child.pid, "the live holder's owner record was replaced"
        assert child.poll() is None
        with pytest.raises(RunLocked):
            RunLock(tmp_path, lock_class).acquire()  # still held: the refusal took nothing away
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("lock_class", [filelock.FileLock, filelock.SoftFileLock], ids=["flock", "soft"])
def test_the_lock_of_a_dead_holder_is_taken_over(tmp_path, lock_class):
    child = hold_in_child(tmp_path, now(), lock_class)
    child.send_signal(signal.SIGKILL)
    child.wait()
    lock = RunLock(tmp_path, lock_class)
    lock.acquire()
    try:
        assert lock.held
        assert lock.took_over is not None and lock.took_over["pid"] == child.pid
        assert lock.read_owner()["pid"] == os.getpid()
        with pytest.raises(RunLocked):
            RunLock(tmp_path, lock_class).acquire()  # the new holder is protected in turn
    finally:
        lock.release()
    again = RunLock(tmp_path, lock_class)
    again.acquire()  # released cleanly: free for the next run
    assert again.held and again.took_over is None
    again.release()
