"""Handler type name -> handler instance, merged from entry points and the hook."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import pytest

from pytest_orch.handler import Handler

ENTRY_POINT_GROUP = "pytest_orch.handlers"
REQUIRED = ("keys", "version", "writes_files", "validate", "inputs", "run")


def entry_point_handler_types() -> dict[str, type]:
    """Load every handler class declared in the ``pytest_orch.handlers`` entry-point group."""
    found: dict[str, type] = {}
    origin: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"{ep.dist.name if ep.dist else 'an installed package'} ({ep.value})"
        if ep.name in origin and origin[ep.name] != where:
            raise pytest.UsageError(
                f"handler type {ep.name!r} is provided twice: by {origin[ep.name]} and by {where}")
        origin[ep.name] = where
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin must not look like a bug of ours
            raise pytest.UsageError(
                f"handler type {ep.name!r}: cannot load entry point {ep.value!r}: {exc}"
            ) from None
    return found


def collect_handlers(pluginmanager: Any) -> dict[str, Handler]:
    """Call every ``pytest_orch_handler_types`` implementation and merge the results.

    A name claimed by two implementations is a usage error naming both sources, and so is a
    class that lacks part of the Handler interface.
    """
    sources: dict[str, str] = {}
    handlers: dict[str, Handler] = {}
    for impl in pluginmanager.hook.pytest_orch_handler_types.get_hookimpls():
        result = impl.function() or {}
        # our own implementation is the entry-point group; name it as a user would look for it
        source = f"the {ENTRY_POINT_GROUP} entry points" if impl.plugin_name == "orch" else impl.plugin_name
        for name, cls in result.items():
            if name in sources:
                raise pytest.UsageError(
                    f"handler type {name!r} is provided twice: by {sources[name]} and by {source}"
                )
            missing = [attr for attr in REQUIRED if not hasattr(cls, attr)]
            if missing:
                raise pytest.UsageError(
                    f"handler type {name!r} from {source} lacks {', '.join(missing)} (see pytest_orch.handler.Handler)"
                )
            sources[name] = source
            handlers[name] = cls() if isinstance(cls, type) else cls
    return handlers
