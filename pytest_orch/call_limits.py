"""Per-provider call limits shared by every process of every run: a ledger of calls in ``.orch/calls.db``.

Each request reserves its slot here before it is sent, under SQLite's write lock (``BEGIN IMMEDIATE``),
so the controller, every xdist worker, every retry and every 429 back-off count against the same
limits, and two runs of the same plan on the same day share the day's count. Windows are sliding:
``per_second: 10`` means that no interval of one second holds more than 10 reservations (no burst
allowance on top). The calls' times are kept, so the day's count survives the run.

The journal is SQLite's default rollback journal, not WAL: WAL needs shared memory, which a
shared network folder (remote workers that see the same ``.orch/``) does not give.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LEDGER_NAME = "calls.db"
STATE_DIR = ".orch"
# When does a request reach the server? Between leaving (``sent``) and its answer (``ended``): a
# request is counted at its answer, so the server's own log holds the limit whatever the jitter in
# between (a new connection, a busy server). An answer slower than ARRIVAL_CAP comes from a remote
# server whose clock is not ours anyway: its request is counted ARRIVAL_CAP after it left, so a slow
# answer does not hold up the next request. WINDOW_MARGIN covers the clocks' resolution.
ARRIVAL_CAP = 0.25
WINDOW_MARGIN = 0.005
POLL = 0.02  # seconds between looks at a full concurrency limit
KEEP_DAYS = 3  # calls older than this are dropped: only today's count matters
LEASE_SLACK = 60.0  # an unfinished call of a killed process stops counting as in flight after this

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY, provider TEXT NOT NULL, at REAL NOT NULL, task TEXT, host TEXT, pid INTEGER,
    lease REAL NOT NULL, sent REAL, ended REAL, status TEXT);
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (provider, at);
CREATE TABLE IF NOT EXISTS pauses (provider TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS exhausted (provider TEXT PRIMARY KEY, until REAL NOT NULL, reason TEXT NOT NULL);
"""


# Each request's counted time (see ARRIVAL_CAP) and whether it may still move (in flight).
_COUNTED = """
SELECT max(IFNULL(sent, at), min(IFNULL(ended, ?), IFNULL(sent, at) + ?)) AS t,
       ended IS NULL AND ? < IFNULL(sent, at) + ? AS provisional
FROM calls WHERE provider=? AND at > ? AND t > ? ORDER BY t DESC LIMIT ?
"""


class QuotaReached(Exception):
    """The provider's daily quota is spent (by our count, or by its own answer); the message says until when."""


@dataclass(frozen=True)
class Limits:
    """A provider's limits as the ledger needs them (see pytest_orch.plan.providers.Provider)."""

    name: str
    per_second: int | None = None
    per_minute: int | None = None
    per_day: int | None = None
    concurrency: int | None = None
    lease: float = 600.0

    @classmethod
    def of(cls, provider: Any) -> Limits:
        return cls(provider.name, provider.per_second, provider.per_minute, provider.per_day,
                   provider.concurrency, provider.timeout + LEASE_SLACK)


