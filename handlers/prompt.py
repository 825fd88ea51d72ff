"""The ``prompt`` handler: render a prompt, ask a provider under the run's shared limits, check and keep the answer.

A 429 (or a command's quota error) is waited out with exponential back-off and full jitter, honouring
``Retry-After``, without using the task's own ``retries``; the wait also pauses every other task of
the provider. An answer that fails ``expect`` fails the attempt, so ``retries`` apply.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_orch.handlers import params, providers, templating
from pytest_orch.handlers.file_generation import read_existing, search_path

from pytest_orch.fileio import read_text, unified_diff
from pytest_orch.handler import Outcome, TaskContext
from pytest_orch.plan.model import Task
from pytest_orch.plan.providers import Provider

if TYPE_CHECKING:  # the ledger (sqlite3) is imported when a prompt is asked, not at a worker's start
    from pytest_orch.call_limits import CallLedger

FORMATS = ("markdown", "json", "text")
EXPECT_KEYS = frozenset({"format", "schema", "contains"})
BACKOFF_CAP = 60.0


class PromptHandler:
    """Ask ``provider`` the rendered ``template`` or ``prompt`` and write the answer to ``target``."""

    keys: ClassVar[frozenset[str]] = frozenset({"provider", "template", "prompt", "target", "expect", "vars"})
    path_keys: ClassVar[frozenset[str]] = frozenset({"target"})
    write_keys: ClassVar[frozenset[str]] = frozenset({"target"})
    version: ClassVar[str] = "1"
    contained: ClassVar[bool] = True  # a subprocess or an HTTP call: it may run in the xdist controller
    writes_files: ClassVar[bool] = True
    knows_changes: ClassVar[bool] = True

    def validate(self, task: Task) -> None:
        params.expect(task, "provider", str, required=True)
        source = params.one_of(task, "template", "prompt")
        params.expect(task, source, str, required=True)
        if source == "prompt":
            problem = templating.check_syntax(task.params["prompt"])
            if problem:
                raise params.error(task, "prompt", f"prompt: template syntax error at {problem}")
        params.expect(task, "target", str, required=True)
        for name in params.expect(task, "vars", dict) or {}:
            if not isinstance(name, str) or not name.isidentifier():
                raise params.error(task, "vars", f"vars: {name!r} is not a valid variable name")
        expect = params.expect(task, "expect", dict) or {}
        for key in expect:
            if key not in EXPECT_KEYS:
                raise params.error(task, "expect", f"expect: unknown key {key!r} (known: format, schema, contains)")
        fmt = expect.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise params.error(task, "expect", f"expect.format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if "schema" in expect:
            if not isinstance(expect["schema"], str) or not expect["schema"]:
                raise params.error(task, "expect", "expect.schema must be the path of a JSON schema file")
            if fmt not in (None, "json"):
                raise params.error(task, "expect", "expect.schema needs format: json")
        if "contains" in expect and not isinstance(expect["contains"], str):
            raise params.error(task, "expect", "expect.contains must be a string")

    # -- what the fingerprint reads ----------------------------------------------------------------
    def inputs(self, task: Task, ctx: TaskContext) -> list[Path]:
        """The template and the JSON schema (the ``inputs`` globs are the core's, and the definition
        holds the provider's settings and the plan's variables)."""
        found: list[Path] = []
        if isinstance(task.params.get("template"), str):
            path = templating.find_template(templating.environment(self._folders(task, ctx)),
                                            task.params["template"])
            found += params.existing(ctx, str(path), "template") if path else []
        schema = (task.params.get("expect") or {}).get("schema")
        found += params.existing(ctx, schema, "expect")
        return found

    def writes(self, task: Task, ctx: TaskContext) -> list[Path]:
        return [ctx.resolve(task.params["target"], key="target", write=True)]

    # -- capabilities the core asks for ------------------------------------------------------------
    def not_ready(self, task: Task, ctx: TaskContext) -> str | None:
        """Why the task cannot start now: its provider's daily quota is spent (or promised)."""
        provider = ctx.providers.get(task.params.get("provider", ""))
        if provider is None or ctx.dry_run or (provider.per_day is None and not _ledger_exists(ctx)):
            return None
        from pytest_orch.call_limits import Limits

        ledger = ledger_for(ctx.root)
        # running tasks of the provider that have not called yet will each take one of today's calls
        running = [t.id for t in ctx.in_flight if t.type == "prompt" and t.params.get("provider") == provider.name]
        pending = len(running) - len(ledger.tasks_called_today(provider.name, running))
        return ledger.day_block(Limits.of(provider), pending=pending)

    def preflight(self, tasks: list[Task], ctx: TaskContext) -> list[str]:
        """Before a real run: every API key the selected tasks need is in the environment."""
        problems = []
        used = {t.params.get("provider") for t in tasks if t.type == "prompt"}
        for name in sorted(n for n in used if isinstance(n, str)):
            provider = ctx.providers.get(name)
            if provider is not None and provider.api_key_env and not providers.api_key(provider):
                problems.append(f"provider {name!r}: the environment variable {provider.api_key_env} "
                                f"(its api_key_env) is not set")
        return problems

    # -- running ------------------------------------------------------------------------------------
    def run(self, task: Task, ctx: TaskContext) -> Outcome:
        provider: Provider = ctx.providers[task.params["provider"]]
        path = ctx.resolve(task.params["target"], key="target", write=True)
        rel = ctx.relative(path)
        prompt = self.render(task, ctx)
        shown = f"provider {provider.name} ({provider.kind}, {provider.model_name}; {provider.limits_text()})"
        if ctx.dry_run:
            return Outcome("passed", message=f"would ask {shown} and write {rel}", changed=[rel],
                           output=f"--- prompt for {shown} ---\n{prompt}")
        ctx.log(f"asking {shown}, {len(prompt)} characters")
        asked = Asking(provider, task, ctx)
        answer = asked.ask(prompt)
        if answer is None:
            return Outcome("failed", message=asked.problem, calls=asked.calls, output=asked.output())
        text, problem = check_answer(answer.text, task.params.get("expect") or {}, ctx)
        if problem:
            return Outcome("failed", message=f"the answer of {provider.name} {problem}", calls=asked.calls,
                           output=asked.output() + f"\n--- answer ---\n{answer.text[:2000]}")
        old = read_existing(ctx, path, rel)
        if old == text:
            return Outcome("passed", message=f"{rel} already holds the answer", calls=asked.calls,
                           output=asked.output())
        ctx.files.write_text(path, text)
        return Outcome("passed", message=f"wrote {provider.name}'s answer to {rel}", changed=[rel],
                       diff=unified_diff(rel, old, text), calls=asked.calls, output=asked.output())

    def render(self, task: Task, ctx: TaskContext) -> str:
        """The prompt: plan vars, the task's ``vars``, and ``inputs`` (path -> text of each input file)."""
        env = templating.environment(self._folders(task, ctx))
        variables: dict[str, Any] = {**ctx.variables, "inputs": _input_texts(task, ctx),
                                     **(task.params.get("vars") or {})}
        if "prompt" in task.params:
            return templating.render(env, variables, source=task.params["prompt"], root=ctx.root)
        found = templating.find_template(env, task.params["template"])
        if found is not None:
            ctx.resolve(found, key="template")  # a symlink out of the project is refused
        return templating.render(env, variables, name=task.params["template"], root=ctx.root)

    @staticmethod
    def _folders(task: Task, ctx: TaskContext) -> list[Path]:
        # the plan's templates/ first (as file_generation), then the project root
        return search_path(task, ctx, packaged=False) + [ctx.root]


