"""The ``command`` handler: run a program in its own process group and keep the tail of its output."""

from __future__ import annotations

import functools
import os
import re
import select
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_orch.handlers import params
from pytest_orch.handlers.group_watchdog import WATCHDOG_OF_PROCESS

from pytest_orch.handler import Outcome, TaskContext
from pytest_orch.plan.model import Task

if TYPE_CHECKING:
    import psutil

OUTPUT_LIMIT = 64 * 1024
KILL_GRACE = 1.0  # seconds between SIGTERM and SIGKILL
DRAIN_WAIT = 1.0  # seconds to wait for output once the program has exited
_LOOKS_LIKE_FILE = re.compile(r"[\w.-]*\.[A-Za-z]\w*")  # gen.py, build.sh; not 0.05


class TailBuffer:
    """Keep the last ``limit`` bytes written to it and count the bytes dropped before them."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.data = bytearray()
        self.cut = 0

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        excess = len(self.data) - self.limit
        if excess > 0:
            del self.data[:excess]
            self.cut += excess

    def text(self) -> str:
        body = bytes(self.data).decode("utf-8", errors="replace")
        return f"[... {self.cut} bytes cut ...]\n{body}" if self.cut else body


class CommandHandler:
    """Run ``run`` (a string split like a shell, or a list; ``shell: true`` for /bin/sh -c)."""

    keys: ClassVar[frozenset[str]] = frozenset({"run", "shell", "cwd", "env", "creates", "ok_codes"})
    path_keys: ClassVar[frozenset[str]] = frozenset({"cwd", "creates"})
    version: ClassVar[str] = "1"
    contained: ClassVar[bool] = True  # its work is a subprocess: it may run in the xdist controller
    writes_files: ClassVar[bool] = False

    def validate(self, task: Task) -> None:
        run = params.expect(task, "run", (str, list), required=True)
        shell = params.expect(task, "shell", bool) or False
        if isinstance(run, list):
            if not run:
                raise params.error(task, "run", "'run' must not be an empty list")
            if shell:
                raise params.error(task, "shell", "'shell: true' needs 'run' as a string")
            bad = [item for item in run if not isinstance(item, (str, int, float))
                   or isinstance(item, bool)]
            if bad:
                raise params.error(task, "run", f"every item of 'run' must be a string, not {bad[0]!r}")
        elif not shell:
            try:
                if not shlex.split(run):
                    raise params.error(task, "run", "'run' must not be empty")
            except ValueError as exc:
                raise params.error(task, "run", f"'run' cannot be split like a shell: {exc}") from None
        params.expect(task, "cwd", str)
        params.expect(task, "creates", str)
        env = params.expect(task, "env", dict)
        for name, value in (env or {}).items():
            if not isinstance(value, (str, int, float, type(None))) or isinstance(value, bool):
                raise params.error(task, "env", f"env {name}: value must be a string, not {value!r}")
        codes = params.expect(task, "ok_codes", list)
        if codes is not None and (
            not codes or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes)
        ):
            raise params.error(task, "ok_codes", "'ok_codes' must be a non-empty list of integers")

    def inputs(self, task: Task, ctx: TaskContext) -> list[Path]:
        """Scripts inside the project that the command names (``python scripts/gen.py``)."""
        found: list[Path] = []
        for arg in _argv(task.params)[:8]:
            if "/" not in arg and not _LOOKS_LIKE_FILE.fullmatch(arg):
                continue  # "sleep", "0.05", "--flag": not worth a path lookup for every task
            for path in params.existing(ctx, arg, "run"):
                if path not in found and not os.path.isabs(arg):
                    found.append(path)
        return found

    def run(self, task: Task, ctx: TaskContext) -> Outcome:
        p = task.params
        shown = p["run"] if isinstance(p["run"], str) else shlex.join(str(a) for a in p["run"])
        cwd = ctx.resolve(p["cwd"], key="cwd") if p.get("cwd") else ctx.real_root
        creates = ctx.resolve(p["creates"], key="creates") if p.get("creates") else None
        if creates is not None and creates.exists() and not ctx.force:
            return Outcome("up_to_date", message=f"{ctx.relative(creates)} exists")
        if ctx.dry_run:
            return Outcome("passed", message=f"would run: {shown}")
        if p.get("cwd") and not cwd.is_dir():  # the root is a folder: look only at a cwd the task names
            return Outcome("failed", message=f"cwd {p['cwd']}: no such folder")
        env = None  # inherited as it is: copying os.environ costs more than spawning `true`
        if p.get("env"):
            env = dict(os.environ)
            for name, value in p["env"].items():
                if value is None:
                    env.pop(str(name), None)
                else:
                    env[str(name)] = str(value)
        argv: Any = ["/bin/sh", "-c", p["run"]] if p.get("shell") else _argv(p)
        ok_codes = list(p.get("ok_codes") or [0])
        ctx.log(f"$ {shown}")
        WATCHDOG_OF_PROCESS.start()  # before the spawn: only one small write separates spawn and registration
        # Our own pipe and the process's one /dev/null, not PIPE and DEVNULL: Popen would open /dev/null
        # and wrap the pipe in a file object (three more system calls) for every command.
        out, into = os.pipe()
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=_devnull(), stdout=into, stderr=into,
                start_new_session=True,  # its own process group
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            os.close(out)
            return Outcome("failed", message=f"cannot run {argv[0]!r}: {exc.strerror}")
        except BaseException:
            os.close(out)
            raise
        finally:
            os.close(into)  # the program holds the write end now: its exit (and its children's) ends the output
        # should this process be killed outright, the watchdog ends the group (start_new_session: pgid = pid)
        WATCHDOG_OF_PROCESS.register(proc.pid)
        buffer = TailBuffer()
        try:
            code = _wait_capturing(proc, out, buffer, ctx.timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            _drain(out, buffer)
            return Outcome("failed", message=f"timed out after {ctx.timeout:g} s",
                           output=buffer.text())
        except BaseException:  # KeyboardInterrupt, pytest-timeout's signal, SystemExit ...
            kill_tree(proc)
            raise
        finally:
            WATCHDOG_OF_PROCESS.unregister(proc.pid)
            os.close(out)
        output = buffer.text()
        changed = [ctx.relative(creates)] if creates is not None and creates.exists() else []
        if code in ok_codes:
            return Outcome("passed", message=f"exit code {code}", output=output, changed=changed)
        expected = ", ".join(str(c) for c in ok_codes)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            problem = f"killed by {name}"
        else:
            problem = f"exit code {code} (expected {expected})"
        last = _last_line(output)
        return Outcome("failed", message=f"{problem}: {last}" if last else problem,
                       output=output, changed=changed)


def _argv(p: Any) -> list[str]:
    run = p.get("run")
    if isinstance(run, list):
        return [str(a) for a in run]
    if not isinstance(run, str) or p.get("shell"):
        return []
    try:
        return list(_split(run))
    except ValueError:
        return []


@functools.lru_cache(maxsize=4096)
def _split(run: str) -> tuple[str, ...]:
    """shlex.split, once per distinct command line: inputs() and run() both need it."""
    return tuple(shlex.split(run))


@functools.cache
def _devnull() -> int:
    """The program's stdin: /dev/null, opened once per process (close-on-exec, as Python opens files)."""
    return os.open(os.devnull, os.O_RDONLY)


