"""One watchdog process per session process that ends command process groups when that process dies.

The ``command`` handler starts every program in a process group of its own and kills the group on a
timeout or an interrupt. That cannot happen when the process running the handler (pytest, or an xdist
worker) is killed with SIGKILL: the group would live on, re-parented to init. A parent-death signal
(PR_SET_PDEATHSIG) reaches only the direct child, not the grandchildren, and needs ``preexec_fn``,
which makes every spawn several times slower.

So the first command of a process starts a small watchdog (``python -c WATCHDOG``) and keeps the write
end of a pipe whose read end is the watchdog's stdin. Around each command the handler writes ``+PGID``
and ``-PGID`` lines into the pipe: two small writes per command, nothing else; the watchdog sleeps
until the pipe hangs up and reads the lines every DRAIN_EVERY seconds, so a write never wakes it.
When the parent dies, however it dies, the kernel closes the write end, the watchdog sees the hang-up,
reads what is left and ends every group still registered: SIGTERM, then SIGKILL for what is left
after a short grace. When the parent exits normally nothing is registered and the watchdog just exits.
"""

from __future__ import annotations

import os
import sys
import threading

# The watchdog's own program: no imports beyond os, signal, sys, time, so it starts in a few ms
# (-I -S: no site, no user paths). It sits in its own session so a Ctrl-C aimed at pytest's
# foreground group does not end it before it has done its job.
WATCHDOG = r"""
import os, select, signal, sys, time
groups = set()
rest = b""
def drain():
    # read what the parent wrote so far; True at the end of the pipe (the parent is gone)
    global rest
    while True:
        try:
            chunk = os.read(0, 65536)
        except BlockingIOError:
            return False
        if not chunk:
            return True
        *lines, rest = (rest + chunk).split(b"\n")
        for line in lines:
            if line[:1] == b"+":
                groups.add(int(line[1:]))
            elif line[:1] == b"-":
                groups.discard(int(line[1:]))
os.set_blocking(0, False)
poller = select.poll()
poller.register(0, 0)  # no POLLIN: only the hang-up (the parent's death) wakes poll(), not each line
while not drain():
    poller.poll(float(sys.argv[2]) * 1000)
def alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
for sig, grace in ((signal.SIGTERM, float(sys.argv[1])), (signal.SIGKILL, 0.0)):
    for pgid in list(groups):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            groups.discard(pgid)
    deadline = time.monotonic() + grace
    while groups and time.monotonic() < deadline:
        groups = {g for g in groups if alive(g)}
        time.sleep(0.02)
"""

TERM_GRACE = 0.5  # seconds between SIGTERM and SIGKILL once the parent is gone: well inside 2 s
# Seconds between the watchdog's reads of the pipe. The lines wait in the pipe meanwhile (64 KB, some
# 4000 commands' worth), so no write wakes the watchdog: waking a process on another core for every
# command cost more than the command's own bookkeeping. The parent's death wakes it at once.
DRAIN_EVERY = 0.2


class GroupWatchdog:
    """The parent's side: start the watchdog once, then register and unregister process groups."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None  # the process that started the watchdog (a fork needs its own)
        self._child: int | None = None
        self._fd: int | None = None
        self._groups: set[int] = set()  # registered now: a watchdog started again is told them all

    def start(self) -> None:
        """Start the watchdog now if this process has none: call it before spawning, so that the
        registration right after the spawn is one write, not a process start that a kill could cut."""
        if self._fd is None or self._pid != os.getpid():
            with self._lock:
                self._ensure_started()

    def register(self, pgid: int) -> None:
        """Have the watchdog end group ``pgid`` should this process die before ``unregister``."""
        self._send(f"+{pgid}\n".encode(), add=pgid)

    def unregister(self, pgid: int) -> None:
        self._send(f"-{pgid}\n".encode(), remove=pgid)

    @property
    def pid(self) -> int | None:
        """The watchdog's pid, None before the first command of this process."""
        return self._child if self._pid == os.getpid() else None

    def _send(self, line: bytes, add: int | None = None, remove: int | None = None) -> None:
        with self._lock:
            if add is not None:
                self._groups.add(add)
            self._groups.discard(remove)  # type: ignore[arg-type]
            for _ in range(2):  # a watchdog that was killed is started again, once
                fd = self._ensure_started()
                try:
                    os.write(fd, line)  # shorter than PIPE_BUF: one atomic write
                    return
                except BrokenPipeError:
                    self._forget()

    def _ensure_started(self) -> int:
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        if self._pid is not None and self._pid != os.getpid():
            # a forked child shares the parent's pipe and groups: it needs a watchdog of its own, and
            # must not keep the parent's pipe open (its watchdog would not see the parent die)
            if self._fd is not None:
                os.close(self._fd)
            self._fd = self._child = None
            self._groups.clear()
        read_end, write_end = os.pipe()  # both close-on-exec: commands never hold the write end
        try:
            # posix_spawn, not Popen: no Popen object that warns at exit about a child still running
            self._child = os.posix_spawn(
                sys.executable, [sys.executable, "-I", "-S", "-c", WATCHDOG, str(TERM_GRACE), str(DRAIN_EVERY)],
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0),
                              (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_DUP2, 1, 2),
                              *((os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds())],
                setsid=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._fd, self._pid = write_end, os.getpid()
        if self._groups:  # a restart: the new watchdog takes over the groups still running
            os.write(write_end, "".join(f"+{g}\n" for g in sorted(self._groups)).encode())
        return write_end

    def _forget(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        if self._child is not None:
            try:
                os.waitpid(self._child, os.WNOHANG)  # reap it
            except ChildProcessError:
                pass
        self._fd = self._child = None


def _inheritable_fds() -> list[int]:
    """This process's inheritable descriptors above 2 (a caller's pipe, say), which the watchdog
    must not hold open for the life of the process: posix_spawn, unlike Popen, closes none."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return found


WATCHDOG_OF_PROCESS = GroupWatchdog()
"""The one watchdog of this process, started lazily by the first command."""