class Asking:
    """One task's requests for one answer: reserve, send, back off on 429s, record every call."""

    def __init__(self, provider: Provider, task: Task, ctx: TaskContext) -> None:
        self.provider = provider
        self.task = task
        self.ctx = ctx
        self.calls: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self.problem = ""

    def output(self) -> str:
        return "\n".join(self.lines)

    def ask(self, prompt: str) -> providers.Answer | None:
        """Return the provider's answer, or None with ``problem`` set."""
        from pytest_orch.call_limits import Limits, QuotaReached

        provider = self.provider
        limits = Limits.of(provider)
        ledger = ledger_for(self.ctx.root)
        waited = 0.0
        throttles = 0
        started = time.monotonic()
        providers.prepare(provider)
        while True:
            try:
                slot = ledger.acquire(limits, self.task.id)
            except QuotaReached as exc:
                self.problem = str(exc)
                return None
            began = time.time()
            spent = time.monotonic() - started
            remaining = None if self.ctx.timeout is None else max(1.0, self.ctx.timeout - spent)
            try:
                answer = providers.call(provider, prompt, cwd=self.ctx.root, api_key=providers.api_key(provider),
                                        timeout=remaining)
            except BaseException:  # a timeout's signal, an interrupt: the slot is free again at once
                ledger.release(slot, "interrupted")
                raise
            answered = time.time()
            latency = answered - began
            ledger.release(slot, _status_text(answer), ended=answered)
            self._record(answer, began, latency, throttles, waited)
            if answer.log:
                self.lines.append(answer.log.rstrip())
            if answer.day_quota_gone:
                ledger.exhaust(provider.name, answer.error)
                self.problem = (f"{provider.name} says its daily quota is spent: {answer.error}; no more "
                                f"calls go to it until 00:00 UTC")
                return None
            if not answer.throttled:
                if answer.error:
                    self.problem = answer.error
                    return None
                return answer
            throttles += 1
            wait = answer.retry_after if answer.retry_after is not None else \
                random.uniform(0.0, min(BACKOFF_CAP, provider.backoff_base * 2 ** (throttles - 1)))
            if waited + wait > provider.max_backoff_wait:
                self.problem = (f"gave up after {throttles} quota answers from {provider.name} and "
                                f"{waited:.1f} s of back-off (max_backoff_wait {provider.max_backoff_wait:g} s): "
                                f"{answer.error}")
                return None
            self.lines.append(f"{answer.error}: waiting {wait:.2f} s (every task of {provider.name} waits)")
            ledger.pause(provider.name, wait)
            time.sleep(wait)
            waited += wait

    def _record(self, answer: providers.Answer, began: float, latency: float, throttles: int,
                waited: float) -> None:
        from pytest_orch.reports.run_json import iso

        p = self.provider
        record: dict[str, Any] = {
            "provider": p.name, "model": p.model_name, "attempt": self.ctx.attempt, "call": len(self.calls) + 1,
            "start": iso(began), "latency": round(latency, 4),
            "http_status" if p.url else "exit_code": answer.status if p.url else answer.exit_code,
            "throttled": answer.throttled, "waited_429s": throttles, "waited_seconds": round(waited, 3),
            "tokens_in": answer.tokens_in, "tokens_out": answer.tokens_out,
        }
        if p.price_input is not None and (answer.tokens_in is not None or answer.tokens_out is not None):
            record["cost"] = round(((answer.tokens_in or 0) * p.price_input
                                    + (answer.tokens_out or 0) * (p.price_output or 0.0)) / 1000.0, 6)
        self.calls.append(record)


