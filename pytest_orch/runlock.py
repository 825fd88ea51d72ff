"""One run at a time per project: an OS lock on .orch/run.lock, and who holds it in .orch/lock-owner.json.

The lock is ``filelock.FileLock`` (flock on Unix). The kernel drops an flock when its process dies, so a
run killed with SIGKILL leaves no lock behind; its owner file stays, and the next run notes that it took
over from a dead run. Only on a filesystem without flock does filelock fall back to a marker file that
survives a kill; then a marker whose owner is a dead process on this host is removed and taken over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock

LOCK_NAME = "run.lock"
OWNER_NAME = "lock-owner.json"


class RunLocked(Exception):
    """Another run of the same project holds the lock; the message names it."""

    def __init__(self, message: str, owner: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.owner = owner


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Return whether ``pid`` is a live process on this host (not a zombie, not a reused pid)."""
    try:
        import psutil
    except ImportError:  # psutil is a dependency; stay correct without it, minus zombie/reuse checks
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started:
            # A process created after the owner took the lock (with slack for a start time taken
            # a little early, to the second) reuses a dead owner's pid.
            when = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
            if proc.create_time() > when + 5:
                return False
    except psutil.NoSuchProcess:
        return False
    except (psutil.AccessDenied, ValueError):
        return True
    return True


class RunLock:
    """The run lock of the project at ``root``; ``acquire()`` never waits."""

    def __init__(self, root: Path, lock_class: type[filelock.BaseFileLock] = filelock.FileLock) -> None:
        self.dir = Path(root) / ".orch"
        # FileLock picks flock where the file system has it; tests pass SoftFileLock to take the
        # marker-file path that a file system without flock gets
        self.lock_class = lock_class
        self.path = self.dir / LOCK_NAME
        self.owner_path = self.dir / OWNER_NAME
        self._lock: filelock.BaseFileLock | None = None
        self.took_over: dict[str, Any] | None = None
        """The owner record of a dead run whose lock was taken over, for a note to the user."""

    def read_owner(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.owner_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _owner_dead(self, owner: dict[str, Any] | None) -> bool:
        return (owner is not None and owner.get("host") == socket.gethostname()
                and isinstance(owner.get("pid"), int) and owner["pid"] != os.getpid()
                and not pid_alive(owner["pid"], owner.get("started")))

    def acquire(self, *, started: str | None = None, argv: list[str] | None = None) -> None:
        """Take the lock at once or raise RunLocked naming the run that holds it (pid, host, start)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = self.lock_class(os.fspath(self.path), timeout=0)
        previous = self.read_owner()
        try:
            lock.acquire()
        except filelock.Timeout:
            owner = self.read_owner()
            if isinstance(lock, filelock.SoftFileLock) and self._owner_dead(owner):
                # A marker outlives its process; flock does not, so only the soft lock needs this.
                self.path.unlink(missing_ok=True)
                lock.acquire()
                previous = owner
            else:
                raise RunLocked(self._locked_message(owner), owner) from None
        self._lock = lock
        self.took_over = previous if previous and previous.get("pid") != os.getpid() else None
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": started or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "argv": list(argv if argv is not None else sys.argv),
        }
        tmp = self.owner_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(owner), encoding="utf-8")
        os.replace(tmp, self.owner_path)

    def _locked_message(self, owner: dict[str, Any] | None) -> str:
        where = f"{self.dir.name}/{LOCK_NAME}"
        if owner is None:
            return f"another pytest-orch run holds {where} (owner unknown; see {self.owner_path})"
        msg = (f"another pytest-orch run holds {where}: pid {owner.get('pid')} on host "
               f"{owner.get('host')} since {owner.get('started')}")
        if self._owner_dead(owner):
            msg += " (that pid is gone; a process it started may still hold the lock)"
        return msg

    def release(self) -> None:
        """Give the lock up; the owner file goes first, so it never names a run that has ended."""
        if self._lock is None:
            return
        if (self.read_owner() or {}).get("pid") == os.getpid():
            self.owner_path.unlink(missing_ok=True)
        self._lock.release()
        self._lock = None

    @property
    def held(self) -> bool:
        return self._lock is not None and self._lock.is_locked

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
