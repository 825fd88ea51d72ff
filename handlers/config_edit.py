"""The ``config_edit`` handler: edit a JSON, YAML, TOML, INI or text file in place.

Structured formats are edited through dotted paths (``set``, ``remove``, ``append``); text files
through regular expressions (``replace``). Comments, key order and indentation survive, and an edit
that is already in place changes nothing and says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pytest_orch.handlers import dotted_path, params
from pytest_orch.handlers.formats import LOADERS, FormatError
from pytest_orch.handlers.ini_edit import load_ini

from pytest_orch.errors import HandlerError
from pytest_orch.fileio import unified_diff
from pytest_orch.handler import Outcome, TaskContext
from pytest_orch.plan.model import Task

FORMATS = ("json", "yaml", "toml", "ini", "text")
SUFFIXES = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".ini": "ini",
            ".cfg": "ini"}
STRUCTURED_OPS = ("set", "remove", "append")


def file_format(task: Task) -> str:
    """The task's format: its ``format`` key, else from the file's suffix, else text."""
    given = task.params.get("format")
    if given:
        return str(given).lower()
    return SUFFIXES.get(Path(str(task.params.get("file", ""))).suffix.lower(), "text")


class ConfigEditHandler:
    """Apply ``set``, ``remove``, ``append`` (structured formats) or ``replace`` (text) to ``file``."""

    keys: ClassVar[frozenset[str]] = frozenset(
        {"file", "format", "set", "remove", "append", "replace"}
    )
    path_keys: ClassVar[frozenset[str]] = frozenset({"file"})
    write_keys: ClassVar[frozenset[str]] = frozenset({"file"})
    version: ClassVar[str] = "1"
    contained: ClassVar[bool] = True  # an edit in this package's Python: it may run in the xdist controller
    writes_files: ClassVar[bool] = True
    knows_changes: ClassVar[bool] = True
    typical_seconds: ClassVar[float] = 0.005  # an edit in Python: -n does not pay off for it

    def validate(self, task: Task) -> None:
        params.expect(task, "file", str, required=True)
        fmt = params.expect(task, "format", str)
        if fmt is not None and fmt.lower() not in FORMATS:
            raise params.error(task, "format",
                               f"unknown format {fmt!r} (use one of {', '.join(FORMATS)})")
        fmt = file_format(task)
        ops = [k for k in (*STRUCTURED_OPS, "replace") if k in task.params]
        if not ops:
            raise params.error(task, "file", "config_edit needs at least one of set, remove, "
                                             "append, replace")
        for op in ops:
            if (op == "replace") != (fmt == "text"):
                what = "only for text files" if op == "replace" else "not for text files"
                raise params.error(task, op, f"'{op}' is {what}; {task.params['file']} is {fmt} "
                                             "(set 'format' to change that)")
        for key in ("set", "append"):
            mapping = params.expect(task, key, dict)
            for path, value in (mapping or {}).items():
                self._check_path(task, key, str(path))
                if key == "append" and not isinstance(value, list):
                    raise params.error(task, key, f"append {path}: the items must be a list")
        removals = params.expect(task, "remove", (list, str))
        for path in [removals] if isinstance(removals, str) else removals or []:
            if not isinstance(path, str):
                raise params.error(task, "remove", f"remove: {path!r} is not a dotted path")
            self._check_path(task, "remove", path)
        for i, rule in enumerate(params.expect(task, "replace", list) or []):
            if not isinstance(rule, Mapping) or "pattern" not in rule or "with" not in rule:
                raise params.error(task, "replace",
                                   f"replace item {i + 1} must be a mapping with 'pattern' and 'with'")
            extra = set(rule) - {"pattern", "with", "count"}
            if extra:
                raise params.error(task, "replace", f"replace item {i + 1}: unknown key "
                                                    f"{sorted(extra)[0]!r}")
            try:
                re.compile(str(rule["pattern"]), re.MULTILINE)
            except re.error as exc:
                raise params.error(task, "replace", f"replace item {i + 1}: bad pattern "
                                                    f"{rule['pattern']!r}: {exc}") from None

    @staticmethod
    def _check_path(task: Task, key: str, path: str) -> None:
        try:
            dotted_path.parse(path)
        except dotted_path.PathError as exc:
            raise params.error(task, key, f"{key}: bad dotted path {exc}") from None

    def inputs(self, task: Task, ctx: TaskContext) -> list[Path]:
        return params.existing(ctx, task.params.get("file"), "file")

    def writes(self, task: Task, ctx: TaskContext) -> list[Path]:
        return [ctx.resolve(task.params["file"], key="file")]

    def run(self, task: Task, ctx: TaskContext) -> Outcome:
        path = ctx.resolve(task.params["file"], key="file", write=True)
        rel = ctx.relative(path)
        if not ctx.files.is_file(path):
            raise HandlerError(f"{rel}: file not found" if not ctx.files.exists(path)
                               else f"{rel}: not a file")
        try:
            old = ctx.files.read_text(path)
        except UnicodeDecodeError:
            raise HandlerError(f"{rel}: not a UTF-8 text file") from None
        fmt = file_format(task)
        new = old if fmt == "text" else self._edit(task, rel, fmt, old)
        new = self._replace(task, rel, new)
        if new == old:
            return Outcome("up_to_date", message=f"{rel} already up to date")
        diff = unified_diff(rel, old, new)
        ctx.files.write_text(path, new)
        if ctx.dry_run:
            return Outcome("passed", message=f"would edit {rel}", changed=[rel], diff=diff)
        return Outcome("passed", message=f"edited {rel}", changed=[rel], diff=diff)

    @staticmethod
    def _edit(task: Task, rel: str, fmt: str, text: str) -> str:
        p = task.params
        try:
            doc: Any = load_ini(text) if fmt == "ini" else LOADERS[fmt](text)
        except FormatError as exc:
            raise HandlerError(f"{rel}: cannot parse as {fmt}: {exc}") from None
        changed = False
        removals = [p["remove"]] if isinstance(p.get("remove"), str) else p.get("remove") or []
        steps: list[tuple[str, Any]] = [
            *((f"set {k}", lambda k=k, v=v: doc.set(str(k), v)) for k, v in (p.get("set") or {}).items()),
            *((f"remove {k}", lambda k=k: doc.remove(k)) for k in removals),
            *((f"append {k}", lambda k=k, v=v: doc.append(str(k), list(v)))
              for k, v in (p.get("append") or {}).items()),
        ]
        for label, step in steps:
            try:
                changed = step() or changed
            except dotted_path.PathError as exc:
                message, path = str(exc), label.split(" ", 1)[1]
                first = re.escape(path.split(".")[0])
                if not re.search(rf"(^|\s){first}([.:\s]|$)", message):  # "TOML has no null value"
                    message = f"{path}: {message}"
                raise HandlerError(f"{rel}: {message}") from None
            except RecursionError:
                raise HandlerError(f"{rel}: {label}: the document is nested too deeply to edit") from None
        if not changed:
            return text
        try:
            return doc.dump()
        except (dotted_path.PathError, RecursionError) as exc:
            raise HandlerError(f"{rel}: {exc or 'the document is nested too deeply to edit'}") from None

    @staticmethod
    def _replace(task: Task, rel: str, text: str) -> str:
        for rule in task.params.get("replace") or []:
            count = int(rule.get("count", 0) or 0)
            try:
                text = re.sub(str(rule["pattern"]), str(rule["with"]), text, count=count,
                              flags=re.MULTILINE)
            except re.error as exc:  # a bad group reference in 'with'
                raise HandlerError(f"{rel}: replace {rule['pattern']!r}: {exc}") from None
        return text
