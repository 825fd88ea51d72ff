"""Fingerprint tasks and say why one is stale: hashes of definition, handler, input files and dependencies.

A task is up to date when its last decisive result (passed, failed or up to date; a skip that never ran
the task does not count) passed with the same fingerprint, and the files it wrote still hold what it wrote.
Pure: no SQLite, no pytest. ``state.TaskRecord`` is the ``previous`` argument, used by duck typing.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Keys that change how a task is scheduled or reported, never what it does: editing them must not make
# every dependent task run again. depends_on is covered by the ``deps`` part of the fingerprint.
NON_SEMANTIC_KEYS = frozenset(
    {"name", "tags", "timeout", "retries", "retry_delay", "backoff", "on_failure", "critical", "pool",
     "depends_on", "runs_on"}
)

# A file modified this recently may be modified again within the same mtime tick (git's "racily clean"
# problem), so its hash is not cached: a cached hash must never hide a later write.
_RACY_SECONDS = 2.0
_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> str:
    """Return ``value`` as JSON with sorted keys, so equal definitions hash equal."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain(value: Any) -> Any:
    # Mappings may be MappingProxyType and sequences tuples; json only knows dict and list.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, os.PathLike):
        return Path(value).as_posix()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def dep_token(since: str, since_run: int) -> str:
    """Return what a dependent records for a dependency: the run and time of its last pass that
    changed something.

    A dependency that ran again and changed something (or cannot tell, as a command) gets a new
    token, so its dependents run again too, as Snakemake does; one that ran and changed nothing
    keeps its token, so its dependents stay up to date.
    """
    return sha256_bytes(f"{since}:{since_run}".encode())[:32]


