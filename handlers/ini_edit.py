"""A line-based INI editor that keeps comments, blank lines, key order and the delimiter style.

configparser would lose every comment of a setup.cfg or tox.ini, so edits work on the lines
themselves. A dotted path is ``section.key`` (``"tool:pytest".addopts``, ``coverage:run.branch``);
``remove`` of a bare ``section`` drops the whole section. Values are strings; a list becomes a
multi-line value with one item per indented continuation line, the way setup.cfg writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pytest_orch.handlers.dotted_path import PathError, Segment, describe, join, parse
from pytest_orch.handlers.formats import FormatError

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*(?:[#;].*)?$")
_OPTION = re.compile(r"^(?P<key>[^\s=:#;\[][^=:]*?)(?P<delim>\s*[=:]\s*)(?P<value>.*)$")
_COMMENT = re.compile(r"^\s*[#;]")


@dataclass
class _Option:
    key: str
    start: int  # index of the "key = value" line
    end: int  # one past its last continuation line


@dataclass
class _Section:
    name: str
    header: int  # index of the [header] line, -1 for keys before any header
    end: int = 0  # one past its last non-blank line
    options: list[_Option] = field(default_factory=list)


class IniDocument:
    """An INI file as lines, edited in place."""

    def __init__(self, text: str) -> None:
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.lines = text.splitlines()
        self.trailing = text.endswith(("\n", "\r")) or not text
        self._index()

    def _index(self) -> None:
        self.sections: list[_Section] = [_Section("", -1)]
        current = self.sections[0]
        for i, line in enumerate(self.lines):
            if not line.strip() or _COMMENT.match(line):
                continue
            header = _SECTION.match(line)
            if header:
                current = _Section(header.group(1).strip(), i, i + 1)
                self.sections.append(current)
                continue
            if line[0].isspace() and current.options:
                current.options[-1].end = i + 1
            else:
                option = _OPTION.match(line)
                if not option:
                    raise FormatError(f"line {i + 1}: not a section, option or comment: {line!r}")
                current.options.append(_Option(option.group("key").strip(), i, i + 1))
            current.end = i + 1

    def _section(self, name: str) -> _Section | None:
        return next((s for s in self.sections if s.name == name and s.header >= 0), None)

    @staticmethod
    def _option(section: _Section, key: str) -> _Option | None:
        return next((o for o in section.options if o.key.lower() == key.lower()), None)

    def _split(self, path: str, verb: str) -> tuple[str, str | None]:
        segs: list[Segment] = parse(path)
        if len(segs) == 1 and verb == "remove":
            return segs[0].text, None
        if len(segs) != 2:
            raise PathError(f"cannot {verb} {join(segs)}: INI paths are section.key")
        return segs[0].text, segs[1].text

    def value(self, section: _Section, option: _Option) -> list[str]:
        """The option's value as its non-blank lines (one for a simple value)."""
        first = _OPTION.match(self.lines[option.start])
        assert first is not None
        parts = [first.group("value")] + self.lines[option.start + 1 : option.end]
        return [p.strip() for p in parts if p.strip()]

    def set(self, path: str, value: Any) -> bool:
        name, key = self._split(path, "set")
        assert key is not None
        wanted = _format(path, value)
        section = self._section(name)
        if section is None:
            block = ([""] if self.lines and self.lines[-1].strip() else []) + [f"[{name}]"]
            self.lines.extend(block + _option_lines(key, " = ", wanted))
            self._index()
            return True
        option = self._option(section, key)
        if option is None:
            self.lines[section.end : section.end] = _option_lines(key, self._delim(section), wanted)
            self._index()
            return True
        if self.value(section, option) == [w for w in wanted if w]:
            return False
        match = _OPTION.match(self.lines[option.start])
        assert match is not None
        self.lines[option.start : option.end] = _option_lines(
            match.group("key"), match.group("delim") if match.group("value") else " = ", wanted
        )
        self._index()
        return True

    def remove(self, path: str) -> bool:
        name, key = self._split(path, "remove")
        section = self._section(name)
        if section is None:
            return False
        if key is None:
            end = section.end
            while end < len(self.lines) and not self.lines[end].strip():
                end += 1
            del self.lines[section.header : end]
        else:
            option = self._option(section, key)
            if option is None:
                return False
            del self.lines[option.start : option.end]
        self._index()
        return True

    def append(self, path: str, items: list[Any]) -> bool:
        name, key = self._split(path, "append to")
        assert key is not None
        section = self._section(name)
        option = self._option(section, key) if section else None
        current = self.value(section, option) if section and option else []
        missing = [str(_scalar(path, i)) for i in items if str(_scalar(path, i)) not in current]
        if option is not None and not missing:
            return False
        return self.set(path, current + missing)

    def _delim(self, section: _Section) -> str:
        for option in section.options:
            match = _OPTION.match(self.lines[option.start])
            if match and match.group("value"):
                return match.group("delim")
        return " = "

    def dump(self) -> str:
        text = self.newline.join(self.lines)
        return text + self.newline if self.trailing and self.lines else text


def _scalar(path: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (str, int, float)):
        return str(value)
    raise PathError(f"cannot set {path}: an INI value cannot be {describe(value)}")


def _format(path: str, value: Any) -> list[str]:
    """A value as its lines: one for a scalar, an empty first line then the items for a list."""
    if isinstance(value, (list, tuple)):
        return [""] + [_scalar(path, v) for v in value]
    return [_scalar(path, value)]


def _option_lines(key: str, delim: str, lines: list[str]) -> list[str]:
    head = f"{key}{delim}{lines[0]}" if lines[0] else f"{key}{delim.rstrip()}"
    return [head] + [f"    {item}" for item in lines[1:]]


def load_ini(text: str) -> IniDocument:
    return IniDocument(text)
