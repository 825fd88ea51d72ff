"""JUnit XML with exactly one testcase per test, earlier attempts as rerun children."""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from pytest_orch.fileio import atomic_write
from pytest_orch.outcomes import Status
from pytest_orch.results import TaskResult

# XML 1.0 forbids most control characters; a command's output may contain them.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def default_classname(nodeid: str) -> str:
    """pytest's classname for an ordinary test: the module path and class, dotted."""
    parts = nodeid.split("::")
    module = parts[0].replace("/", ".")
    if module.endswith(".py"):
        module = module[:-3]
    return ".".join([module] + parts[1:-1])


def build_xml(results: Iterable[TaskResult], suite_name: str, started: float,
              classname_of: Callable[[TaskResult], str],
              properties: Iterable[tuple[str, str]] = ()) -> ET.Element:
    results = list(results)
    suites = ET.Element("testsuites", name="pytest-orch")
    suite = ET.SubElement(suites, "testsuite", name=suite_name)
    properties = list(properties)
    if properties:  # record_testsuite_property
        holder = ET.SubElement(suite, "properties")
        for name, value in properties:
            ET.SubElement(holder, "property", name=_clean(str(name)), value=_clean(str(value)))
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=classname_of(result),
                             name=result.task_id or result.nodeid.split("::")[-1],
                             time=_seconds(result.duration))
        total_time += result.duration
        final_failed = result.status is Status.FAILED
        kind = "rerunFailure" if final_failed else "flakyFailure"
        if final_failed:
            # a failure in setup or teardown is an error, as pytest's own junitxml counts it
            tag = "error" if result.error else "failure"
            counts["errors" if result.error else "failures"] += 1
            failure = ET.SubElement(case, tag, message=_clean(result.message[:1000]), type="TaskFailed")
            failure.text = _clean(result.failure_text)
        elif result.status in (Status.SKIPPED, Status.UP_TO_DATE):
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", type="pytest.skip", message=_clean(result.message[:1000]))
        for earlier in result.earlier_failures:
            rerun = ET.SubElement(case, kind, type="TaskFailed", message=_clean(_last_line(earlier)))
            ET.SubElement(rerun, "stackTrace").text = _clean(earlier)
        out = result.output or result.stdout
        if out:
            ET.SubElement(case, "system-out").text = _clean(out)
        if result.stderr:
            ET.SubElement(case, "system-err").text = _clean(result.stderr)
    suite.set("tests", str(len(results)))
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", _seconds(total_time))
    suite.set("timestamp", datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"))
    suite.set("hostname", socket.gethostname())
    for key in ("tests", "failures", "errors"):
        suites.set(key, suite.get(key))
    suites.set("time", suite.get("time"))
    return suites


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:500] if lines else ""


def write_junit(path: Path, results: Iterable[TaskResult], suite_name: str, started: float,
                classname_of: Callable[[TaskResult], str], properties: Iterable[tuple[str, str]] = ()) -> None:
    tree = build_xml(results, suite_name, started, classname_of, properties)
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(tree, encoding="unicode") + "\n")