class FileHasher:
    """Hash files and expand globs, each once for the life of the object (one run).

    Contents are cached by (path, st_mtime_ns, st_size, st_ino); a missing file hashes to None.
    Call ``invalidate()`` after every task that ran, since it may have changed any file.
    """

    def __init__(self) -> None:
        self._hashes: dict[tuple[str, int, int, int], str] = {}
        self._globs: dict[tuple[str, tuple[str, ...]], tuple[Path, ...]] = {}
        self._rel: dict[tuple[str, str], str] = {}
        self._fresh: dict[str, str | None] = {}
        self._sets: dict[tuple[str, ...], tuple[dict[str, str | None], str]] = {}

    def sha(self, path: str | os.PathLike[str]) -> str | None:
        """Return the sha256 of the file's bytes, or None when it does not exist or is not a file."""
        p = os.fspath(path)
        if p in self._fresh:
            return self._fresh[p]
        self._fresh[p] = result = self._sha(p)
        return result

    def invalidate(self) -> None:
        """Forget which files were seen since the last call: call it whenever a task has run.

        Between calls each path is stat'ed once, so a rerun where every task is up to date stats each
        file once in all. Contents stay cached by (mtime, size, inode), so unchanged files are not read.
        """
        self._fresh.clear()
        self._sets.clear()

    def _sha(self, p: str) -> str | None:
        try:
            st = os.stat(p)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        # Keyed by stat, not by path alone: an earlier task of the run may write a later one's input.
        key = (p, st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._hashes.get(key)
        if cached is not None:
            return cached
        digest = hashlib.sha256()
        with open(p, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        result = digest.hexdigest()
        if st.st_mtime_ns < (time.time() - _RACY_SECONDS) * 1e9:
            self._hashes[key] = result
        return result

    def expand(self, globs: Iterable[str], root: Path) -> list[Path]:
        """Return the files under ``root`` matching any of ``globs`` (``**`` allowed), sorted, once each."""
        key = (os.fspath(root), tuple(globs))
        found = self._globs.get(key)
        if found is None:
            # Plans repeat the same globs across many tasks: expand and sort each set once per run.
            paths = {p for pattern in key[1] for p in _glob(pattern, root)}
            found = tuple(sorted(paths, key=os.fspath))
            self._globs[key] = found
        return list(found)

    def hash_inputs(self, paths: Iterable[Path], root: Path) -> tuple[dict[str, str | None], str]:
        """Return ({path relative to root: sha or None}, digest of that map); a repeated set is one lookup.

        The map is shared between callers and must not be changed.
        """
        key = (os.fspath(root), *map(os.fspath, paths))
        if len(key) == 1:
            return _NO_INPUTS  # most tasks read no file: the same map every time, whatever ran before
        found = self._sets.get(key)
        if found is None:
            hashes: dict[str, str | None] = {}
            for path in map(Path, key[1:]):
                full = path if path.is_absolute() else root / path
                hashes[self.relpath(full, root)] = self.sha(full)
            hashes = dict(sorted(hashes.items()))
            text = json.dumps(hashes, separators=(",", ":"), ensure_ascii=False)
            found = self._sets[key] = (hashes, sha256_bytes(text.encode()))
        return found

    def relpath(self, path: Path, root: Path) -> str:
        """Return ``path`` relative to ``root`` with forward slashes (absolute when outside), cached."""
        key = (os.fspath(path), os.fspath(root))
        rel = self._rel.get(key)
        if rel is None:
            rel = self._rel[key] = relpath(path, root)
        return rel


_NO_INPUTS: tuple[dict[str, str | None], str] = ({}, sha256_bytes(b"{}"))


def _glob(pattern: str, root: Path) -> list[Path]:
    # Plan validation already rejects globs leaving the root; this guards symlinks that point outside.
    if not pattern or Path(pattern).is_absolute() or ".." in Path(pattern).parts:
        return []
    real_root = root.resolve()
    out = []
    for match in root.glob(pattern):
        if not match.is_file():
            continue
        real = match.resolve()
        if real_root in real.parents:
            out.append(match)
    return out


def expand_inputs(globs: Iterable[str], root: Path, hasher: FileHasher | None = None) -> list[Path]:
    """Return the files under ``root`` that ``globs`` name, sorted; pass the run's hasher to cache."""
    return (hasher or FileHasher()).expand(globs, root)


def relpath(path: Path, root: Path) -> str:
    """Return ``path`` relative to ``root`` with forward slashes, or absolute when outside it."""
    p = path if path.is_absolute() else root / path
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        try:
            return p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            # Built-in templates live in the installed package, outside the project.
            return p.resolve().as_posix()


@dataclass(frozen=True)
class Fingerprint:
    """What a task's result depends on; ``digest`` hashes all of it.

    ``inputs`` maps each input file (relative to the root) to its sha256, None when it is missing;
    ``inputs_digest`` hashes that map, so stores can keep one copy of a map many tasks share.
    """

    definition: str
    handler: str
    inputs: dict[str, str | None] = field(default_factory=dict)
    deps: dict[str, str] = field(default_factory=dict)
    digest: str = ""
    inputs_digest: str = ""

    def to_json(self, *, with_inputs: bool = True) -> str:
        data = {"definition": self.definition, "handler": self.handler, "deps": self.deps,
                "digest": self.digest, "inputs_digest": self.inputs_digest}
        if with_inputs:
            data["inputs"] = self.inputs
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None, inputs: dict[str, str | None] | None = None) -> Fingerprint | None:
        """Read ``to_json`` output; ``inputs`` supplies the map when it was stored apart."""
        if not text:
            return None
        data = json.loads(text)
        return cls(data["definition"], data["handler"], inputs if inputs is not None else data["inputs"],
                   data["deps"], data["digest"], data.get("inputs_digest", ""))


def definition_digest(task_definition: Mapping[str, Any]) -> str:
    """Return the sha256 of the task's definition without the keys that do not change what it does."""
    kept = {k: v for k, v in task_definition.items() if k not in NON_SEMANTIC_KEYS}
    return sha256_bytes(canonical_json(kept).encode())


def compute(
    task_definition: Mapping[str, Any],
    handler_version: str,
    input_paths: Iterable[Path],
    root: Path,
    dep_digests: Mapping[str, str],
    hasher: FileHasher,
) -> Fingerprint:
    """Return the task's fingerprint now; ``dep_digests`` maps each dependency to its ``dep_token``.

    ``input_paths`` are the handler's inputs (templates, the file it edits, as it is before the edit)
    plus ``expand_inputs(task.inputs, root)``.
    """
    inputs, inputs_digest = hasher.hash_inputs(input_paths, root)
    definition = definition_digest(task_definition)
    deps = dict(sorted((str(k), str(v)) for k, v in dep_digests.items()))
    body = json.dumps([definition, str(handler_version), inputs_digest, deps], separators=(",", ":"))
    return Fingerprint(definition, str(handler_version), inputs, deps, sha256_bytes(body.encode()),
                       inputs_digest)


class _Record(Protocol):
    outcome: str
    fingerprint: Fingerprint | None
    written: Mapping[str, str | None]
    since_run: int
    since: str


def _names(kind: str, paths: list[str], verb: str) -> str:
    if len(paths) == 1:
        return f"{kind} {paths[0]} {verb}"
    shown = ", ".join(paths[:3])
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
    return f"{plural} {shown}{more} {verb}"


def why_stale(
    previous: _Record | None,
    current: Fingerprint,
    root: Path,
    hasher: FileHasher,
    *,
    force: bool = False,
    harness_written: Mapping[str, str | None] | None = None,
    written_later: Callable[[str, str | None], bool] = lambda path, digest: False,
) -> str | None:
    """Return why the task must run (a short reason), or None when it is up to date.

    ``harness_written`` (``StateStore.harness_written()``) is the last digest the harness wrote to each
    path; a file one task generated and a later task edited is then not a hand edit of the first.
    ``written_later(path, digest)``: the input holds what a task that ran after this one wrote, so
    its change is the plan's own work, not a reason to run this task again.
    """
    if force:
        return "forced"
    if previous is None or previous.fingerprint is None:
        return "never ran"
    if previous.outcome not in ("passed", "up_to_date"):
        return f"last run {previous.outcome}"
    before = previous.fingerprint
    if before.definition != current.definition:
        return "definition changed"
    if before.handler != current.handler:
        return f"handler version changed ({before.handler} -> {current.handler})"
    written = previous.written or {}
    harness = harness_written or {}
    # What the task itself wrote comes first: a person's edit there is the reason a reader expects.
    for path in sorted(written):
        expected = harness.get(path, written[path])
        full = Path(path) if Path(path).is_absolute() else root / path
        now = hasher.sha(full)
        if now != expected:
            if now is None:
                return f"output {path} was deleted since it was written"
            if expected is None:
                return f"output {path} was recreated since the task deleted it"
            return f"output {path} changed since it was written"
    # A file the task wrote (or edits) is among its inputs once it exists; holding what the task
    # wrote there is no change, and neither is its appearing because the task created it.
    ours = {p for p in written if p in current.inputs and current.inputs[p] == written[p]}
    added = sorted(p for p in set(current.inputs) - set(before.inputs) - ours
                   if not written_later(p, current.inputs[p]))
    removed = sorted(set(before.inputs) - set(current.inputs))
    changed = sorted(
        p for p in set(current.inputs) & set(before.inputs)
        if current.inputs[p] != before.inputs[p] and p not in ours and not written_later(p, current.inputs[p])
    )
    if changed:
        return _names("input", changed, "changed")
    if added:
        return _names("input", added, "added")
    if removed:
        return _names("input", removed, "removed")
    dep_changes = sorted(
        d for d in set(current.deps) | set(before.deps) if current.deps.get(d) != before.deps.get(d)
    )
    if dep_changes:
        ran = [d for d in dep_changes if d in before.deps and d in current.deps]
        if ran:
            return _names("dependency", ran, "ran again")
        new = [d for d in dep_changes if d not in before.deps]
        if new:
            return _names("dependency", new, "added")
        return _names("dependency", dep_changes, "removed")
    return None


def up_to_date_message(record: _Record) -> str:
    """Return the skip reason for an up-to-date task: ``up to date (run 3 at 2026-11-21T20:01:02Z)``.

    When that run's handler itself found the task up to date, its words follow (``docs/x.md: edited by
    hand since generated; ...``): a guard that held once keeps saying so on every later run.
    """
    since = f"up to date (run {record.since_run} at {record.since})"
    message = getattr(record, "message", "")  # optional in _Record: older callers pass records without it
    return f"{since}: {message}" if record.outcome == "up_to_date" and message else since
