"""Small file helpers shared by handlers, the core and the state store: atomic writes and diffs."""

from __future__ import annotations

import difflib
import functools
import os
import tempfile
from pathlib import Path


def read_text(path: Path) -> str:
    """Return a file's text exactly as stored: UTF-8, line endings untouched."""
    return path.read_bytes().decode("utf-8")


def atomic_write(path: Path, text: str | bytes, *, fsync: bool = True) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half of it.

    The data goes to a temporary file in the same folder, is fsynced, and replaces the target with
    os.replace. An existing file keeps its permission bits; a new one gets the usual 0o666 & ~umask.
    Missing parent folders are created. ``fsync=False`` leaves the flush to the caller (one
    ``os.sync()`` after many files costs far less than two fsyncs each).
    """
    path = Path(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        _fsync_dir(path.parent)


def unified_diff(relpath: str, old: str | None, new: str | None) -> str:
    """Return a unified diff of one file with ``a/`` and ``b/`` headers; None means absent.

    An empty string means no change. A missing final newline is marked the way git marks it.
    """
    if old == new:
        return ""
    a = f"a/{relpath}" if old is not None else "/dev/null"
    b = f"b/{relpath}" if new is not None else "/dev/null"
    lines = difflib.unified_diff(
        _lines(old or ""), _lines(new or ""), fromfile=a, tofile=b, lineterm="\n"
    )
    return "".join(lines)


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


@functools.cache
def _umask() -> int:
    # os.umask can only be read by setting it; put it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # make the rename itself durable; not every platform lets a folder be opened
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
