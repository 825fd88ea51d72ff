"""Merge the .orch/state.db of several CI jobs into one, so a later run knows what every job did.

Each job's database is a copy of the ones it carried in plus its own run, so the same run (same
``run_id``) is in several of them; parallel jobs each numbered their own run N+1. The merged
database keeps each run once, numbered again in start order, and every result once.

Renumbering has one catch: a dependent records its dependency's ``dep_token(since, since_run)`` in
its fingerprint, and ``since_run`` is a run number; for a phase or group it depends on, one token
over its tasks' tokens (``History.barrier_token``). Each source's tokens are rewritten with the new
numbers (and each fingerprint's digest recomputed as ``fingerprint.compute`` does), so a task that
was up to date in its job is up to date in the merged state too. A barrier's token is rebuilt from
the member results the dependent saw, and rewritten only when that rebuilds the stored token
exactly; otherwise it stays, and the dependent merely runs once more.

Files: each path's last writer wins when one job saw the other's write (its database holds the
run that wrote it); when neither did, two jobs the plan does not order changed the same file, and
the merge stops with both tasks named.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_orch.fingerprint import dep_token, sha256_bytes
from pytest_orch.merge.inputs import JobInput, MergeError
from pytest_orch.state import DB_NAME, DECISIVE, STATE_DIR, StateStore

RESULT_COLUMNS = ("run_number", "run_id", "task_id", "outcome", "digest", "fingerprint", "inputs_digest", "started",
                  "finished", "duration", "attempts", "worker", "changed", "written", "message", "since_run",
                  "since")
ATTEMPT_COLUMNS = ("run_id", "task_id", "attempt", "started", "finished", "outcome", "worker", "output_digest",
                   "changed")
RUN_COLUMNS = ("number", "run_id", "started", "finished", "outcome", "argv", "git_clean", "pid", "host")


@dataclass(frozen=True)
class Source:
    """One database to merge and where the files it says were written can be found."""

    label: str
    db: Path
    files: dict[str, Path]
    """Path in the project -> a copy of the file as that job left it."""


@dataclass(frozen=True)
class FileChoice:
    path: str
    sha: str | None  # None: the plan deleted it
    copy: Path | None
    task_id: str


@dataclass
class _Read:
    source: Source
    runs: list[dict[str, Any]]
    results: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    written: dict[str, tuple[str | None, int, str]]
    input_maps: list[tuple[str, str]]
    confirmations: list[tuple[str, str]]
    events: list[tuple[str, str, str]]

    @property
    def run_ids(self) -> set[str]:
        return {run["run_id"] for run in self.runs}


def sources_of(jobs: Iterable[JobInput]) -> list[Source]:
    return [Source(job.label, job.state, job.files) for job in jobs if job.state is not None]


def _read(source: Source) -> _Read:
    conn = sqlite3.connect(f"{source.db.resolve().as_uri()}?immutable=1", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(row) for row in conn.execute(sql)]

        return _Read(
            source=source,
            runs=rows(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY number"),
            results=rows(f"SELECT id, {', '.join(RESULT_COLUMNS)} FROM results ORDER BY id"),
            attempts=rows(f"SELECT id, {', '.join(ATTEMPT_COLUMNS)} FROM attempts ORDER BY id"),
            written={r["path"]: (r["sha"], r["run_number"], r["task_id"])
                     for r in rows("SELECT path, sha, run_number, task_id FROM written_paths")},
            input_maps=[tuple(r) for r in conn.execute("SELECT digest, data FROM input_maps")],
            confirmations=[tuple(r) for r in conn.execute("SELECT task_id, confirmed FROM confirmations")],
            events=[tuple(r) for r in conn.execute("SELECT ts, kind, data FROM events ORDER BY id")],
        )
    except sqlite3.Error as exc:
        raise MergeError(f"{source.db}: cannot read the state ({exc})") from None
    finally:
        conn.close()


class StateMerge:
    """The merged state, built in memory from the sources; ``write`` puts it in one new database."""

    def __init__(self, sources: list[Source], barriers: Mapping[str, Sequence[str]] | None = None) -> None:
        self.reads = [_read(source) for source in sources]
        self.barriers = dict(barriers or {})
        """A phase's or group's name as fingerprints record it (``phase 2``) -> its tasks."""
        runs: dict[str, dict[str, Any]] = {}
        for read in self.reads:
            for run in read.runs:
                known = runs.get(run["run_id"])
                if known is None or (known["finished"] is None and run["finished"] is not None):
                    runs[run["run_id"]] = run
        self.runs = sorted(runs.values(), key=lambda r: (r["started"], r["run_id"]))
        self.number = {run["run_id"]: n for n, run in enumerate(self.runs, 1)}
        self.files = self._choose_files()

    # -- numbering and tokens -----------------------------------------------------------------------
    def _renumber(self, read: _Read) -> dict[int, int]:
        return {run["number"]: self.number[run["run_id"]] for run in read.runs}

    def _token_map(self, read: _Read, numbers: dict[int, int]) -> dict[str, str]:
        tokens = {}
        for result in read.results:
            old = result["since_run"]
            if old is None or numbers.get(old, old) == old:
                continue
            tokens[dep_token(result["since"] or "", old)] = dep_token(result["since"] or "", numbers[old])
        return tokens

    def _barrier_tokens(self, read: _Read, numbers: dict[int, int]) -> Callable[[str, dict[str, Any]], str | None]:
        """For a dependent's result, the new token of a barrier it depends on, or None to keep the old.

        ``History.barrier_token`` hashes each member's token as the dependent's run saw it: the
        member's last decisive result of an earlier run, or its pass in this run (a failure in this
        run does not change the token it is known by).
        """
        rows: dict[str, list[dict[str, Any]]] = {}
        for result in read.results:
            rows.setdefault(result["task_id"], []).append(result)
        cache: dict[tuple[str, int], tuple[str, str] | None] = {}

        def seen(task_id: str, run: int, before_id: int) -> dict[str, Any] | None:
            found = None
            for row in rows.get(task_id, ()):
                if row["id"] >= before_id:
                    break
                if (row["run_number"] < run and row["outcome"] in DECISIVE) or \
                        (row["run_number"] == run and row["outcome"] in ("passed", "up_to_date")):
                    found = row
            return found

        def token(row: dict[str, Any] | None, renumber: bool) -> str:
            if row is None:
                return ""
            since_run = row["since_run"]
            return dep_token(row["since"] or "", numbers.get(since_run, since_run) if renumber else since_run)

        def new_token(name: str, dependent: dict[str, Any]) -> str | None:
            key = (name, dependent["run_number"])
            if key not in cache:  # one token per barrier and run: History takes it once and keeps it
                members = sorted(self.barriers[name])
                found = {t: seen(t, dependent["run_number"], dependent["id"]) for t in members}
                old = sha256_bytes("\n".join(f"{t}:{token(found[t], False)}" for t in members).encode())[:32]
                new = sha256_bytes("\n".join(f"{t}:{token(found[t], True)}" for t in members).encode())[:32]
                cache[key] = (old, new)
            old, new = cache[key]  # type: ignore[misc]
            return new if dependent_token(dependent, name) == old else None

        def dependent_token(dependent: dict[str, Any], name: str) -> str | None:
            text = dependent["fingerprint"]
            return json.loads(text)["deps"].get(name) if text else None

        return new_token

    def _rewrite_fingerprint(self, row: dict[str, Any], tokens: dict[str, str],
                             barrier_token: Callable[[str, dict[str, Any]], str | None]) -> tuple[str | None,
                                                                                                  str | None]:
        """The fingerprint with its dependency tokens renumbered, and its digest recomputed."""
        text = row["fingerprint"]
        if not text:
            return text, None
        data = json.loads(text)
        deps = {}
        for dep, value in data["deps"].items():
            if dep in self.barriers:
                deps[dep] = barrier_token(dep, row) or value
            else:
                deps[dep] = tokens.get(value, value)
        if deps != data["deps"]:
            deps = dict(sorted(deps.items()))
            body = json.dumps([data["definition"], data["handler"], data["inputs_digest"], deps],
                              separators=(",", ":"))
            data["deps"], data["digest"] = deps, sha256_bytes(body.encode())
            text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return text, data["digest"]

    # -- files ----------------------------------------------------------------------------------------
    def _choose_files(self) -> dict[str, FileChoice]:
        by_path: dict[str, list[tuple[_Read, str | None, str, str]]] = {}
        for read in self.reads:
            run_of = {run["number"]: run["run_id"] for run in read.runs}
            for path, (sha, number, task_id) in read.written.items():
                by_path.setdefault(path, []).append((read, sha, run_of.get(number, ""), task_id))
        chosen = {}
        for path, candidates in sorted(by_path.items()):
            # a candidate wins when its job saw every other candidate's write (or made the same one)
            winners = [c for c in candidates
                       if all(o[2] == c[2] or o[2] in c[0].run_ids for o in candidates)]
            if not winners:
                a, b = next((a, b) for a in candidates for b in candidates
                            if a[2] != b[2] and b[2] not in a[0].run_ids and a[2] not in b[0].run_ids)
                raise MergeError(
                    f"{path}: changed by task {a[3]} (job {a[0].source.label}) and by task {b[3]} "
                    f"(job {b[0].source.label}), which ran in jobs that do not need each other: their changes "
                    f"cannot both be kept; make one task depend on the other, or export them into one job")
            read, sha, run_id, task_id = max(winners, key=lambda c: self.number.get(c[2], 0))
            copy = read.source.files.get(path)
            if sha is not None and copy is None:
                raise MergeError(f"{path}: written by task {task_id} in job {read.source.label}, "
                                 "but its artifact holds no copy of it")
            chosen[path] = FileChoice(path, sha, copy, task_id)
        return chosen

    # -- writing --------------------------------------------------------------------------------------
    def write(self, root: Path) -> Path:
        """Write the merged state as ``root/.orch/state.db`` (a new project folder); return its path."""
        StateStore.open(root).close()  # the schema and settings of every state database
        db = root / STATE_DIR / DB_NAME
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("BEGIN")
            conn.executemany(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * 9)})",
                             [(self.number[r["run_id"]], *(r[c] for c in RUN_COLUMNS[1:])) for r in self.runs])
            self._write_results(conn)
            self._write_attempts(conn)
            conn.executemany("INSERT OR IGNORE INTO input_maps VALUES (?, ?)",
                             [m for read in self.reads for m in read.input_maps])
            confirmations: dict[str, str] = {}
            for read in self.reads:
                for task_id, when in read.confirmations:
                    confirmations[task_id] = max(when, confirmations.get(task_id, when))
            conn.executemany("INSERT INTO confirmations VALUES (?, ?)", sorted(confirmations.items()))
            conn.executemany("INSERT INTO written_paths VALUES (?, ?, ?, ?)", self._written_rows())
            conn.executemany("INSERT INTO events (ts, kind, data) VALUES (?, ?, ?)", self.events())
            conn.execute("COMMIT")
        finally:
            conn.close()
        return db

    def _write_results(self, conn: sqlite3.Connection) -> None:
        seen: set[tuple[str, str]] = set()
        rows = []
        for index, read in enumerate(self.reads):
            numbers = self._renumber(read)
            tokens = self._token_map(read, numbers)
            barrier_token = self._barrier_tokens(read, numbers)
            for result in read.results:
                key = (result["run_id"], result["task_id"])
                if key in seen:
                    continue  # the same run's result, carried in by several jobs
                seen.add(key)
                row = dict(result)
                row["run_number"] = self.number[row["run_id"]]
                if row["since_run"] is not None:
                    row["since_run"] = numbers.get(row["since_run"], row["since_run"])
                row["fingerprint"], digest = self._rewrite_fingerprint(result, tokens, barrier_token)
                if digest is not None:
                    row["digest"] = digest
                rows.append(((row["run_number"], index, row["id"]), row))
        rows.sort(key=lambda pair: pair[0])
        conn.executemany(f"INSERT INTO results ({', '.join(RESULT_COLUMNS)}) VALUES ({', '.join('?' * 17)})",
                         [tuple(row[c] for c in RESULT_COLUMNS) for _, row in rows])
        # each task's latest result of any kind, latest decisive one, latest pass: in run order
        decisive = ", ".join(f"'{outcome}'" for outcome in DECISIVE)
        conn.execute(
            "INSERT INTO task_state (task_id, seen_id, result_id, pass_id) SELECT task_id, MAX(id), "
            f"MAX(CASE WHEN outcome IN ({decisive}) THEN id END), MAX(CASE WHEN outcome='passed' THEN id END) "
            "FROM results GROUP BY task_id")

    def _write_attempts(self, conn: sqlite3.Connection) -> None:
        seen: set[tuple[str, str, int]] = set()
        rows = []
        for index, read in enumerate(self.reads):
            for attempt in read.attempts:
                key = (attempt["run_id"], attempt["task_id"], attempt["attempt"])
                if key not in seen:
                    seen.add(key)
                    rows.append(((self.number[attempt["run_id"]], index, attempt["id"]), attempt))
        rows.sort(key=lambda pair: pair[0])
        conn.executemany(f"INSERT INTO attempts ({', '.join(ATTEMPT_COLUMNS)}) VALUES ({', '.join('?' * 9)})",
                         [tuple(a[c] for c in ATTEMPT_COLUMNS) for _, a in rows])

    def _written_rows(self) -> list[tuple[str, str | None, int, str]]:
        rows = []
        for path, choice in self.files.items():
            number = max((self.number.get(self._writer_run(read, path), 0) for read in self.reads
                          if path in read.written and read.written[path][0] == choice.sha), default=0)
            rows.append((path, choice.sha, number, choice.task_id))
        return rows

    @staticmethod
    def _writer_run(read: _Read, path: str) -> str:
        number = read.written[path][1]
        return next((run["run_id"] for run in read.runs if run["number"] == number), "")

    def events(self) -> list[tuple[str, str, str]]:
        """Every source's events once each, in time order."""
        seen: set[str] = set()
        events = []
        for read in self.reads:
            for ts, kind, data in read.events:
                if data not in seen:
                    seen.add(data)
                    events.append((ts, kind, data))
        return sorted(events, key=lambda e: e[0])
