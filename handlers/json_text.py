"""Edit JSON text so that only the edited values' text changes: layout, inline arrays and order stay.

The standard library parses JSON but forgets where each value stood, and no well-kept Python library
round-trips plain JSON the way ruamel.yaml and tomlkit round-trip YAML and TOML (the round-trip JSON5
parsers accept a different language). So the text is scanned once for the span of every value (the
tokens themselves are read by the standard library's decoder), the edits are applied to the parsed
data, and ``patch`` then rewrites only the spans whose value differs: a changed scalar in place, a
removed member with its comma, new members and items after the last ones with the whitespace the
file already puts between them, and a new value serialised in the file's indentation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


@dataclass
class Node:
    """The span ``text[start:end]`` of one value; objects and arrays also know their children."""

    start: int
    end: int
    members: list[tuple[str, int, Node]] = field(default_factory=list)
    """For an object: (key, where the key's opening quote stands, the value)."""
    items: list[Node] = field(default_factory=list)


class JsonSyntaxError(ValueError):
    """Text the span scanner cannot follow (json.loads has accepted it, so this should not happen)."""


def scan(text: str) -> Node:
    """Return the span tree of the JSON document ``text`` (which json.loads has accepted)."""
    start = _WS.match(text, 0).end()  # type: ignore[union-attr]
    node, _ = _value(text, start)
    return node


def _value(text: str, pos: int) -> tuple[Node, int]:
    char = text[pos : pos + 1]
    if char == "{":
        return _object(text, pos)
    if char == "[":
        return _array(text, pos)
    try:
        _, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise JsonSyntaxError(str(exc)) from None
    return Node(pos, end), end


def _skip(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def _object(text: str, pos: int) -> tuple[Node, int]:
    node = Node(pos, pos)
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "}":
        node.end = pos + 1
        return node, node.end
    while True:
        key_start = pos
        key, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
        pos = _skip(text, pos)
        if text[pos : pos + 1] != ":":
            raise JsonSyntaxError(f"expected ':' at {pos}")
        value, pos = _value(text, _skip(text, pos + 1))
        node.members.append((key, key_start, value))
        pos = _skip(text, pos)
        if text[pos : pos + 1] == "}":
            node.end = pos + 1
            return node, node.end
        if text[pos : pos + 1] != ",":
            raise JsonSyntaxError(f"expected ',' or '}}' at {pos}")
        pos = _skip(text, pos + 1)


def _array(text: str, pos: int) -> tuple[Node, int]:
    node = Node(pos, pos)
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "]":
        node.end = pos + 1
        return node, node.end
    while True:
        item, pos = _value(text, pos)
        node.items.append(item)
        pos = _skip(text, pos)
        if text[pos : pos + 1] == "]":
            node.end = pos + 1
            return node, node.end
        if text[pos : pos + 1] != ",":
            raise JsonSyntaxError(f"expected ',' or ']' at {pos}")
        pos = _skip(text, pos + 1)


@dataclass(frozen=True)
class Style:
    """How the file writes JSON: its indent step, its separators, its newline, inline arrays or not."""

    indent: int | str | None
    key_sep: str = ": "
    item_sep: str = ", "
    newline: str = "\n"
    inline_arrays: bool = False

    @classmethod
    def of(cls, text: str, indent: int | str | None) -> Style:
        key_sep = ": " if re.search(r'"\s*:[ \t]', text) or ":" not in text else ":"
        item_sep = "," if re.search(r",[^\s]", text) and not re.search(r",[ \t]", text) else ", "
        newline = "\r\n" if "\r\n" in text else "\n"
        inline = re.search(r"\[[ \t]*[^\s\]]", text) is not None  # "[" followed by an item on its line
        return cls(indent, key_sep, item_sep, newline, inline)


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: 1, 1.0 and true differ; key order does not matter."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _line_indent(text: str, pos: int) -> str:
    """The leading whitespace of the line ``pos`` is on."""
    line_start = text.rfind("\n", 0, pos) + 1
    return _WS.match(text, line_start).group().replace("\r", "")  # type: ignore[union-attr]


def dumps(value: Any, style: Style, indent: str, inline: bool = False) -> str:
    """``value`` as JSON in the file's style, its inner lines prefixed with ``indent``."""
    if style.indent is None or inline:
        sep = (style.item_sep, style.key_sep)
        return json.dumps(value, separators=sep, ensure_ascii=False, default=str)
    if isinstance(value, list) and style.inline_arrays and _scalars(value) and len(json.dumps(value)) <= 60:
        return json.dumps(value, separators=(", ", style.key_sep), ensure_ascii=False, default=str)
    out = json.dumps(value, indent=style.indent, separators=(",", style.key_sep), ensure_ascii=False,
                     default=str)
    return out.replace("\n", style.newline + indent)


def _scalars(value: Any) -> bool:
    return isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value)


def patch(text: str, node: Node, old: Any, new: Any, style: Style) -> str:
    """Return ``text`` with the value spanned by ``node`` (which holds ``old``) changed to ``new``."""
    edits: list[tuple[int, int, str]] = []
    _diff(text, node, old, new, style, edits)
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _diff(text: str, node: Node, old: Any, new: Any, style: Style, edits: list[tuple[int, int, str]]) -> None:
    if _same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict) and len(node.members) == len(old):
        _diff_object(text, node, old, new, style, edits)
    elif isinstance(old, list) and isinstance(new, list) and len(node.items) == len(old):
        _diff_array(text, node, old, new, style, edits)
    else:
        inline = "\n" not in text[node.start : node.end] and isinstance(old, list)
        edits.append((node.start, node.end, dumps(new, style, _line_indent(text, node.start), inline)))


