"""What a run leaves behind: JUnit XML that CI accepts, run.json, and the terminal summary."""

import json
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
import xmlschema

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent / "data" / "junit-10.xsd"))

PLAN = {"phases/p1": """
    phase: 1
    name: Baseline
    groups:
      - id: a
        tasks:
          - {id: "1.1", name: Say hello, type: command, run: "echo hello from 1.1"}
          - {id: "1.2", type: command, shell: true, retries: 2, run: "echo attempt; exit 3"}
          - id: "1.3"
            type: command
            shell: true
            retries: 2
            run: "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; test $n -ge 1"
          - {id: "1.4", type: command, run: "true", depends_on: ["1.2"]}
    checkpoints:
      - {id: "1.check", type: command, run: "true"}
    """}


@pytest.fixture
def ran(pytester):
    pytester.makefile(".yaml", **PLAN)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    return pytester, result


def cases(path):
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


def test_junit_is_valid_and_has_one_testcase_per_task_after_retries(ran):
    pytester, _ = ran
    path = pytester.path / "reports" / "junit.xml"
    SCHEMA.validate(str(path))
    by_name = cases(path)
    assert sorted(by_name) == ["1.1", "1.2", "1.3", "1.4", "1.check"]
    assert len(list(ET.parse(path).getroot().iter("testcase"))) == 5
    assert by_name["1.1"].get("classname") == "phases.1.a"
    assert by_name["1.check"].get("classname") == "phases.1.checkpoints"
    assert "hello from 1.1" in by_name["1.1"].find("system-out").text
    failed = by_name["1.2"]
    assert failed.find("failure") is not None
    assert len(failed.findall("rerunFailure")) == 2  # two earlier attempts, then the final failure
    flaky = by_name["1.3"]
    assert flaky.find("failure") is None and len(flaky.findall("flakyFailure")) == 1
    assert by_name["1.4"].find("skipped").get("message") == "dependency 1.2 failed"
    suite = ET.parse(path).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "1", "1")


def test_run_json_has_the_contract_fields(ran):
    pytester, _ = ran
    data = json.loads((pytester.path / "reports" / "run.json").read_text())
    assert data["schema"] == 1 and data["outcome"] == "failed"
    assert {"run_id", "started", "finished", "git_clean", "tasks"} <= set(data)
    tasks = {t["id"]: t for t in data["tasks"]}
    fields = {"id", "phase", "group", "name", "type", "outcome", "attempts", "duration", "started",
              "finished", "worker", "changed", "message"}
    for task in tasks.values():
        assert fields <= set(task)
    assert tasks["1.1"]["name"] == "Say hello" and tasks["1.1"]["type"] == "command"
    assert (tasks["1.1"]["phase"], tasks["1.1"]["group"]) == ("1", "a")
    assert tasks["1.2"]["attempts"] == 3 and tasks["1.2"]["outcome"] == "failed"
    assert tasks["1.3"]["attempts"] == 2 and tasks["1.3"]["outcome"] == "passed"
    assert tasks["1.4"]["outcome"] == "skipped"
    for stamp in (data["started"], data["finished"], tasks["1.1"]["started"]):
        assert stamp.endswith("Z") and datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert tasks["1.1"]["started"] <= tasks["1.1"]["finished"]


def test_terminal_summary_ends_with_one_line_per_phase(ran):
    _, result = ran
    result.stdout.fnmatch_lines(["*pytest-orch phases*",
                                 "phase 1 (Baseline): 3 passed, 1 failed, 1 skipped in *s"])


def test_orch_report_and_junitxml_move_the_reports(pytester):
    pytester.makefile(".yaml", **PLAN)
    pytester.runpytest("--orch-report", "out/orch", "--junitxml", "ci/results.xml")
    assert (pytester.path / "out" / "orch" / "run.json").exists()
    assert not (pytester.path / "reports").exists()
    path = pytester.path / "ci" / "results.xml"
    SCHEMA.validate(str(path))
    assert len(cases(path)) == 5  # our writer, not pytest's one-testcase-per-attempt one


def test_plain_tests_in_the_same_session_get_their_own_testcases(pytester):
    pytester.makefile(".yaml", **{"phases/p1": PLAN["phases/p1"].replace("exit 3", "exit 0")})
    pytester.makepyfile(test_unit="def test_one():\n    print('unit out')\n")
    pytester.runpytest()
    by_name = cases(pytester.path / "reports" / "junit.xml")
    assert by_name["test_one"].get("classname") == "test_unit"
    SCHEMA.validate(str(pytester.path / "reports" / "junit.xml"))