def day_start(now: float) -> float:
    """00:00 UTC of the day ``now`` falls in."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def next_reset(now: float) -> float:
    return day_start(now) + 86400.0


def reset_text(now: float, until: float | None = None) -> str:
    """``resets at 00:00 UTC (in 5 h 12 min)``: when to come back."""
    until = next_reset(now) if until is None else until
    left = max(0, int(until - now))
    clock = datetime.fromtimestamp(until, UTC).strftime("%H:%M UTC")
    return f"resets at {clock} (in {left // 3600} h {left % 3600 // 60} min)"


class CallLedger:
    """The reservations of one project's calls; one connection per process, opened on first use."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(root) / STATE_DIR / LEDGER_NAME
        self.clock = clock
        self.sleep = sleep
        self._conn: sqlite3.Connection | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=120.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=120000")
            # No fsync per reservation: its time is taken before the commit, so a slow commit would
            # delay the request behind it and bunch requests at the server. An OS crash may lose the
            # last few calls of the day's count; a killed process loses nothing.
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA journal_mode=TRUNCATE")
            conn.executescript(_SCHEMA)
            conn.execute("DELETE FROM calls WHERE at < ?", (self.clock() - KEEP_DAYS * 86400.0,))
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time across processes: what is read here stays true until the commit."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- reserving ---------------------------------------------------------------------------------
    def acquire(self, limits: Limits, task_id: str = "") -> int:
        """Wait for a slot under every limit, reserve it and return its id; QuotaReached for the day."""
        while True:
            with self._locked() as conn:
                now = self.clock()
                blocked = self._day_block(conn, limits, now, pending=0)
                if blocked:
                    raise QuotaReached(blocked)
                wait = self._wait(conn, limits, now)
                if wait <= 0:
                    cursor = conn.execute(
                        "INSERT INTO calls (provider, at, sent, task, host, pid, lease) VALUES (?,?,?,?,?,?,?)",
                        (limits.name, now, now, task_id, socket.gethostname(), os.getpid(), now + limits.lease))
                    return int(cursor.lastrowid or 0)
            self.sleep(min(wait, 1.0))

    def _wait(self, conn: sqlite3.Connection, limits: Limits, now: float) -> float:
        """Seconds until a request may be sent now (0 or less: at once)."""
        wait = 0.0
        row = conn.execute("SELECT until FROM pauses WHERE provider=?", (limits.name,)).fetchone()
        if row and row[0] > now:
            wait = row[0] - now
        for limit, window in ((limits.per_second, 1.0), (limits.per_minute, 60.0)):
            if limit is None:
                continue
            window += WINDOW_MARGIN
            rows = conn.execute(_COUNTED, (now, ARRIVAL_CAP, now, ARRIVAL_CAP, limits.name,
                                           now - window - 120.0, now - window, limit)).fetchall()
            if len(rows) >= limit:
                when, provisional = rows[-1]
                # when the oldest of them leaves the window; a request still in flight moves on: look again soon
                wait = max(wait, POLL if provisional else when + window - now)
        if limits.concurrency is not None:
            running = conn.execute("SELECT COUNT(*) FROM calls WHERE provider=? AND ended IS NULL AND lease > ?",
                                   (limits.name, now)).fetchone()[0]
            if running >= limits.concurrency:
                wait = max(wait, POLL)
        return wait

    def release(self, call_id: int, status: str, ended: float | None = None) -> None:
        """The request has its answer (or failed): it no longer counts against ``concurrency``.

        ``ended`` is when the answer came, taken before waiting for the lock: the window counts from it.
        """
        ended = self.clock() if ended is None else ended
        with self._locked() as conn:
            conn.execute("UPDATE calls SET ended=?, status=? WHERE id=?", (ended, status, call_id))

    # -- slowing down and stopping -------------------------------------------------------------------
    def pause(self, name: str, seconds: float) -> None:
        """No process sends to the provider for ``seconds`` (a 429 slows every task, not only one)."""
        with self._locked() as conn:
            until = self.clock() + seconds
            conn.execute("INSERT INTO pauses (provider, until) VALUES (?, ?) ON CONFLICT(provider) "
                         "DO UPDATE SET until=max(until, excluded.until)", (name, until))

    def exhaust(self, name: str, reason: str) -> None:
        """The provider said its day's quota is gone: no more calls to it until 00:00 UTC."""
        with self._locked() as conn:
            now = self.clock()
            conn.execute("INSERT OR REPLACE INTO exhausted (provider, until, reason) VALUES (?,?,?)",
                         (name, next_reset(now), reason))

    # -- questions -----------------------------------------------------------------------------------
    def day_block(self, limits: Limits, pending: int = 0) -> str | None:
        """Why no more calls to the provider can start today (``pending`` are promised already), or None."""
        return self._day_block(self.conn, limits, self.clock(), pending)

    def _day_block(self, conn: sqlite3.Connection, limits: Limits, now: float, pending: int) -> str | None:
        row = conn.execute("SELECT until, reason FROM exhausted WHERE provider=?", (limits.name,)).fetchone()
        if row and row[0] > now:
            return f"daily quota of {limits.name} reached ({row[1]}), {reset_text(now, row[0])}"
        if limits.per_day is None:
            return None
        used = self.used_today(limits.name, now, conn)
        if used + pending >= limits.per_day:
            promised = f" with {pending} more promised to running tasks" if pending else ""
            return (f"daily quota of {limits.name} reached: {used}/{limits.per_day}{promised}, "
                    f"{reset_text(now)}")
        return None

    def used_today(self, name: str, now: float | None = None, conn: sqlite3.Connection | None = None) -> int:
        now = self.clock() if now is None else now
        conn = conn or self.conn
        return int(conn.execute("SELECT COUNT(*) FROM calls WHERE provider=? AND at >= ?",
                                (name, day_start(now))).fetchone()[0])

    def tasks_called_today(self, name: str, task_ids: list[str]) -> set[str]:
        """Which of ``task_ids`` have a call to the provider today (their call is counted already)."""
        if not task_ids:
            return set()
        marks = ",".join("?" * len(task_ids))
        rows = self.conn.execute(f"SELECT DISTINCT task FROM calls WHERE provider=? AND at >= ? AND task IN ({marks})",
                                 (name, day_start(self.clock()), *task_ids)).fetchall()
        return {r[0] for r in rows}
