"""The plan's ``providers:`` and ``secrets:`` keys, and the checks of prompt tasks against them.

Pure: no pytest, no network, no YAML (workers unpickle Provider objects; the YAML side is
pytest_orch/plan/provider_parser.py). A provider is a command-line tool or an OpenAI-compatible HTTP
endpoint that prompt tasks send their prompts to, with the limits every process of a run shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_orch.errors import Location, PlanError
from pytest_orch.plan.suggest import suggest

PROVIDER_KEYS = frozenset({
    "command", "stdin", "http", "rate_limit", "concurrency", "quota_patterns", "daily_quota_patterns",
    "timeout", "max_backoff_wait", "backoff_base", "price_per_1k_tokens", "model",
})
HTTP_KEYS = frozenset({"url", "model", "api_key_env", "headers", "connect_timeout", "temperature", "max_tokens"})
RATE_KEYS = ("per_second", "per_minute", "per_day")
PRICE_KEYS = frozenset({"input", "output"})
# An answer that matches one of these says the day's quota is gone, not only "slow down".
DEFAULT_DAILY_PATTERNS = ("(?i)daily (quota|limit)", "(?i)per[ _-]?day", "(?i)quota .*exhausted for the day")
DEFAULT_TIMEOUT = 300.0  # seconds to wait for one answer
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_BACKOFF_WAIT = 600.0  # seconds of 429 back-off one task may spend in all


@dataclass(frozen=True)
class Provider:
    """One provider of the plan, validated. Exactly one of ``command`` and ``url`` is set."""

    name: str
    loc: Location
    command: tuple[str, ...] = ()
    stdin: bool = False
    url: str = ""
    model: str = ""
    api_key_env: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    per_second: int | None = None
    per_minute: int | None = None
    per_day: int | None = None
    concurrency: int | None = None
    quota_patterns: tuple[str, ...] = ()
    daily_quota_patterns: tuple[str, ...] = DEFAULT_DAILY_PATTERNS
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_backoff_wait: float = DEFAULT_MAX_BACKOFF_WAIT
    backoff_base: float = 1.0
    """Seconds: the first back-off is drawn from [0, base], then [0, 2 base], [0, 4 base] ..."""
    price_input: float | None = None
    price_output: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    """Extra request fields of an HTTP provider (temperature, max_tokens)."""

    @property
    def kind(self) -> str:
        return "http" if self.url else "command"

    @property
    def model_name(self) -> str:
        """The model to show in reports: the ``model`` key, else the command's program."""
        return self.model or (self.command[0] if self.command else "")

    def settings(self) -> dict[str, Any]:
        """What decides the answer, for task fingerprints: never the key's value, nor the limits."""
        return {"kind": self.kind, "command": list(self.command), "stdin": self.stdin, "url": self.url,
                "model": self.model, "options": dict(self.options)}

    def limits_text(self) -> str:
        parts = [f"{v}/{k[4:]}" for k in RATE_KEYS if (v := getattr(self, k)) is not None]
        if self.concurrency is not None:
            parts.append(f"concurrency {self.concurrency}")
        return ", ".join(parts) or "no limits"


def check_prompt_tasks(tasks: list[Any], providers: Mapping[str, Provider], root: Path,
                       errors: list[PlanError]) -> None:
    """Cross-checks the handler cannot make alone: the provider exists, the schema file exists.

    Also adds the provider's settings and the phase's variables to each prompt task's definition,
    so its fingerprint changes when the model, the command or a template variable does.
    """
    for task, phase_vars in tasks:
        if task.type != "prompt":
            continue
        name = task.params.get("provider")
        if isinstance(name, str) and name not in providers:
            known = ", ".join(sorted(providers)) or "none defined"
            errors.append(PlanError(task.loc_of("provider"), f"task {task.id!r}: unknown provider {name!r} "
                                    f"(providers: {known}){suggest(name, providers)}"))
        expect = task.params.get("expect")
        schema = expect.get("schema") if isinstance(expect, dict) else None
        if isinstance(schema, str) and not (root / schema).is_file():
            errors.append(PlanError(task.loc_of("expect"),
                                    f"task {task.id!r}: expect.schema {schema!r}: no such file"))
        if isinstance(name, str) and name in providers:
            # the definition is the task's own dict, built for this purpose; the Task stays frozen
            task.definition["provider_settings"] = providers[name].settings()  # type: ignore[index]
            task.definition["plan_vars"] = dict(phase_vars)  # type: ignore[index]