def test_timeline_picture_has_a_bar_per_task_with_its_outcome(ran):
    pytester, result = ran
    svg = ET.parse(pytester.path / "reports" / "timeline.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    tips = [rect.find(f"{ns}title").text for rect in svg.iter(f"{ns}rect") if rect.find(f"{ns}title") is not None]
    heads = [tip.split(":")[0] for tip in tips]
    assert sorted(set(heads)) == ["1.1 Say hello", "1.2", "1.3", "1.4", "1.check"]
    # each attempt of a retried task is its own segment of the bar
    assert heads.count("1.2") == 3 and heads.count("1.3") == 2 and heads.count("1.1 Say hello") == 1
    assert any(tip.startswith("1.2: failed (attempt 3 of 3)") for tip in tips)
    assert any(tip.startswith("1.3: failed (attempt 1 of 2)") for tip in tips)
    assert any(tip.startswith("1.3: passed (attempt 2 of 2)") for tip in tips)
    result.stdout.fnmatch_lines(["reports: *junit.xml, *run.json, *timeline.svg, *index.html"])


def test_timeline_rows_follow_the_plan_with_phase_bands_whole_labels_and_an_honest_title(pytester):
    long_name = "A task name far longer than thirty-three characters, kept whole"
    pytester.makefile(".yaml", **{
        "phases/p1": f"""
            phase: 1
            name: First
            groups:
              - id: a
                tasks:
                  - {{id: "1.2", name: "{long_name}", type: command, run: "true"}}
                  - {{id: "1.1", type: command, run: "true"}}
            """,
        "phases/p2": """
            phase: 2
            name: Second
            depends_on: [1]
            groups:
              - id: b
                tasks:
                  - {id: "2.1", type: manual, instructions: "Rotate the keys"}
                  - {id: "2.2", type: command, run: "true", depends_on: ["2.1"]}
            """})
    pytester.runpytest().assert_outcomes(passed=2, skipped=2)
    svg = ET.parse(pytester.path / "reports" / "timeline.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in svg.iter(f"{ns}text")]
    title = texts[0]
    assert "blocked: manual step 2.1 awaits confirmation" in title and "failed" not in title
    labels = [t for t in texts if t and t.split(" ")[0] in ("1.1", "1.2", "2.1", "2.2")]
    assert labels[:4] == [f"1.2 {long_name}", "1.1", "2.1", "2.2"]  # plan order, whole names
    assert "phase 1: First" in texts and "phase 2: Second" in texts
    bands = [r for r in svg.iter(f"{ns}rect") if r.get("class") == "phase"]
    assert len(bands) == 2
    # a skipped sliver's reason is written beside it, not only in its tooltip
    assert any(t and "manual step not confirmed: Rotate the keys" in t for t in texts)


SUITE_PROPERTIES = """
import pytest


def test_records(record_testsuite_property, record_property, record_xml_attribute):
    record_testsuite_property("build", "1234")
    record_property("owner", "qa")
    record_xml_attribute("flavour", "x")


@pytest.fixture
def broken():
    yield
    raise RuntimeError("teardown broke")


def test_teardown_error(broken):
    pass
"""


def test_junit_beside_junitxml_with_suite_name_properties_and_errors(pytester):
    pytester.makefile(".yaml", **PLAN)
    pytester.makepyfile(test_unit=SUITE_PROPERTIES)
    pytester.makeini("[pytest]\njunit_suite_name = roadmap\n")
    result = pytester.runpytest("--junitxml=ci/results.xml", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*record_property is incompatible with junit_family 'xunit2'*"])
    for path in (pytester.path / "reports" / "junit.xml", pytester.path / "ci" / "results.xml"):
        SCHEMA.validate(str(path))
        suite = ET.parse(path).getroot().find("testsuite")
        assert suite.get("name") == "roadmap"
        assert [(p.get("name"), p.get("value")) for p in suite.iter("property")] == [("build", "1234")]
        assert suite.get("errors") == "1"
        assert len(suite.findall("testcase/error")) == 1
    assert (pytester.path / "reports" / "junit.xml").read_bytes() == (pytester.path / "ci" / "results.xml").read_bytes()