def _wait_capturing(proc: subprocess.Popen[bytes], out: int, buffer: TailBuffer,
                    timeout: float | None) -> int:
    """Read the output until the program exits, in this thread; return its exit code.

    One thread and poll() over the output pipe and a pidfd: no reader thread to start and join,
    and no epoll descriptor to create and close, for every task. A background child that keeps the
    pipe open after the program exited gets DRAIN_WAIT seconds, then is not waited for. Raises
    TimeoutExpired after ``timeout``.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pidfd = os.pidfd_open(proc.pid)
    try:
        poller = select.poll()
        poller.register(out, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        exited_at = None
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline and exited_at is None:
                raise subprocess.TimeoutExpired(proc.args, timeout or 0)
            waits = [t for t in (deadline and deadline - now,
                                 exited_at and exited_at + DRAIN_WAIT - now) if t is not None]
            for fd, _ in poller.poll(max(0.0, min(waits)) * 1000 if waits else None):
                if fd == pidfd:
                    poller.unregister(pidfd)
                    exited_at = time.monotonic()
                    continue
                chunk = os.read(out, 65536)  # data, or b"" at the end (POLLHUP)
                if not chunk:
                    return proc.wait()
                buffer.write(chunk)
            if exited_at is not None and time.monotonic() >= exited_at + DRAIN_WAIT:
                return proc.wait()  # a background child holds the pipe: don't wait for it
    finally:
        os.close(pidfd)


def _drain(out: int, buffer: TailBuffer) -> None:
    """Take what is left in the pipe of a killed program, without blocking."""
    os.set_blocking(out, False)
    try:
        while chunk := os.read(out, 65536):
            buffer.write(chunk)
    except (BlockingIOError, OSError):
        pass


def _last_line(output: str) -> str:
    for line in reversed(output.splitlines()):
        if line.strip():
            return line.strip()[:200]
    return ""


def kill_tree(proc: subprocess.Popen[Any]) -> None:
    """Stop the process, its process group and any descendant that left the group.

    SIGTERM first, then SIGKILL after a short grace. Descendants are listed before anything is
    signalled: once the leader dies its children are re-parented and can no longer be found.
    """
    import psutil  # here, not at the top: only a timeout or an interrupt needs it

    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    pgid = proc.pid  # start_new_session made the leader's pid the group id
    known = {p.pid for p in descendants}
    descendants += [p for p in _group_members(pgid) if p.pid not in known and p.pid != proc.pid]
    _signal_all(pgid, descendants, signal.SIGTERM)
    if not _wait_gone(proc, descendants, KILL_GRACE):
        _signal_all(pgid, descendants, signal.SIGKILL)
        _wait_gone(proc, descendants, KILL_GRACE)


def _group_members(pgid: int) -> list[psutil.Process]:
    """Processes of the group that are no longer our descendants (their parent died)."""
    import psutil

    members = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid:
                members.append(p)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def _wait_gone(proc: subprocess.Popen[Any], procs: list[psutil.Process], timeout: float) -> bool:
    """Wait until the leader is reaped and no descendant runs; zombies count as gone."""
    deadline = time.monotonic() + timeout
    while True:
        leader_done = proc.poll() is not None
        if leader_done and not any(_running(p) for p in procs):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _running(p: psutil.Process) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_all(pgid: int, procs: list[psutil.Process], sig: signal.Signals) -> None:
    import psutil

    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:
        try:
            if p.is_running():  # is_running checks the pid was not reused
                p.send_signal(sig)
        except psutil.Error:
            pass
