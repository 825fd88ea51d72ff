"""The project's state under .orch/: runs, task attempts and results, confirmations and an event log.

One SQLite file, ``.orch/state.db``, in WAL mode, written by the controlling process only (xdist workers
may be remote). Each result commits at once: a committed transaction survives SIGKILL of the process
(WAL with synchronous=NORMAL loses at most the last transactions on power loss, and never corrupts).
Events go to the ``events`` table and, one JSON object a line, to ``.orch/events.jsonl``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_orch.fingerprint import FileHasher, Fingerprint, dep_token

STATE_DIR = ".orch"
DB_NAME = "state.db"
EVENTS_NAME = "events.jsonl"
SCHEMA_VERSION = 1
# Results that say whether the task's work is done; a skip (dependency not done, manual step not
# confirmed) never ran the task, so it must not hide an earlier pass.
DECISIVE = ("passed", "failed", "up_to_date")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    number INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE, started TEXT NOT NULL,
    finished TEXT, outcome TEXT, argv TEXT NOT NULL, git_clean INTEGER, pid INTEGER, host TEXT);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, task_id TEXT NOT NULL, attempt INTEGER NOT NULL,
    started TEXT, finished TEXT, outcome TEXT NOT NULL, worker TEXT, output_digest TEXT,
    changed TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY, run_number INTEGER NOT NULL, run_id TEXT NOT NULL, task_id TEXT NOT NULL,
    outcome TEXT NOT NULL, digest TEXT, fingerprint TEXT, inputs_digest TEXT, started TEXT, finished TEXT,
    duration REAL NOT NULL, attempts INTEGER NOT NULL, worker TEXT, changed TEXT NOT NULL,
    written TEXT NOT NULL, message TEXT NOT NULL, since_run INTEGER, since TEXT);
CREATE TABLE IF NOT EXISTS task_state (
    task_id TEXT PRIMARY KEY, seen_id INTEGER, result_id INTEGER, pass_id INTEGER);
CREATE TABLE IF NOT EXISTS written_paths (
    path TEXT PRIMARY KEY, sha TEXT, run_number INTEGER NOT NULL, task_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS input_maps (digest TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS confirmations (task_id TEXT PRIMARY KEY, confirmed TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, ts TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL);
"""


class StateError(Exception):
    """The state database cannot be used (newer schema, written in read-only mode)."""


