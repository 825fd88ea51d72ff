"""Reading the plan files' ``providers:`` and ``secrets:`` keys into Provider objects, with file:line errors."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from pytest_orch.errors import Location, PlanError
from pytest_orch.plan.load import MarkedDict
from pytest_orch.plan.providers import HTTP_KEYS, PRICE_KEYS, PROVIDER_KEYS, RATE_KEYS, Provider
from pytest_orch.plan.suggest import suggest
from pytest_orch.plan.variables import plain, substitute_all


class ProviderParser:
    """Reads the ``providers:`` and ``secrets:`` of each plan file; names stay unique across files."""

    def __init__(self, errors: list[PlanError]) -> None:
        self.errors = errors
        self.providers: dict[str, Provider] = {}
        self.secrets: list[str] = []

    def error(self, loc: Location, message: str) -> None:
        self.errors.append(PlanError(loc, message))

    def read_file(self, data: MarkedDict, variables: Mapping[str, str]) -> None:
        """Read one plan file's top-level keys (``${VAR}`` resolved with the file's vars)."""
        if "secrets" in data:
            value = data["secrets"]
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                self.error(data.loc_of("secrets"), "secrets must be a list of environment variable names")
            else:
                self.secrets += [v for v in value if v not in self.secrets]
        if "providers" not in data:
            return
        raw = data["providers"]
        if not isinstance(raw, MarkedDict):
            self.error(data.loc_of("providers"), "providers must be a mapping of name: settings")
            return
        try:
            raw = substitute_all(raw, variables, raw.loc)
        except PlanError as err:
            self.errors.append(err)
            return
        for name, body in raw.items():
            loc = raw.loc_of(name)
            if name in self.providers:
                self.error(loc, f"provider {name!r} is defined twice (first at {self.providers[name].loc})")
                continue
            if not isinstance(body, MarkedDict):
                self.error(loc, f"provider {name!r} must be a mapping")
                continue
            provider = self._provider(str(name), body, loc)
            if provider is not None:
                self.providers[provider.name] = provider

    def _provider(self, name: str, data: MarkedDict, loc: Location) -> Provider | None:
        what = f"provider {name!r}"
        before = len(self.errors)
        for key in data:
            if key not in PROVIDER_KEYS:
                self.error(data.loc_of(key), f"unknown key {key!r} in {what}{suggest(key, PROVIDER_KEYS)}")
        if ("command" in data) == ("http" in data):
            which = "both" if "command" in data else "neither"
            self.error(loc, f"{what} needs either 'command' or 'http', not {which}")
            return None
        fields: dict[str, Any] = {"name": name, "loc": loc}
        if "command" in data:
            command = data["command"]
            if isinstance(command, str):
                command = shlex.split(command)
            if not isinstance(command, list) or not command or \
                    not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in command):
                self.error(data.loc_of("command"), f"{what}: command must be a non-empty list of strings")
            else:
                fields["command"] = tuple(str(a) for a in command)
                stdin = data.get("stdin", False)
                if not isinstance(stdin, bool):
                    self.error(data.loc_of("stdin"), f"{what}: stdin must be true or false")
                elif not stdin and not any("{prompt}" in a for a in fields["command"]):
                    self.error(data.loc_of("command"),
                               f"{what}: the command needs a '{{prompt}}' argument, or 'stdin: true'")
                fields["stdin"] = bool(stdin)
        else:
            self._http(data, what, fields)
        if isinstance(data.get("model"), str):
            fields["model"] = data["model"]
        self._limits(data, what, fields)
        for key in ("quota_patterns", "daily_quota_patterns"):
            if key in data:
                patterns = self._patterns(data, key, what)
                if patterns is not None:
                    fields[key] = patterns
        for key, minimum in (("timeout", 0.0), ("max_backoff_wait", 0.0), ("backoff_base", 0.0)):
            if key in data:
                value = self._number(data, key, what, minimum, allow_zero=key == "max_backoff_wait")
                if value is not None:
                    fields[key] = float(value)
        if "price_per_1k_tokens" in data:
            self._price(data, what, fields)
        if len(self.errors) > before:
            return None
        return Provider(**fields)

    def _http(self, data: MarkedDict, what: str, fields: dict[str, Any]) -> None:
        http = data["http"]
        if not isinstance(http, MarkedDict):
            self.error(data.loc_of("http"), f"{what}: http must be a mapping with url and model")
            return
        for key in http:
            if key not in HTTP_KEYS:
                self.error(http.loc_of(key), f"unknown key {key!r} in {what} http{suggest(key, HTTP_KEYS)}")
        url = http.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
            self.error(http.loc_of("url"), f"{what}: http.url must be an http:// or https:// URL, not {url!r}")
        else:
            fields["url"] = url
        model = http.get("model")
        if not isinstance(model, str) or not model:
            self.error(http.loc_of("model"), f"{what}: http.model must name the model")
        else:
            fields["model"] = model
        key_env = http.get("api_key_env")
        if key_env is not None:
            if not isinstance(key_env, str) or not re.fullmatch(r"[A-Za-z_]\w*", key_env):
                self.error(http.loc_of("api_key_env"),
                           f"{what}: api_key_env must be the name of an environment variable, not {key_env!r}")
            else:
                fields["api_key_env"] = key_env
        headers = http.get("headers")
        if headers is not None:
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                self.error(http.loc_of("headers"), f"{what}: http.headers must map names to strings")
            else:
                fields["headers"] = {str(k): v for k, v in headers.items()}
        if "connect_timeout" in http:
            value = self._number(http, "connect_timeout", what, 0.0)
            if value is not None:
                fields["connect_timeout"] = float(value)
        fields["options"] = {k: plain(http[k]) for k in ("temperature", "max_tokens") if k in http}

    def _limits(self, data: MarkedDict, what: str, fields: dict[str, Any]) -> None:
        if "rate_limit" in data:
            rate = data["rate_limit"]
            if not isinstance(rate, MarkedDict) or not rate:
                self.error(data.loc_of("rate_limit"),
                           f"{what}: rate_limit must be a mapping of per_second, per_minute, per_day")
            else:
                for key in rate:
                    if key not in RATE_KEYS:
                        self.error(rate.loc_of(key), f"unknown key {key!r} in {what} rate_limit"
                                   f"{suggest(key, RATE_KEYS)}")
                    else:
                        fields[key] = self._positive_int(rate, key, f"{what}: rate_limit")
        if "concurrency" in data:
            fields["concurrency"] = self._positive_int(data, "concurrency", what)

    def _positive_int(self, data: MarkedDict, key: str, what: str) -> int | None:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.error(data.loc_of(key), f"{what}: {key} must be a whole number >= 1, not {value!r}")
            return None
        return value

    def _number(self, data: MarkedDict, key: str, what: str, minimum: float,
                allow_zero: bool = False) -> float | None:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum \
                or (value == 0 and not allow_zero):
            self.error(data.loc_of(key), f"{what}: {key} must be a number > 0, not {value!r}")
            return None
        return float(value)

    def _patterns(self, data: MarkedDict, key: str, what: str) -> tuple[str, ...] | None:
        value = data[key]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            self.error(data.loc_of(key), f"{what}: {key} must be a list of regular expressions")
            return None
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                self.error(data.loc_of(key), f"{what}: {key}: {pattern!r} is not a valid regular expression: {exc}")
                return None
        return tuple(value)

    def _price(self, data: MarkedDict, what: str, fields: dict[str, Any]) -> None:
        price = data["price_per_1k_tokens"]
        if isinstance(price, (int, float)) and not isinstance(price, bool) and price >= 0:
            fields["price_input"] = fields["price_output"] = float(price)
            return
        if isinstance(price, dict) and set(price) <= PRICE_KEYS and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in price.values()):
            fields["price_input"] = float(price.get("input", 0.0))
            fields["price_output"] = float(price.get("output", 0.0))
            return
        self.error(data.loc_of("price_per_1k_tokens"),
                   f"{what}: price_per_1k_tokens must be a number or {{input: N, output: N}}, not {price!r}")
