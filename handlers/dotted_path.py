"""Dotted paths into parsed documents: ``jobs.test.steps.2.name``, ``coverageThreshold."./src/".lines``.

Segments are mapping keys, or list indexes when they are integers and the container is a list. A
segment in double or single quotes is always a key and may contain dots. The operations work on any
mapping and list types (plain JSON data, ruamel.yaml's commented ones, tomlkit's items); ``set`` and
``append`` create missing mapping keys. Each returns whether it changed the document, so a second run
of the same edit can say it changed nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, MutableSequence
from dataclasses import dataclass
from typing import Any

Convert = Callable[[Any], Any]


class PathError(Exception):
    """A dotted path that cannot be followed or edited; the message names the path."""


@dataclass(frozen=True)
class Segment:
    text: str
    quoted: bool = False

    @property
    def index(self) -> int | None:
        """The list index this segment stands for, or None when it can only be a key."""
        if self.quoted:
            return None
        body = self.text[1:] if self.text.startswith("-") else self.text
        return int(self.text) if body.isdigit() else None

    def __str__(self) -> str:
        needs_quotes = self.quoted and ("." in self.text or self.text.isdigit() or not self.text)
        return f'"{self.text}"' if needs_quotes else self.text


def parse(path: str) -> list[Segment]:
    """Split a dotted path into segments; raise PathError for an empty segment or open quote."""
    segments: list[Segment] = []
    i, n = 0, len(path)
    while True:
        if i < n and path[i] in "\"'":
            quote = path[i]
            end = path.find(quote, i + 1)
            if end < 0:
                raise PathError(f"{path}: unclosed quote")
            segments.append(Segment(path[i + 1 : end], quoted=True))
            i = end + 1
            if i < n and path[i] != ".":
                raise PathError(f"{path}: expected '.' after the quoted segment")
        else:
            end = path.find(".", i)
            end = n if end < 0 else end
            text = path[i:end]
            if not text:
                raise PathError(f"{path}: empty segment")
            segments.append(Segment(text))
            i = end
        if i >= n:
            return segments
        i += 1  # the dot
        if i >= n:
            raise PathError(f"{path}: empty segment")


def join(segments: list[Segment]) -> str:
    return ".".join(str(s) for s in segments)


def describe(value: Any) -> str:
    """Name a value's kind the way a config author would: a list, a mapping, a string ..."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, bytes):
        return "a binary value (!!binary)"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, MutableSequence):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _key(container: Mapping, seg: Segment) -> Any:
    """The key a segment names in a mapping: an existing int key for an unquoted number."""
    index = seg.index
    if index is not None and seg.text not in container and index in container:
        return index
    return seg.text


def _is_list(value: Any) -> bool:
    return isinstance(value, MutableSequence) and not isinstance(value, (str, bytes))


def _list_index(lst: MutableSequence, seg: Segment, segs: list[Segment], upto: int) -> int:
    index = seg.index
    if index is None:
        raise PathError(f"{join(segs[:upto])} is a list; {seg.text!r} is not an index")
    if not -len(lst) <= index < len(lst):
        raise PathError(
            f"{join(segs[: upto + 1])}: index {index} out of range (list has {len(lst)} items)"
        )
    return index


def _walk(doc: Any, segs: list[Segment], verb: str, missing_ok: bool) -> tuple[Any, bool]:
    """Return the container of the last segment and True, or (None, False) when a key or index on
    the way is missing and ``missing_ok``; raise PathError for a path through a scalar.
    """
    node = doc
    for pos, seg in enumerate(segs[:-1]):
        if isinstance(node, Mapping):
            key = _key(node, seg)
            if key not in node:
                if missing_ok:
                    return None, False
                raise PathError(f"{join(segs[: pos + 1])}: not found")
            node = node[key]
        elif _is_list(node):
            index = seg.index
            if index is None:
                raise PathError(f"cannot {verb} {join(segs)}: {join(segs[:pos])} is a list")
            if missing_ok and not -len(node) <= index < len(node):
                return None, False
            node = node[_list_index(node, seg, segs, pos)]
        else:
            where = join(segs[:pos]) or "the document"
            raise PathError(f"cannot {verb} {join(segs)}: {where} is {describe(node)}")
    return node, True


def _container_error(verb: str, segs: list[Segment], node: Any) -> PathError:
    where = join(segs[:-1]) or "the document"
    return PathError(f"cannot {verb} {join(segs)}: {where} is {describe(node)}")