def utc_now() -> str:
    """Return the current time as ISO 8601 UTC with a Z, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # datetime's takes three times as long


@dataclass(frozen=True)
class TaskRecord:
    """One final result of a task, as last_results() returns it."""

    task_id: str
    run: int
    """The number of the run that recorded it."""
    outcome: str
    fingerprint: Fingerprint | None
    started: str | None
    finished: str | None
    duration: float
    attempts: int
    worker: str | None
    changed: list[str]
    written: dict[str, str | None]
    """Path -> sha256 of what the task left there (None: it deleted the file)."""
    message: str
    since_run: int
    """For up_to_date, the run whose pass it relies on; else ``run``."""
    since: str | None
    run_id: str = ""

    @property
    def token(self) -> str:
        """What dependents put in their fingerprint for this task: the pass that last changed something.

        A rerun that changed nothing keeps ``since_run`` and ``since``, so the token holds.
        """
        return dep_token(self.since or "", self.since_run)


@dataclass(frozen=True)
class RunRecord:
    number: int
    run_id: str
    started: str
    finished: str | None
    outcome: str | None
    argv: list[str] = field(default_factory=list)
    git_clean: bool | None = None
    pid: int | None = None
    host: str | None = None


class StateStore:
    """The .orch/state.db of one project; open with ``StateStore.open(root)``."""

    def __init__(self, root: Path, conn: sqlite3.Connection, readonly: bool) -> None:
        self.root = root
        self.readonly = readonly
        self._conn = conn
        self._events_fd: int | None = None
        self._run_numbers: dict[str, int] = {}  # run id -> number: fixed once given, asked once per task
        self._maps_stored: set[str] = set()  # input maps this object has stored (rows are never deleted)

    @classmethod
    def open(cls, root: Path, *, readonly: bool = False) -> StateStore:
        """Open (writable: create) the project's state; read-only never creates or writes anything."""
        root = Path(root)
        db = root / STATE_DIR / DB_NAME
        if readonly:
            if db.exists():
                # Without a -wal file every commit is in the main file, and immutable=1 reads it without
                # creating -wal/-shm; with one (a run going on, or killed) mode=ro reads the WAL too.
                wal = db.with_name(DB_NAME + "-wal").exists()
                query = "mode=ro" if wal else "immutable=1"
                conn = sqlite3.connect(f"{db.resolve().as_uri()}?{query}", uri=True,
                                       isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                conn.executescript(_SCHEMA)
            store = cls(root, conn, readonly=True)
            store._check_schema()
            return store
        db.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every write below is its own explicit transaction.
        conn = sqlite3.connect(db, isolation_level=None, timeout=10, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL: a commit survives a killed process; only power loss can undo the last ones.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        with _tx(conn):
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        store = cls(root, conn, readonly=False)
        store._check_schema()
        return store

    def _check_schema(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{STATE_DIR}/{DB_NAME} has schema version {version}, newer than this pytest-orch "
                f"understands ({SCHEMA_VERSION}); upgrade pytest-orch"
            )

    def close(self) -> None:
        if self._events_fd is not None:
            os.close(self._events_fd)
            self._events_fd = None
        self._conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _writable(self) -> sqlite3.Connection:
        if self.readonly:
            raise StateError("the state store was opened read-only")
        return self._conn

    # -- runs --------------------------------------------------------------------------------

    def begin_run(self, run_id: str, started: str, argv: list[str], git_clean: bool | None) -> int:
        """Record a new run and return its number (1, 2, ...); earlier unfinished runs become interrupted."""
        conn = self._writable()
        with _tx(conn, self._forget_written):
            # The caller holds the run lock, so a run without an end was cut off (killed, crashed).
            conn.execute("UPDATE runs SET outcome='interrupted' WHERE finished IS NULL AND outcome IS NULL")
            cur = conn.execute(
                "INSERT INTO runs (run_id, started, argv, git_clean, pid, host) VALUES (?,?,?,?,?,?)",
                (run_id, started, json.dumps(list(argv)), None if git_clean is None else int(git_clean),
                 os.getpid(), socket.gethostname()),
            )
            number = self._run_numbers[run_id] = int(cur.lastrowid or 0)
            return number

    def end_run(self, run_id: str, finished: str, outcome: str) -> None:
        conn = self._writable()
        with _tx(conn):
            conn.execute("UPDATE runs SET finished=?, outcome=? WHERE run_id=?", (finished, outcome, run_id))

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Return the runs, newest first."""
        sql = "SELECT number, run_id, started, finished, outcome, argv, git_clean, pid, host FROM runs " \
              "ORDER BY number DESC"
        rows = self._conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        return [RunRecord(r[0], r[1], r[2], r[3], r[4] or ("running" if r[3] is None else None),
                          json.loads(r[5]), None if r[6] is None else bool(r[6]), r[7], r[8])
                for r in rows]

    def _run_number(self, run_id: str) -> int:
        number = self._run_numbers.get(run_id)
        if number is None:
            row = self._conn.execute("SELECT number FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None:
                raise StateError(f"unknown run {run_id!r}: call begin_run first")
            number = self._run_numbers[run_id] = int(row[0])
        return number

    # -- tasks -------------------------------------------------------------------------------

    def record_attempt(self, run_id: str, task_id: str, attempt: int, started: str | None,
                       finished: str | None, outcome: str, worker: str | None,
                       changed: Iterable[str]) -> None:
        """Record a task's last attempt (``attempt`` counts them, retries included).

        Commits at once, or with the caller's ``transaction()`` when inside one.
        """
        conn = self._writable()
        with _tx(conn):
            conn.execute(
                "INSERT INTO attempts (run_id, task_id, attempt, started, finished, outcome, worker, "
                "output_digest, changed) VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, task_id, attempt, started, finished, outcome, worker, None,
                 json.dumps(sorted(set(changed)))),
            )

    def record_result(
        self, run_id: str, task_id: str, outcome: str, fingerprint: Fingerprint | None,
        started: str | None, finished: str | None, duration: float, attempts: int,
        worker: str | None, changed: Iterable[str], written: Mapping[str, str | None], message: str,
        *, unchanged: bool = False,
    ) -> TaskRecord:
        """Record a task's final result and commit; return it as last_results() will.

        For ``up_to_date`` pass ``fingerprint=None``: the fingerprint, written digests and the run it
        relies on are carried over from the previous pass, so dependents see the same token (the
        returned record's ``fingerprint.inputs`` is then empty; last_results() has them). Changed
        paths missing from ``written`` are hashed now (None when the task deleted them).

        ``unchanged``: the task ran (or was found up to date by its handler) and changed nothing;
        it keeps the pass its dependents rely on (``since_run``), so they stay up to date.
        """
        conn = self._writable()
        changed = sorted(set(changed))
        written = dict(written)
        missing = [path for path in changed if path not in written]
        if missing:
            hasher = FileHasher()
            for path in missing:
                written[path] = hasher.sha(self.root / path)
        with _tx(conn, self._forget_written):
            number = self._run_number(run_id)
            since_run, since = number, finished
            if outcome == "up_to_date" or unchanged:
                prev = conn.execute(
                    "SELECT r.outcome, r.fingerprint, r.written, r.since_run, r.since "
                    "FROM task_state t JOIN results r ON r.id = t.result_id WHERE t.task_id=?",
                    (task_id,)).fetchone()
                if prev is not None and prev[0] in ("passed", "up_to_date"):
                    # Its input map stays in input_maps (inputs_digest); reading it here would cost a
                    # JSON parse per up-to-date task, and the caller only needs the token.
                    prev_fp = Fingerprint.from_json(prev[1], {})
                    # Same work as the earlier pass: keep what it wrote and when it ran. A handler that
                    # found nothing to change under a new fingerprint starts afresh instead.
                    if fingerprint is None or (prev_fp and prev_fp.digest == fingerprint.digest):
                        fingerprint = fingerprint or prev_fp
                        written = {**json.loads(prev[2]), **written}
                        since_run, since = prev[3], prev[4]
                    elif unchanged:
                        written = {**json.loads(prev[2]), **written}
                        since_run, since = prev[3], prev[4]
            if fingerprint is not None and fingerprint.inputs_digest not in self._maps_stored:
                # Many tasks share one glob's input map: keep each map once, not once per task and run.
                conn.execute("INSERT OR IGNORE INTO input_maps VALUES (?, ?)",
                             (fingerprint.inputs_digest, json.dumps(fingerprint.inputs, sort_keys=True)))
                self._maps_stored.add(fingerprint.inputs_digest)
            cur = conn.execute(
                "INSERT INTO results (run_number, run_id, task_id, outcome, digest, fingerprint, "
                "inputs_digest, started, finished, duration, attempts, worker, changed, written, message, "
                "since_run, since) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (number, run_id, task_id, outcome, fingerprint.digest if fingerprint else None,
                 fingerprint.to_json(with_inputs=False) if fingerprint else None,
                 fingerprint.inputs_digest if fingerprint else None, started, finished, float(duration),
                 attempts, worker, json.dumps(changed), json.dumps(written, sort_keys=True), message,
                 since_run, since),
            )
            rid = cur.lastrowid
            decisive = rid if outcome in DECISIVE else None
            passed = rid if outcome == "passed" else None
            conn.execute(
                "INSERT INTO task_state (task_id, seen_id, result_id, pass_id) VALUES (?,?,?,?) "
                "ON CONFLICT(task_id) DO UPDATE SET seen_id=excluded.seen_id, "
                "result_id=COALESCE(excluded.result_id, result_id), "
                "pass_id=COALESCE(excluded.pass_id, pass_id)",
                (task_id, rid, decisive, passed),
            )
            if outcome in ("passed", "failed") and written:
                # Only a task that ran wrote anything; a failed one may have written part of its work.
                conn.executemany(
                    "INSERT INTO written_paths (path, sha, run_number, task_id) VALUES (?,?,?,?) "
                    "ON CONFLICT(path) DO UPDATE SET sha=excluded.sha, run_number=excluded.run_number, "
                    "task_id=excluded.task_id",
                    [(p, sha, number, task_id) for p, sha in written.items()],
                )
        return TaskRecord(task_id, number, outcome, fingerprint, started, finished, float(duration),
                          attempts, worker, changed, written, message, since_run, since, run_id)

    def last_results(self, *, include_skipped: bool = False) -> dict[str, TaskRecord]:
        """Return each task's latest decisive result (passed, failed, up_to_date), in one query.

        ``include_skipped``: the latest result of any outcome instead (for --orch-status).
        """
        column = "seen_id" if include_skipped else "result_id"
        rows = self._conn.execute(
            "SELECT r.task_id, r.run_number, r.outcome, r.fingerprint, r.started, r.finished, r.duration, "
            "r.attempts, r.worker, r.changed, r.written, r.message, r.since_run, r.since, r.run_id, "
            "r.inputs_digest, m.data "
            f"FROM task_state t JOIN results r ON r.id = t.{column} "
            "LEFT JOIN input_maps m ON m.digest = r.inputs_digest"
        ).fetchall()
        maps: dict[str, dict[str, str | None]] = {}
        out = {}
        for r in rows:
            inputs = None
            if r[15] is not None:
                # Parse each shared map once; the records share it and must not change it.
                inputs = maps.get(r[15])
                if inputs is None:
                    inputs = maps[r[15]] = json.loads(r[16]) if r[16] else {}
            out[r[0]] = TaskRecord(r[0], r[1], r[2], Fingerprint.from_json(r[3], inputs), r[4], r[5], r[6],
                                   r[7], r[8], json.loads(r[9]), json.loads(r[10]), r[11], r[12], r[13],
                                   r[14])
        return out

    def last_success(self, task_id: str, results: Mapping[str, TaskRecord] | None = None) -> TaskRecord | None:
        """Return the task's latest result if it is a pass (or up to date), else None."""
        record = (results if results is not None else self.last_results()).get(task_id)
        return record if record is not None and record.outcome in ("passed", "up_to_date") else None

    def durations(self) -> dict[str, float]:
        """Return each task's duration in its last pass: estimates for the parallel scheduler."""
        rows = self._conn.execute(
            "SELECT r.task_id, r.duration FROM task_state t JOIN results r ON r.id = t.pass_id")
        return {task_id: duration for task_id, duration in rows}

    def results_of_runs(self, numbers: Iterable[int]) -> dict[str, dict[int, tuple[str, float]]]:
        """Return each task's (outcome, duration) in the given runs: the reports' history. Read-only."""
        wanted = sorted({int(n) for n in numbers})
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._conn.execute(
            f"SELECT task_id, run_number, outcome, duration FROM results WHERE run_number IN ({marks}) ORDER BY id",
            wanted)
        history: dict[str, dict[int, tuple[str, float]]] = {}
        for task_id, number, outcome, duration in rows:
            history.setdefault(task_id, {})[number] = (outcome, duration)
        return history

    def attempts(self, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
        """Return a run's attempts (of one task), in the order they were recorded."""
        sql = "SELECT task_id, attempt, started, finished, outcome, worker, output_digest, changed " \
              "FROM attempts WHERE run_id=?"
        args: tuple[Any, ...] = (run_id,)
        if task_id is not None:
            sql, args = sql + " AND task_id=?", (run_id, task_id)
        keys = ("task_id", "attempt", "started", "finished", "outcome", "worker", "output_digest", "changed")
        out = []
        for row in self._conn.execute(sql + " ORDER BY id", args):
            item = dict(zip(keys, row, strict=False))
            item["changed"] = json.loads(item["changed"])
            out.append(item)
        return out

    # -- manual steps and the dirty check ----------------------------------------------------

    def confirm(self, task_id: str, when: str) -> None:
        """Record that the manual step ``task_id`` was done (``--confirm``)."""
        conn = self._writable()
        with _tx(conn):
            conn.execute("INSERT INTO confirmations VALUES (?, ?) ON CONFLICT(task_id) DO UPDATE "
                         "SET confirmed=excluded.confirmed", (task_id, when))

    def confirmations(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT task_id FROM confirmations")}

    def harness_written(self) -> dict[str, str | None]:
        """Return every path a task of an earlier run changed, with the sha256 it left (None: deleted)."""
        return dict(self._conn.execute("SELECT path, sha FROM written_paths").fetchall())

    def harness_writers(self) -> dict[str, str]:
        """Return the task that last wrote each path of ``harness_written``."""
        return dict(self._conn.execute("SELECT path, task_id FROM written_paths").fetchall())

    def event(self, kind: str, *, ts: str | None = None, **fields: Any) -> None:
        """Append one event (run_start, run_end, task_start, task_retry, task_end) to the log and table."""
        conn = self._writable()
        ts = ts or utc_now()
        record = {"ts": ts, "event": kind, **fields}
        line = json.dumps(record, sort_keys=False, default=str, separators=(",", ":")) + "\n"
        if self._events_fd is None:
            self._events_fd = os.open(self.root / STATE_DIR / EVENTS_NAME,
                                      os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        # One write() of a whole line with O_APPEND: a kill leaves whole lines, and no buffer to lose.
        os.write(self._events_fd, line.encode())
        # One statement: outside a transaction SQLite commits it on its own, as BEGIN ... COMMIT would,
        # without two more round trips through the driver; inside the caller's it is part of that.
        conn.execute("INSERT INTO events (ts, kind, data) VALUES (?,?,?)", (ts, kind, line.rstrip("\n")))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT data FROM events", ()
        if kind is not None:
            sql, args = sql + " WHERE kind=?", (kind,)
        return [json.loads(row[0]) for row in self._conn.execute(sql + " ORDER BY id", args)]

    def transaction(self) -> _tx:
        """Group several writes into one commit (a task's result, attempt and event)."""
        return _tx(self._writable(), self._forget_written)

    def _forget_written(self) -> None:
        """After a rollback: rows this object remembered writing may be gone; look them up again."""
        self._run_numbers.clear()
        self._maps_stored.clear()

    def integrity_check(self) -> str:
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])


def read_written_digests(root: Path) -> dict[str, str | None]:
    """``harness_written()`` of the project's store, read-only; empty when there is no usable store."""
    try:
        with StateStore.open(root, readonly=True) as store:
            return store.harness_written()
    except (StateError, sqlite3.Error):
        return {}


def read_durations(root: Path) -> dict[str, float]:
    """``durations()`` of the project's store, read-only; empty when there is no usable store."""
    if not (Path(root) / STATE_DIR / DB_NAME).exists():
        return {}
    try:
        with StateStore.open(root, readonly=True) as store:
            return store.durations()
    except (StateError, sqlite3.Error):
        return {}


class _tx:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the body raises; inside another, part of it.

    ``on_rollback`` runs after a rollback: it forgets what the caller remembered of rows written.
    """

    def __init__(self, conn: sqlite3.Connection, on_rollback: Callable[[], None] | None = None) -> None:
        self.conn = conn
        self.outer = False
        self.on_rollback = on_rollback

    def __enter__(self) -> sqlite3.Connection:
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.outer:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            if exc_type and self.on_rollback is not None:
                self.on_rollback()
