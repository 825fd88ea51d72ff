"""Static checks of a task's handler keys, shared by the built-in handlers' ``validate``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_orch.errors import HandlerError, PlanError
from pytest_orch.plan.model import Task

_TYPE_NAMES = {str: "a string", bool: "true or false", dict: "a mapping", list: "a list",
               int: "an integer"}


def error(task: Task, key: str, problem: str) -> PlanError:
    """A PlanError at ``key``'s line: ``task '<id>': <problem>``."""
    return PlanError(task.loc_of(key), f"task {task.id!r}: {problem}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    return f"{type(value).__name__} {value!r}"


def expect(task: Task, key: str, types: type | tuple[type, ...], required: bool = False) -> Any:
    """Return ``task.params[key]`` after checking its type; None when absent and not required."""
    if key not in task.params:
        if required:
            raise error(task, key, f"{task.type} needs '{key}'")
        return None
    value = task.params[key]
    types = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if dict in types and isinstance(value, Mapping):
        ok = True
    if not ok:
        wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        raise error(task, key, f"'{key}' must be {wanted}, not {_kind(value)}")
    if isinstance(value, str) and required and not value.strip():
        raise error(task, key, f"'{key}' must not be empty")
    return value


def one_of(task: Task, *keys: str) -> str:
    """Check that exactly one of ``keys`` is given and return it."""
    given = [k for k in keys if k in task.params]
    if len(given) > 1:
        raise error(task, given[1], f"give either '{given[0]}' or '{given[1]}', not both")
    if not given:
        names = " or ".join(f"'{k}'" for k in keys)
        raise error(task, task.type, f"{task.type} needs {names}")
    return given[0]


def existing(ctx: Any, value: Any, key: str) -> list[Path]:
    """``[path]`` for a key's path when it resolves inside the root and exists, else ``[]``."""
    if not isinstance(value, str) or not value:
        return []
    try:
        path = ctx.resolve(value, key=key)
    except (HandlerError, OSError, ValueError):
        return []
    return [path] if path.is_file() else []