def _diff_object(text: str, node: Node, old: dict, new: dict, style: Style,
                 edits: list[tuple[int, int, str]]) -> None:
    members = node.members
    starts, ends = [m[1] for m in members], [m[2].end for m in members]
    kept = [i for i, (key, _, _) in enumerate(members) if key in new]
    for key, _, value in members:
        if key in new:
            _diff(text, value, old[key], new[key], style, edits)
    added = [key for key in new if key not in old]
    if not kept and not added:
        edits.append((node.start, node.end, "{}"))
        return
    if kept:  # else _append below rewrites the whole object
        edits.extend(_removals(starts, ends, kept))
    if added:
        rendered = [f"{json.dumps(key, ensure_ascii=False)}{style.key_sep}" for key in added]
        _append(text, node, starts, ends, kept, rendered, [new[key] for key in added], style, edits, "{}")


def _diff_array(text: str, node: Node, old: list, new: list, style: Style,
                edits: list[tuple[int, int, str]]) -> None:
    items = node.items
    if len(new) >= len(old) and all(_same(a, b) for a, b in zip(old, new, strict=False)):
        # the common case, append: the old items stay byte for byte
        _append(text, node, [n.start for n in items], [n.end for n in items], list(range(len(items))),
                [""] * (len(new) - len(old)), new[len(old):], style, edits, "[]")
        return
    if len(new) == len(old) - 1:
        for gone in range(len(old)):
            if all(_same(a, b) for a, b in zip(old[:gone] + old[gone + 1:], new, strict=True)):
                if not new:
                    edits.append((node.start, node.end, "[]"))
                else:
                    kept = [i for i in range(len(items)) if i != gone]
                    edits.extend(_removals([n.start for n in items], [n.end for n in items], kept))
                return
    if len(new) == len(old):
        for item, a, b in zip(items, old, new, strict=True):
            _diff(text, item, a, b, style, edits)
        return
    inline = "\n" not in text[node.start : node.end]
    edits.append((node.start, node.end, dumps(new, style, _line_indent(text, node.start), inline)))


def _removals(starts: list[int], ends: list[int], kept: list[int]) -> list[tuple[int, int, str]]:
    """The edits that remove the children not in ``kept`` (not empty), each with its comma.

    Children before the first kept one go with the whitespace up to it; any later one goes with the
    comma and whitespace that follow the child before it. The spans never overlap.
    """
    first = kept[0]
    edits = [(starts[0], starts[first], "")] if first > 0 else []
    edits += [(ends[i - 1], ends[i], "") for i in range(first + 1, len(starts)) if i not in kept]
    return edits


def _append(text: str, node: Node, starts: list[int], ends: list[int], kept: list[int], prefixes: list[str],
            values: list[Any], style: Style, edits: list[tuple[int, int, str]], empty: str) -> None:
    """Add children after the last one that stays, separated as the file separates its children."""
    if not kept:
        inner_indent = _line_indent(text, node.start) + _indent_unit(style)
        inline = style.indent is None or (empty == "[]" and "\n" not in text[node.start : node.end]
                                          and _scalars(values) and style.inline_arrays)
        if inline:
            body = style.item_sep.join(p + dumps(v, style, "", True) for p, v in zip(prefixes, values, strict=True))
            edits.append((node.start, node.end, empty[0] + body + empty[1]))
            return
        gap = style.newline + inner_indent
        body = ("," + gap).join(p + dumps(v, style, inner_indent) for p, v in zip(prefixes, values, strict=True))
        closing = style.newline + _line_indent(text, node.start)
        edits.append((node.start, node.end, empty[0] + gap + body + closing + empty[1]))
        return
    last = kept[-1]
    if len(starts) > 1:  # the file's own separation of its last two children
        gap = text[text.index(",", ends[-2]) + 1 : starts[-1]]
    else:
        gap = text[node.start + 1 : starts[0]]
        if "\n" not in gap:  # ["a"]: the whitespace after the bracket says nothing about commas
            gap = style.item_sep[1:]
    multiline = "\n" in gap
    indent = _line_indent(text, starts[last]) if multiline else ""
    outer = _line_indent(text, node.start)
    if multiline and indent.startswith(outer) and len(indent) > len(outer):
        style = replace(style, indent=indent[len(outer):])  # this block's own step: a nested value uses it
    rendered = "".join("," + gap + p + dumps(v, style, indent, inline=not multiline)
                       for p, v in zip(prefixes, values, strict=True))
    edits.append((ends[last], ends[last], rendered))


def _indent_unit(style: Style) -> str:
    if isinstance(style.indent, str):
        return style.indent
    return " " * (style.indent or 0)