def get(doc: Any, path: str) -> Any:
    """Return the value at ``path``; raise PathError when it is missing."""
    segs = parse(path)
    node, complete = _walk(doc, segs, "read", False)
    if not complete:
        raise PathError(f"{path}: not found")
    last = segs[-1]
    if isinstance(node, Mapping):
        key = _key(node, last)
        if key not in node:
            raise PathError(f"{path}: not found")
        return node[key]
    if _is_list(node):
        return node[_list_index(node, last, segs, len(segs) - 1)]
    raise _container_error("read", segs, node)


def set_value(doc: Any, path: str, value: Any, convert: Convert) -> bool:
    """Set ``path`` to ``value`` (converted for the document's format); return True if it changed.

    Missing mapping keys on the way are created as one nested value, so a TOML document gets a
    single ``[a.b.c]`` table rather than empty parents. A list index must exist.
    """
    segs = parse(path)
    node = doc
    for pos, seg in enumerate(segs):
        last = pos == len(segs) - 1
        if isinstance(node, MutableMapping):
            key = _key(node, seg)
            if key not in node or (not last and node[key] is None):
                nested: Any = value
                for inner in reversed(segs[pos + 1 :]):
                    nested = {inner.text: nested}
                node[key] = convert(nested)
                return True
            if last:
                return _put(node, key, value, convert)
            node = node[key]
        elif _is_list(node):
            index = _list_index(node, seg, segs, pos) if seg.index is not None else None
            if index is None:
                raise PathError(f"cannot set {join(segs)}: {join(segs[:pos])} is a list")
            if last:
                return _put(node, index, value, convert)
            node = node[index]
        else:
            where = join(segs[:pos]) or "the document"
            raise PathError(f"cannot set {join(segs)}: {where} is {describe(node)}")
    return False  # pragma: no cover - the loop always returns


def remove(doc: Any, path: str) -> bool:
    """Remove the key or list item at ``path``; return False when it is already absent."""
    segs = parse(path)
    node, complete = _walk(doc, segs, "remove", True)
    if not complete:
        return False
    last = segs[-1]
    if isinstance(node, MutableMapping):
        key = _key(node, last)
        if key not in node:
            return False
        del node[key]
        return True
    if _is_list(node):
        index = last.index
        if index is None:
            raise _container_error("remove", segs, node)
        if not -len(node) <= index < len(node):
            return False
        del node[index]
        return True
    raise _container_error("remove", segs, node)


def _put(container: Any, key: Any, value: Any, convert: Convert) -> bool:
    """Set one existing entry of a mapping or list; False when it already holds the value."""
    if _same(container[key], value):
        return False
    container[key] = convert(value)
    return True


def append(doc: Any, path: str, items: list[Any], convert: Convert) -> bool:
    """Append the ``items`` not yet in the list at ``path``, creating it when missing."""
    segs = parse(path)
    node = doc
    # the walk to the list's parent creates missing mappings; the list itself is created below
    for pos, seg in enumerate(segs):
        if isinstance(node, MutableMapping):
            key = _key(node, seg)
            if key not in node or node[key] is None:
                nested: Any = list(items)
                for inner in reversed(segs[pos + 1 :]):
                    nested = {inner.text: nested}
                node[key] = convert(nested)
                return True
            node = node[key]
        elif _is_list(node):
            if seg.index is None:
                raise PathError(f"cannot append to {join(segs)}: {join(segs[:pos])} is a list")
            node = node[_list_index(node, seg, segs, pos)]
        else:
            where = join(segs[:pos]) or "the document"
            raise PathError(f"cannot append to {join(segs)}: {where} is {describe(node)}")
    if not _is_list(node):
        raise PathError(f"cannot append to {join(segs)}: it is {describe(node)}, not a list")
    changed = False
    for item in items:
        if not any(_same(existing, item) for existing in node):
            node.append(convert(item))
            changed = True
    return changed


def _same(current: Any, wanted: Any) -> bool:
    """Compare a document value with a plan value, ignoring the format's wrapper types."""
    if isinstance(current, Mapping) and isinstance(wanted, Mapping):
        return len(current) == len(wanted) and all(
            k in current and _same(current[k], v) for k, v in wanted.items()
        )
    if _is_list(current) and isinstance(wanted, (list, tuple)):
        return len(current) == len(wanted) and all(_same(a, b) for a, b in zip(current, wanted, strict=False))
    if isinstance(current, (Mapping, list)) or isinstance(wanted, (Mapping, list, tuple)):
        return False
    # 1 == True == 1.0 in Python, but not in a config file
    return _kind(current) == _kind(wanted) and current == wanted


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool) or type(value).__name__ in ("Bool", "ScalarBoolean"):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__
