"""Load and dump JSON, YAML and TOML so that an edit changes only the edited lines.

Each ``load_*`` returns a :class:`TreeDocument`: the parsed data plus how to write it back. YAML goes
through ruamel.yaml's round-trip mode with the document's own indentation, TOML through tomlkit, and
JSON keeps its indent, key order and final newline. Parse errors raise FormatError with the line.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import tomlkit
from pytest_orch.handlers import dotted_path, json_text
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError


class FormatError(Exception):
    """A file that does not parse in its format; the message says where."""


class TreeDocument:
    """A parsed config file edited through dotted paths."""

    def __init__(self, data: Any, dump: Callable[[Any], str], convert: Callable[[Any], Any]):
        self.data = data
        self._dump = dump
        self._convert = convert

    def set(self, path: str, value: Any) -> bool:
        return dotted_path.set_value(self.data, path, value, self._convert)

    def remove(self, path: str) -> bool:
        return dotted_path.remove(self.data, path)

    def append(self, path: str, items: list[Any]) -> bool:
        return dotted_path.append(self.data, path, items, self._convert)

    def dump(self) -> str:
        return self._dump(self.data)


def plain(value: Any) -> Any:
    """Turn plan values (the loader's marked dicts and lists) into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, int) else k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# --- JSON ---------------------------------------------------------------------------------------


def load_json(text: str) -> TreeDocument:
    data = _parse_json(text)
    original = _parse_json(text)  # a second copy to compare with: the edits change ``data`` in place
    style = json_text.Style.of(text, _json_indent(text))

    def dump(obj: Any) -> str:
        try:
            return json_text.patch(text, json_text.scan(text), original, obj, style)
        except RecursionError:
            raise dotted_path.PathError("the document is nested too deeply to edit") from None

    return TreeDocument(data, dump, _to_json)


def _to_json(value: Any) -> Any:
    for item in _leaves(value):
        if isinstance(item, bytes):
            raise dotted_path.PathError("a binary value (!!binary) has no JSON form")
        if isinstance(item, float) and not math.isfinite(item):
            raise dotted_path.PathError(f"{item!r} has no JSON form")
    return plain(value)


def _leaves(value: Any) -> list[Any]:
    """Every scalar inside a plan value (mapping keys included)."""
    if isinstance(value, Mapping):
        return [*value.keys(), *(leaf for v in value.values() for leaf in _leaves(v))]
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise FormatError("nested too deeply") from None
    except ValueError as exc:  # an integer past sys.get_int_max_str_digits()
        raise _value_error(text, exc) from None


def _value_error(text: str, exc: ValueError) -> FormatError:
    """A parser's ValueError as one line; a too long integer gets its line and length."""
    limit = sys.get_int_max_str_digits()
    match = re.search(rf"\d{{{limit + 1},}}", text)
    if match is not None and "integer string conversion" in str(exc):
        line = text.count("\n", 0, match.start()) + 1
        return FormatError(f"line {line}: an integer of {len(match.group())} digits (more than {limit} "
                           "cannot be read)")
    return FormatError((str(exc).splitlines() or [type(exc).__name__])[0])


def _json_indent(text: str) -> int | str | None:
    """The indent of the first indented line after an opening bracket; None for one-line JSON."""
    lines = text.splitlines()
    for prev, line in zip(lines, lines[1:], strict=False):
        if prev.rstrip().endswith(("{", "[")) and line.strip():
            lead = line[: len(line) - len(line.lstrip())]
            prev_lead = prev[: len(prev) - len(prev.lstrip())]
            step = lead[len(prev_lead) :] if lead.startswith(prev_lead) else lead
            if not step:
                continue
            return "\t" if step.startswith("\t") else len(step)
    return None


# --- YAML ---------------------------------------------------------------------------------------

_KEY_LINE = re.compile(r"^(\s*)(?:- +)?[^\s#-][^#]*?:\s*(?:#.*)?$")


def _yaml_indent(text: str) -> tuple[int, int, int]:
    """Guess (mapping, sequence, offset) for ruamel from the way the file indents its blocks.

    ``sequence`` is where an item's content starts relative to its parent key, ``offset`` where
    the dash stands: a GitHub workflow's ``  - run: x`` under ``steps:`` is (2, 4, 2).
    """
    mappings: Counter[int] = Counter()
    sequences: Counter[tuple[int, int]] = Counter()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for prev, line in zip(lines, lines[1:], strict=False):
        match = _KEY_LINE.match(prev)
        if not match or prev.rstrip().endswith(("|", ">", "|-", ">-")):
            continue
        base = len(match.group(1))
        if prev.lstrip().startswith("-"):  # "- key:" : the key's column is after the dash
            base += len(prev.lstrip()) - len(prev.lstrip()[1:].lstrip())
        stripped = line.lstrip()
        col = len(line) - len(stripped)
        if col <= base:
            continue
        if stripped.startswith("- ") or stripped == "-":
            content = col + 1 + (len(stripped[1:]) - len(stripped[1:].lstrip()) or 1)
            sequences[(content - base, col - base)] += 1
        else:
            mappings[col - base] += 1
    mapping = mappings.most_common(1)[0][0] if mappings else 2
    if sequences:
        sequence, offset = sequences.most_common(1)[0][0]
    else:
        sequence, offset = mapping, 0
    return mapping, max(sequence, offset + 2), offset


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    return yaml


def load_yaml(text: str) -> TreeDocument:
    yaml = _yaml()
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise FormatError(f"{where}{exc.problem or exc.context}") from None
    except YAMLError as exc:
        raise FormatError(str(exc).splitlines()[0]) from None
    except RecursionError:
        raise FormatError("nested too deeply") from None
    except ValueError as exc:  # an integer past sys.get_int_max_str_digits(), a bad date
        raise _value_error(text, exc) from None
    if data is None:
        data = CommentedMap()
    mapping, sequence, offset = _yaml_indent(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    yaml.explicit_start = first.startswith("---")
    trailing = text.endswith("\n")

    def dump(obj: Any) -> str:
        buf = io.StringIO()
        yaml.dump(obj, buf)
        out = buf.getvalue()
        return out if trailing or not out.endswith("\n") else out[:-1]

    document = TreeDocument(data, dump, to_yaml)
    document.append = lambda path, items: _append_keeping_trailer(document, path, items)  # type: ignore[method-assign]
    return document


def _append_keeping_trailer(document: TreeDocument, path: str, items: list[Any]) -> bool:
    """Append to a YAML list, keeping what followed its last item (a blank line) after the new last.

    ruamel.yaml attaches the blank line or comment that ends a block sequence to its last item,
    so a plain append would leave it between the old last item and the new one.
    """
    try:
        before = dotted_path.get(document.data, path)
    except dotted_path.PathError:
        before = None
    trailer = _take_trailer(before) if isinstance(before, CommentedSeq) and len(before) else None
    changed = dotted_path.append(document.data, path, items, document._convert)
    if trailer is not None:
        _give_trailer(before, trailer)
    return changed


def _take_trailer(node: Any) -> Any:
    """Remove and return the comment token that follows the last element of ``node``."""
    if isinstance(node, CommentedSeq) and len(node):
        last = len(node) - 1
        if isinstance(node[last], (CommentedMap, CommentedSeq)):
            return _take_trailer(node[last])
        entry = node.ca.items.get(last)
        if entry and entry[0] is not None and "\n\n" in (entry[0].value or "") + "\n":
            token = entry[0]
            # keep an end-of-line comment on the old last item; move only the lines after it
            head, sep, tail = token.value.partition("\n")
            if head.strip():
                entry[0] = type(token)(head + "\n", token.start_mark, None)
                # the new item's own line ends with the first newline: the rest are the blank lines
                return type(token)("\n" + tail, token.start_mark, None) if tail else None
            node.ca.items.pop(last)
            return token
        return None
    if isinstance(node, CommentedMap) and len(node):
        key = list(node.keys())[-1]
        if isinstance(node[key], (CommentedMap, CommentedSeq)):
            return _take_trailer(node[key])
        entry = node.ca.items.get(key)
        if entry and len(entry) > 2 and entry[2] is not None:
            token = entry[2]
            head, sep, tail = token.value.partition("\n")
            if head.strip():
                entry[2] = type(token)(head + "\n", token.start_mark, None)
                return type(token)("\n" + tail, token.start_mark, None) if tail else None
            entry[2] = None
            return token
    return None


def _give_trailer(seq: CommentedSeq, token: Any) -> None:
    """Attach ``token`` after the last element of ``seq``, as ruamel.yaml itself would have."""
    last = len(seq) - 1
    node = seq[last]
    while isinstance(node, (CommentedMap, CommentedSeq)) and len(node):
        if isinstance(node, CommentedSeq):
            last_key: Any = len(node) - 1
            if not isinstance(node[last_key], (CommentedMap, CommentedSeq)):
                node.ca.items[last_key] = [token, None]
                return
        else:
            last_key = list(node.keys())[-1]
            if not isinstance(node[last_key], (CommentedMap, CommentedSeq)):
                node.ca.items[last_key] = [None, None, token, None]
                return
        node = node[last_key]
    if not isinstance(node, (CommentedMap, CommentedSeq)):
        seq.ca.items[last] = [token, None]


def to_yaml(value: Any) -> Any:
    """Plan values as ruamel's round-trip types, so new blocks come out in block style."""
    if isinstance(value, Mapping):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = to_yaml(v)
        return out
    if isinstance(value, (list, tuple)):
        return CommentedSeq(to_yaml(v) for v in value)
    return value


# --- TOML ---------------------------------------------------------------------------------------


def load_toml(text: str) -> TreeDocument:
    try:
        data = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise FormatError(f"line {exc.line}: {str(exc).split(' at line')[0]}") from None
    except RecursionError:
        raise FormatError("nested too deeply") from None
    except ValueError as exc:
        raise _value_error(text, exc) from None
    return TreeDocument(data, tomlkit.dumps, _to_toml)


def _to_toml(value: Any) -> Any:
    for item in _leaves(value):
        if item is None:
            raise dotted_path.PathError("TOML has no null value")
        if isinstance(item, bytes):
            raise dotted_path.PathError("a binary value (!!binary) has no TOML form")
    return _string_keys(plain(value))


def _string_keys(value: Any) -> Any:
    """TOML keys are strings: a plan's ``{1: x}`` becomes ``"1" = x``."""
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


LOADERS: dict[str, Callable[[str], TreeDocument]] = {
    "json": load_json,
    "yaml": load_yaml,
    "toml": load_toml,
}
