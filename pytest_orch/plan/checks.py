"""Value checks for plan keys: each returns the clean value or raises TypeError/ValueError."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from pytest_orch.plan.suggest import suggest

# The ranges of the plan's numbers (docs/plan-format.md lists them): wide enough for any real
# plan, narrow enough that nothing downstream (timers, sleeps, counters) overflows.
DAY = 86_400.0
WEEK = 7 * DAY
MAX_TIMEOUT = WEEK
MAX_RETRY_DELAY = DAY
MAX_BACKOFF = 10.0
MAX_RETRIES = 100
MAX_PARALLEL = 10_000  # max_parallel, pool sizes and --pool
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # line breaks and other control characters


def ident(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
        raise TypeError(f"expected an id (string or number), got {_short(value)}")
    text = str(value)
    # an id becomes part of a pytest node id, a -k expression and a terminal line
    if not text.strip():
        raise ValueError(f"an id must not be blank, got {text!r}")
    if _CONTROL.search(text):
        raise ValueError(f"an id must not contain a line break or control character, got {_short(text)}")
    if text != text.strip():
        raise ValueError(f"an id must not begin or end with a space, got {text!r}")
    return text


def id_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        value = [value]
    return tuple(ident(v) for v in value)


def str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"expected a list of strings, got {value!r}")
    return tuple(value)


def number(minimum: float, maximum: float, allow_zero: bool = True) -> Callable[[Any], float]:
    """A finite number in [minimum, maximum] (zero excluded unless ``allow_zero``)."""
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        if value < minimum or (not allow_zero and value == 0):
            low = "> 0" if not allow_zero and minimum == 0 else f">= {minimum:g}"
            raise ValueError(f"must be {low}, got {_short(value)}")
        if not math.isfinite(value) or value > maximum:
            raise ValueError(f"must be at most {maximum:g}{_unit(maximum)}, got {_short(value)}")
        return float(value)
    return check


def whole(minimum: int, maximum: int) -> Callable[[Any], int]:
    """A whole number in [minimum, maximum]."""
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected a whole number, got {_short(value)}")
        if value < minimum:
            raise ValueError(f"must be >= {minimum}, got {_short(value)}")
        if value > maximum:
            raise ValueError(f"must be at most {maximum}, got {_short(value)}")
        return value
    return check


timeout = number(0, MAX_TIMEOUT, allow_zero=False)
count = whole(0, MAX_RETRIES)
positive_int = whole(1, MAX_PARALLEL)


def _short(value: Any) -> str:
    """A value for a message: a number of 5000 digits is not worth printing."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _unit(maximum: float) -> str:
    for seconds, name in ((WEEK, " (7 days)"), (DAY, " (1 day)")):
        if maximum == seconds:
            return name
    return ""


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}{suggest(value, choices)}")
        return value
    return check


def text(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise TypeError(f"expected a string, got {value!r}")
    return str(value)


def var_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise TypeError("expected a mapping of NAME: value")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def pool_limits(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise TypeError("expected a mapping of pool name: limit")
    return {str(k): positive_int(v) for k, v in value.items()}


def rate_map(value: Any) -> dict[str, str]:
    from pytest_orch.ratelimit import parse_rate  # the scheduler's module owns the format

    if not isinstance(value, dict):
        raise TypeError("expected a mapping of pool name: rate such as '50/minute'")
    for rate in value.values():
        parse_rate(str(rate))  # its range is checked there: between 1 a day and 10 000 a second
    return {str(k): str(v) for k, v in value.items()}


def hosts(value: Any) -> tuple[str, ...]:
    """``runs_on``: ``local``, ``any``, a host name, or a list of host names (``local`` among them)."""
    names = str_list(value)
    if not names or any(not n.strip() or " " in n for n in names):
        raise ValueError(f"expected 'local', 'any', a host name or a list of host names, got {value!r}")
    if "any" in names and len(names) > 1:
        raise ValueError("'any' cannot be combined with host names")
    return names


def host_map(value: Any) -> dict[str, tuple[str, ...]]:
    """``pool_hosts``: pool name -> the hosts its tasks may run on."""
    if not isinstance(value, dict):
        raise TypeError("expected a mapping of pool name: host names")
    return {str(k): hosts(v) for k, v in value.items()}
