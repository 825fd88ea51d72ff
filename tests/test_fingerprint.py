"""Fingerprints and the reasons a task is stale."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from pytest_orch.fingerprint import (
    FileHasher,
    Fingerprint,
    compute,
    dep_token,
    expand_inputs,
    up_to_date_message,
    why_stale,
)

DEFINITION = {"id": "1.1", "type": "command", "run": "make", "name": "Build", "tags": ["x"]}


@dataclass
class Rec:
    outcome: str
    fingerprint: Fingerprint | None
    written: dict[str, str | None] = field(default_factory=dict)
    since_run: int = 1
    since: str = "2026-11-21T20:01:02Z"


def fp(root: Path, hasher: FileHasher | None = None, definition=DEFINITION, version="1",
       inputs=("src/**/*.ts",), deps=None) -> Fingerprint:
    hasher = hasher or FileHasher()
    return compute(definition, version, expand_inputs(inputs, root, hasher), root, deps or {}, hasher)


def project(tmp_path: Path) -> Path:
    (tmp_path / "src" / "lib").mkdir(parents=True)
    (tmp_path / "src" / "a.ts").write_text("a")
    (tmp_path / "src" / "lib" / "b.ts").write_text("b")
    (tmp_path / "src" / "c.js").write_text("c")
    return tmp_path


def test_expand_inputs_globs_recursively_inside_root(tmp_path):
    root = project(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.ts"
    outside.write_text("x")
    (root / "src" / "link.ts").symlink_to(outside)
    found = expand_inputs(["src/**/*.ts", "../*.ts", "/etc/*"], root)
    assert [p.relative_to(root).as_posix() for p in found] == ["src/a.ts", "src/lib/b.ts"]


def test_same_task_same_files_same_digest_and_json_round_trip(tmp_path):
    root = project(tmp_path)
    first = fp(root)
    # A read-only mapping from the plan model hashes like the dict it holds.
    second = fp(root, definition=MappingProxyType(dict(reversed(list(DEFINITION.items())))))
    assert first.digest == second.digest
    assert set(first.inputs) == {"src/a.ts", "src/lib/b.ts"}
    assert Fingerprint.from_json(first.to_json()) == first


def test_up_to_date_after_pass_with_same_fingerprint(tmp_path):
    root = project(tmp_path)
    before = fp(root)
    record = Rec("passed", before)
    assert why_stale(record, fp(root), root, FileHasher()) is None
    assert up_to_date_message(record) == "up to date (run 1 at 2026-11-21T20:01:02Z)"


def test_reasons(tmp_path):
    root = project(tmp_path)
    before = fp(root)
    h = FileHasher()
    assert why_stale(None, before, root, h) == "never ran"
    assert why_stale(Rec("passed", before), before, root, h, force=True) == "forced"
    assert why_stale(Rec("failed", before), before, root, h) == "last run failed"
    changed_def = fp(root, definition={**DEFINITION, "run": "make all"})
    assert why_stale(Rec("passed", before), changed_def, root, h) == "definition changed"
    assert why_stale(Rec("passed", before), fp(root, version="2"), root, h).startswith(
        "handler version changed")
    (root / "src" / "a.ts").write_text("A")
    assert why_stale(Rec("passed", before), fp(root), root, FileHasher()) == "input src/a.ts changed"
    (root / "src" / "a.ts").write_text("a")
    (root / "src" / "new.ts").write_text("n")
    assert why_stale(Rec("passed", before), fp(root), root, FileHasher()) == "input src/new.ts added"
    (root / "src" / "new.ts").unlink()
    (root / "src" / "lib" / "b.ts").unlink()
    assert why_stale(Rec("passed", before), fp(root), root, FileHasher()) == "input src/lib/b.ts removed"


def test_cosmetic_keys_do_not_make_a_task_stale(tmp_path):
    root = project(tmp_path)
    before = fp(root)
    renamed = fp(root, definition={**DEFINITION, "name": "Build it", "tags": ["y"], "retries": 3})
    assert why_stale(Rec("passed", before), renamed, root, FileHasher()) is None


def test_dependency_that_ran_again_makes_dependents_stale(tmp_path):
    root = project(tmp_path)
    before = fp(root, deps={"1.0": dep_token("d", 1)})
    assert why_stale(Rec("passed", before), fp(root, deps={"1.0": dep_token("d", 1)}), root,
                     FileHasher()) is None
    # Same fingerprint, but it ran again in run 2: dependents run again too.
    again = fp(root, deps={"1.0": dep_token("d", 2)})
    assert why_stale(Rec("passed", before), again, root, FileHasher()) == "dependency 1.0 ran again"
    added = fp(root, deps={"1.0": dep_token("d", 1), "0.9": "x"})
    assert why_stale(Rec("passed", before), added, root, FileHasher()) == "dependency 0.9 added"


def test_hand_edit_of_a_written_file_makes_the_task_stale(tmp_path):
    root = project(tmp_path)
    out = root / "package.json"
    out.write_text('{"a": 1}')
    h = FileHasher()
    record = Rec("passed", fp(root), written={"package.json": h.sha(out)})
    assert why_stale(record, fp(root), root, FileHasher()) is None
    out.write_text('{"a": 2}')
    assert why_stale(record, fp(root), root, FileHasher()) == \
        "output package.json changed since it was written"
    # A later task of the plan wrote it: not a hand edit.
    harness = {"package.json": FileHasher().sha(out)}
    assert why_stale(record, fp(root), root, FileHasher(), harness_written=harness) is None
    out.unlink()
    assert why_stale(record, fp(root), root, FileHasher()) == \
        "output package.json was deleted since it was written"


def test_edited_file_is_an_input_that_the_edit_does_not_make_stale(tmp_path):
    root = project(tmp_path)
    cfg = root / "tsconfig.json"
    cfg.write_text('{"strict": false}')
    before = compute(DEFINITION, "1", [cfg], root, {}, FileHasher())  # hashed before the edit
    cfg.write_text('{"strict": true}')
    record = Rec("passed", before, written={"tsconfig.json": FileHasher().sha(cfg)})
    now = compute(DEFINITION, "1", [cfg], root, {}, FileHasher())
    assert why_stale(record, now, root, FileHasher()) is None
    cfg.write_text('{"strict": true, "x": 1}')
    now = compute(DEFINITION, "1", [cfg], root, {}, FileHasher())
    # edited again by a person after the task's edit: named as the output the task wrote
    assert why_stale(record, now, root, FileHasher()) == "output tsconfig.json changed since it was written"


def test_hasher_caches_old_files_but_never_hides_a_write(tmp_path):
    old = tmp_path / "old.txt"
    old.write_text("one")
    past = time.time() - 60
    os.utime(old, (past, past))
    h = FileHasher()
    first = h.sha(old)
    assert h.sha(old) == first and len(h._hashes) == 1
    fresh = tmp_path / "fresh.txt"
    fresh.write_text("abc")
    a = h.sha(fresh)
    fresh.write_text("abd")  # same size, likely the same mtime tick
    h.invalidate()  # a task ran
    assert h.sha(fresh) != a
    assert h.sha(tmp_path / "missing") is None
    assert h.sha(tmp_path) is None
