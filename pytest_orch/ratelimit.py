"""Rate limits such as "50/minute": parsing and a token bucket."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

_UNITS = {"second": 1.0, "sec": 1.0, "s": 1.0, "minute": 60.0, "min": 60.0, "m": 60.0,
          "hour": 3600.0, "h": 3600.0, "day": 86400.0, "d": 86400.0}
# a rate outside these bounds is a typo ("5/0s") or would overflow the bucket's arithmetic
MIN_RATE = 1 / 86400.0  # one a day
MAX_RATE = 10_000.0  # per second
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]+)\s*$")


def parse_rate(text: str) -> tuple[float, float]:
    """Return (tokens, per seconds) for "50/minute", "5/s", "100/2h"; ValueError otherwise."""
    match = _RATE.match(text.lower())
    if not match or match.group(3) not in _UNITS or float(match.group(1)) <= 0:
        raise ValueError(f"rate {text!r} is not like '50/minute' (units: second, minute, hour, day)")
    amount = float(match.group(2)) if match.group(2) else 1.0
    tokens, period = float(match.group(1)), amount * _UNITS[match.group(3)]
    if period <= 0 or not MIN_RATE <= tokens / period <= MAX_RATE:
        raise ValueError(f"rate {text!r} is out of range: between 1/day and 10000/second")
    return tokens, period


@dataclass
class TokenBucket:
    """Allows ``tokens`` starts per ``period`` seconds, with bursts up to ``tokens``."""

    tokens: float
    period: float
    clock: callable = time.monotonic
    _level: float = field(init=False)
    _stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self._level = self.tokens
        self._stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self._level = min(self.tokens, self._level + (now - self._stamp) * self.tokens / self.period)
        self._stamp = now

    def try_take(self) -> bool:
        """Take one token if there is one."""
        self._refill()
        if self._level >= 1.0:
            self._level -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until the next token is available (0 when one is)."""
        self._refill()
        return max(0.0, (1.0 - self._level) * self.period / self.tokens)


def buckets_for(rate_limits: Mapping[str, str]) -> dict[str, TokenBucket]:
    """A bucket per rate-limited pool of a validated plan (``rate_limits: {llm: 50/minute}``)."""
    return {pool: TokenBucket(*parse_rate(text)) for pool, text in rate_limits.items()}
