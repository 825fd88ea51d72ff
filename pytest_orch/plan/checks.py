"""Value checks for plan keys: each returns the clean value or raises TypeError/ValueError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_orch.plan.suggest import suggest


def ident(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
        raise TypeError(f"expected an id (string or number), got {value!r}")
    return str(value)


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


def number(minimum: float, allow_zero: bool = True) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        if value < minimum or (not allow_zero and value == 0):
            raise ValueError(f"must be {'> 0' if not allow_zero else f'>= {minimum:g}'}, got {value!r}")
        return float(value)
    return check


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"must be >= 0, got {value}")
    return value


def positive_int(value: Any) -> int:
    if count(value) < 1:
        raise ValueError(f"must be >= 1, got {value}")
    return value


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
        parse_rate(str(rate))
    return {str(k): str(v) for k, v in value.items()}
