"""Near-name suggestions for unknown keys, types and values."""

from __future__ import annotations

import difflib
from typing import Any


def suggest(word: str, choices: Any) -> str:
    """Return ``; did you mean 'x'?`` for a near name, else an empty string."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
