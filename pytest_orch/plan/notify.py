"""The ``notify`` key (top level of a plan file, or the ``orch_notify`` ini option): who hears when a run ends.

```yaml
notify:
  - when: [failure, blocked]           # success, failure, blocked, always
    command: [scripts/page-oncall.sh]  # a program inside the project; gets ORCH_RUN_JSON and ORCH_OUTCOME
  - when: [always]
    webhook: {url_env: SLACK_WEBHOOK_URL}   # the URL is read from the environment, never written down
```

Validated like the rest of the plan: an unknown ``when``, a missing environment variable or a command
outside the project is an error naming the file and line.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_orch.errors import Location
from pytest_orch.plan import checks
from pytest_orch.plan.suggest import suggest

WHEN = ("success", "failure", "blocked", "always")
NOTIFIER_KEYS = frozenset({"when", "command", "webhook", "timeout", "retries", "retry_delay"})
WEBHOOK_KEYS = frozenset({"url_env"})
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Notifier:
    """One way to tell someone a run ended: a project script, or a webhook whose URL is in the environment."""

    when: frozenset[str]
    command: tuple[str, ...] = ()
    url_env: str | None = None
    timeout: float = 10.0
    retries: int = 2
    retry_delay: float = 1.0
    loc: Location | None = None

    @property
    def label(self) -> str:
        """How reports name it: never the URL, which is a secret."""
        return f"webhook ${self.url_env}" if self.url_env else f"command {shlex.join(self.command)}"

    def wants(self, outcome: str) -> bool:
        return "always" in self.when or outcome in self.when


def _loc(data: Any, key: str, fallback: Location) -> Location:
    loc_of = getattr(data, "loc_of", None)
    return loc_of(key) if loc_of is not None else fallback


def parse_notify(raw: Any, loc: Location, root: Path, error: Callable[[Location, str], None],
                 environ: Mapping[str, str] | None = None) -> list[Notifier]:
    """Check a ``notify`` value; report each problem through ``error`` and return the good notifiers."""
    environ = os.environ if environ is None else environ
    if not isinstance(raw, list):
        error(loc, "notify must be a list of notifiers (each with 'when' and a 'command' or a 'webhook')")
        return []
    item_locs = getattr(raw, "item_locs", [loc] * len(raw))
    out = []
    for item, item_loc in zip(raw, item_locs, strict=False):
        notifier = _notifier(item, item_loc, root, error, environ)
        if notifier is not None:
            out.append(notifier)
    return out


def _notifier(data: Any, loc: Location, root: Path, error: Callable[[Location, str], None],
              environ: Mapping[str, str]) -> Notifier | None:
    if not isinstance(data, dict):
        error(loc, f"a notifier must be a mapping, not {type(data).__name__}")
        return None
    problems = 0

    def bad(key: str, message: str) -> None:
        nonlocal problems
        problems += 1
        error(_loc(data, key, loc), message)

    for key in data:
        if key not in NOTIFIER_KEYS:
            bad(key, f"unknown key {key!r} in a notifier{suggest(key, NOTIFIER_KEYS)}")
    when = data.get("when", ["always"])
    when = [when] if isinstance(when, str) else when
    if not isinstance(when, list) or not when or not all(isinstance(w, str) for w in when):
        bad("when", f"notify: when must be a list of {', '.join(WHEN)}")
        when = []
    for value in when:
        if value not in WHEN:
            bad("when", f"notify: unknown when {value!r} (known: {', '.join(WHEN)}){suggest(value, WHEN)}")
    if ("command" in data) == ("webhook" in data):
        bad("when", "a notifier needs exactly one of 'command' and 'webhook'")
    command: tuple[str, ...] = ()
    if "command" in data:
        command = _command(data["command"], _loc(data, "command", loc), root, bad)
    url_env = None
    if "webhook" in data:
        url_env = _webhook(data["webhook"], bad, environ)
    # the same kind of ranges as a task's (checks.py): a notifier waits minutes at most, not forever
    timeout = _number(data, "timeout", 10.0, bad, minimum=0.1, maximum=3600)
    retries = int(_number(data, "retries", 2, bad, minimum=0, maximum=checks.MAX_RETRIES, whole=True))
    retry_delay = _number(data, "retry_delay", 1.0, bad, minimum=0, maximum=3600)
    if problems:
        return None
    return Notifier(frozenset(when), command, url_env, timeout, retries, retry_delay, loc)


def _command(value: Any, loc: Location, root: Path, bad: Callable[[str, str], None]) -> tuple[str, ...]:
    if isinstance(value, str):
        argv = shlex.split(value)
    elif isinstance(value, list) and all(isinstance(a, str | int | float) for a in value):
        argv = [str(a) for a in value]
    else:
        bad("command", "notify: command must be a string or a list of strings")
        return ()
    if not argv:
        bad("command", "notify: command is empty")
        return ()
    program = argv[0]
    base = os.path.normpath(root.absolute())
    full = os.path.normpath(os.path.join(base, program))
    if "/" not in program:
        bad("command", f"notify: command {program!r} is outside the project: name a script in the project "
                       f"by its path (e.g. scripts/{program}.sh)")
    elif full != base and not full.startswith(base + os.sep):
        bad("command", f"notify: command {program!r} is outside the project root")
    return tuple(argv)


def _webhook(value: Any, bad: Callable[[str, str], None], environ: Mapping[str, str]) -> str | None:
    if not isinstance(value, dict):
        bad("webhook", "notify: webhook must be a mapping with url_env (the environment variable holding the URL)")
        return None
    for key in value:
        if key not in WEBHOOK_KEYS:
            bad("webhook", f"notify: unknown key {key!r} in webhook{suggest(key, WEBHOOK_KEYS)} "
                           "(the URL itself is never written in a plan: put it in an environment variable)")
    name = value.get("url_env")
    if not isinstance(name, str) or not ENV_NAME.match(name):
        bad("webhook", "notify: webhook needs url_env, the name of the environment variable holding the URL")
        return None
    url = environ.get(name, "")
    if not url:
        bad("webhook", f"notify: environment variable {name} (webhook url_env) is not set")
    elif not url.startswith(("http://", "https://")):
        bad("webhook", f"notify: environment variable {name} does not hold an http(s) URL")
    return name


def _number(data: dict, key: str, default: float, bad: Callable[[str, str], None], *, minimum: float,
            maximum: float, whole: bool = False) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum or \
            (whole and not isinstance(value, int)):
        kind = "a whole number" if whole else "a number"
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:20]}..."
        bad(key, f"notify: {key} must be {kind} from {minimum:g} to {maximum:g}, not {shown}")
        return default
    return float(value)
