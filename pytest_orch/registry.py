"""Handler type name -> handler instance, merged from entry points and the hook."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

from pytest_orch.handler import Handler

ENTRY_POINT_GROUP = "pytest_orch.handlers"
REQUIRED = ("keys", "version", "writes_files", "validate", "inputs", "run")


class LazyEntryPoint:
    """An entry point loaded when a plan first uses its type.

    Importing every handler (Jinja2, ruamel.yaml, tomlkit) costs about 0.1 s in each xdist worker;
    a plan of commands needs none of it.
    """

    def __init__(self, ep: EntryPoint) -> None:
        self.ep = ep

    def load(self) -> Any:
        try:
            return self.ep.load()
        except Exception as exc:  # a broken plugin must not look like a bug of ours
            raise pytest.UsageError(
                f"handler type {self.ep.name!r}: cannot load entry point {self.ep.value!r}: {exc}"
            ) from None


def entry_point_handler_types() -> dict[str, LazyEntryPoint]:
    """Every handler declared in the ``pytest_orch.handlers`` entry-point group, not yet loaded."""
    found: dict[str, LazyEntryPoint] = {}
    origin: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"{ep.dist.name if ep.dist else 'an installed package'} ({ep.value})"
        if ep.name in origin and origin[ep.name] != where:
            raise pytest.UsageError(
                f"handler type {ep.name!r} is provided twice: by {origin[ep.name]} and by {where}")
        origin[ep.name] = where
        found[ep.name] = LazyEntryPoint(ep)
    return found


class HandlerTable(Mapping[str, Handler]):
    """Type name -> handler instance; a class is checked and instantiated when first looked up."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Any, str]] = {}
        self._ready: dict[str, Handler] = {}

    def add(self, name: str, cls: Any, source: str) -> None:
        if name in self._entries:
            raise pytest.UsageError(
                f"handler type {name!r} is provided twice: by {self._entries[name][1]} and by {source}")
        self._entries[name] = (cls, source)

    def __getitem__(self, name: str) -> Handler:
        if name not in self._ready:
            cls, source = self._entries[name]
            if isinstance(cls, LazyEntryPoint):
                cls = cls.load()
            missing = [attr for attr in REQUIRED if not hasattr(cls, attr)]
            if missing:
                raise pytest.UsageError(f"handler type {name!r} from {source} lacks "
                                        f"{', '.join(missing)} (see pytest_orch.handler.Handler)")
            self._ready[name] = cls() if isinstance(cls, type) else cls
        return self._ready[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def collect_handlers(pluginmanager: Any) -> HandlerTable:
    """Call every ``pytest_orch_handler_types`` implementation and merge the results.

    A name claimed by two implementations is a usage error naming both sources, and so is a
    class that lacks part of the Handler interface (found when a plan uses it).
    """
    table = HandlerTable()
    for impl in pluginmanager.hook.pytest_orch_handler_types.get_hookimpls():
        result = impl.function() or {}
        # our own implementation is the entry-point group; name it as a user would look for it
        source = f"the {ENTRY_POINT_GROUP} entry points" if impl.plugin_name == "orch" else impl.plugin_name
        for name, cls in result.items():
            table.add(name, cls, source)
    return table