_ledgers: dict[Path, CallLedger] = {}


def ledger_for(root: Path) -> CallLedger:
    """This process's connection to the project's call ledger, opened once."""
    from pytest_orch.call_limits import CallLedger

    key = Path(root).resolve()
    if key not in _ledgers:
        _ledgers[key] = CallLedger(key)
    return _ledgers[key]


def check_answer(text: str, expect: dict[str, Any], ctx: TaskContext) -> tuple[str, str]:
    """Return (the text to write, the problem or ""). JSON is written without a Markdown fence."""
    if not text.strip():
        return text, "is empty"
    if "contains" in expect and expect["contains"] not in text:
        return text, f"does not contain {expect['contains']!r}"
    if expect.get("format") != "json" and "schema" not in expect:
        return text, ""
    body = _unfenced(text)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return text, f"is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
    if "schema" in expect:
        import jsonschema

        schema_path = ctx.resolve(expect["schema"], key="expect")
        try:
            schema = json.loads(read_text(schema_path))
        except (OSError, ValueError) as exc:
            return text, f"cannot be checked: {expect['schema']}: {exc}"
        validator_class = jsonschema.validators.validator_for(schema)
        error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(data))
        if error is not None:
            where = "/" + "/".join(str(p) for p in error.absolute_path)
            return text, f"does not match {expect['schema']} at {where}: {error.message}"
    return body if body.endswith("\n") else body + "\n", ""


def _unfenced(text: str) -> str:
    """The JSON inside a ```json ... ``` fence, as models often answer; else the text."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        lines = stripped.splitlines()
        return "\n".join(lines[1:-1]).strip()
    return stripped


def _input_texts(task: Task, ctx: TaskContext) -> dict[str, str]:
    texts: dict[str, str] = {}
    root = ctx.real_root
    for pattern in task.inputs:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                rel = ctx.relative(ctx.resolve(path, key="inputs"))
                try:
                    texts[rel] = ctx.files.read_text(path)
                except UnicodeDecodeError:
                    texts[rel] = "(not UTF-8 text)"
    return texts


def _status_text(answer: providers.Answer) -> str:
    if answer.status is not None:
        return str(answer.status)
    return f"exit {answer.exit_code}" if answer.exit_code is not None else "error"


def _ledger_exists(ctx: TaskContext) -> bool:
    from pytest_orch.call_limits import LEDGER_NAME, STATE_DIR

    return (ctx.root / STATE_DIR / LEDGER_NAME).exists()
