"""reports/index.html: written with the other reports, escaped, small, and checked in a real browser."""

import json
import re
import struct

import browser
import pytest
from browser import dump_dom

browser_page = browser.browser_page  # the fixture, by its name in this module

HOSTILE = "<script>window.__pwned=1</script> \\\"quoted\\\" 'single' \\x07bell"
PLAN = {
    "phases/p1": f"""
        phase: 1
        name: Build
        groups:
          - id: a
            name: Files
            tasks:
              - id: "1.1"
                name: Write the config
                type: file_generation
                target: out/config.txt
                content: "line one\\nline </script><script>window.__pwned2=1</script> two\\n"
                tags: [files]
              - id: "1.2"
                name: "{HOSTILE}"
                type: command
                shell: true
                run: >-
                  sleep 0.4; printf 'out \\001 <b>bold</b>\\n';
                  echo '<img src=x onerror=window.__pwned3=1>' >&2; exit 0
                depends_on: ["1.1"]
                tags: [ci]
              - id: "1.3"
                name: Flaky then failing
                type: command
                shell: true
                retries: 1
                critical: false
                run: "echo trying; exit 4"
        """,
    "phases/p2": """
        phase: 2
        name: Release
        groups:
          - id: r
            tasks:
              - {id: "2.1", name: Sign off, type: manual, instructions: "Ask the release manager"}
              - {id: "2.2", type: command, run: "true", depends_on: ["2.1"], tags: [ci]}
        """,
}
TASK_IDS = ["1.1", "1.2", "1.3", "2.1", "2.2"]


@pytest.fixture
def report(pytester):
    pytester.makefile(".yaml", **PLAN)
    pytester.runpytest("-k", "1.3")  # an earlier run, for the history
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, skipped=2)
    return pytester.path / "reports" / "index.html"


def test_index_html_is_written_with_the_other_reports_and_is_self_contained(report):
    html = report.read_text()
    assert "<script src" not in html and "<link" not in html and "http://" not in html.replace(
        "http://www.w3.org/2000/svg", "")
    data = json.loads(re.search(r'<script type="application/json" id="orch-data">(.*?)</script>', html, re.S)[1])
    assert [t["id"] for t in data["tasks"]] == TASK_IDS  # plan order
    run = data["run"]
    # a non-critical failure and an unconfirmed manual step: the run is blocked, not failed
    assert (run["outcome"], run["cause"], run["cause_tasks"]) == ("blocked", "manual step", ["2.1"])
    assert run["hints"] == ["pytest --confirm 2.1"]
    assert run["counts"] == {"passed": 2, "failed": 1, "skipped": 2}
    assert run["command"].startswith("pytest -p no:cacheprovider")
    assert [h["number"] for h in data["history"]] == [2, 1]
    assert data["history"][0]["outcome"] == "blocked" and data["history"][1]["outcome"] == "passed"
    history = {t["id"]: [(n, o) for n, o, _ in t["history"]] for t in data["tasks"]}
    assert history["1.3"] == [(2, "failed"), (1, "failed")]  # the first run selected 1.3 alone
    assert history["1.1"] == [(2, "passed"), (1, None)]
    assert data["critical_path"] == ["1.1", "1.2"]
    flaky = next(t for t in data["tasks"] if t["id"] == "1.3")
    assert flaky["attempts"] == 2 and len(flaky["spans"]) == 2 and len(flaky["messages"]) == 2


def test_hostile_names_messages_and_diffs_are_escaped(report):
    html = report.read_text()
    # nothing a task wrote can open or close an element: every < in the data is \u003c
    assert "<script>window.__pwned" not in html and "</script><script>" not in html
    assert "<img src=x" not in html
    assert html.count("<script") == 2 and html.count("</script>") == 2
    assert "\x07" not in html.split('id="orch-data">')[1]  # control characters are JSON escapes


def test_the_browser_runs_the_page_and_shows_every_task_the_counts_and_the_critical_path(report):
    dom = dump_dom(report)
    assert 'data-ready="1"' in dom  # the page's script ran to its end
    rows = re.findall(r'<tr data-task="([^"]+)"', dom)
    assert rows == TASK_IDS
    assert re.search(r'data-outcome="passed" data-count="2"', dom)
    assert re.search(r'data-outcome="failed" data-count="1"', dom)
    assert re.search(r'data-outcome="skipped" data-count="2"', dom)
    # 1.2 sleeps: the chain 1.1 -> 1.2 is the run's longest
    assert re.search(r'id="critical-path"[^>]*>critical path: 1\.1 → 1\.2<', dom)
    for task_id in TASK_IDS:  # in the timeline and the graph too
        assert f'class="node" data-task="{task_id}"' in dom


def test_a_click_on_a_task_shows_its_diff_and_nothing_injected_runs(report, browser_page, tmp_path):
    page = browser_page
    page.goto(report.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")
    assert page.errors == []
    page.click("#task-table tr[data-task='1.1']")
    detail = page.locator("#detail-body")
    assert detail.get_attribute("data-task") == "1.1"
    added = page.locator("#detail-body pre.diff span.add").all_text_contents()
    assert "+line </script><script>window.__pwned2=1</script> two\n" in added  # shown as text, highlighted
    page.click("#detail-close")
    page.click("#task-table tr[data-task='1.2']")
    heading = page.locator("#detail-body h3").text_content()
    assert heading.startswith("1.2 <script>window.__pwned=1</script>")
    assert "<img src=x onerror=window.__pwned3=1>" in page.locator("#detail-body").text_content()
    assert page.evaluate("[window.__pwned, window.__pwned2, window.__pwned3]") == [None, None, None]
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    # the filters: only the failed task is left
    page.select_option("#filter-outcome", "failed")
    visible = page.eval_on_selector_all("#task-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.task)")
    assert visible == ["1.3"]
    page.select_option("#filter-outcome", "")
    page.select_option("#filter-tag", "ci")
    visible = page.eval_on_selector_all("#task-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.task)")
    assert visible == ["1.2", "2.2"]
    # a click on a bar of the timeline opens that task too
    page.click("#detail-close")
    page.click("#timeline-svg rect.bar[data-task='2.2']", force=True)
    assert page.locator("#detail-body").get_attribute("data-task") == "2.2"
    # folding a group leaves its box with counts instead of its tasks
    page.click("#collapse-all")
    assert page.locator("#graph-svg g.node").count() == 0
    page.click("#expand-all")
    assert page.locator("#graph-svg g.node").count() == len(TASK_IDS)
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    png = shot.read_bytes()
    width, height = struct.unpack(">II", png[16:24])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and width >= 1400 and height >= 1000 and len(png) > 20_000


@pytest.mark.parametrize("args", [["--collect-only"], ["--orch-status"], ["--orch-graph", "json"]])
def test_no_report_page_when_nothing_runs(pytester, args):
    pytester.makefile(".yaml", **PLAN)
    pytester.runpytest(*args)
    assert not (pytester.path / "reports" / "index.html").exists()


def test_under_xdist_the_timeline_has_a_lane_per_worker(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "sleep 0.5"}
              - {id: "1.2", type: command, run: "sleep 0.5"}
              - {id: "1.3", type: command, run: "true", depends_on: ["1.1", "1.2"]}
        """})
    pytester.runpytest_subprocess("-n", "2", "--orch-parallel=always").assert_outcomes(passed=3)
    dom = dump_dom(pytester.path / "reports" / "index.html")
    workers = {t["worker"] for t in json.loads((pytester.path / "reports" / "run.json").read_text())["tasks"]}
    timeline = re.search(r'<svg[^>]*id="timeline-svg".*?</svg>', dom, re.S)[0]
    lanes = re.findall(r'<text [^>]*class="lane"[^>]*>([^<]+)</text>', timeline)
    # a task the controller ran while the workers started has a lane of its own
    assert sorted(lanes) == sorted(workers) and all(lane.startswith("gw") or lane == "controller" for lane in lanes)
    bars = re.findall(r'class="bar[^"]*" data-task="([^"]+)"', timeline)
    assert sorted(bars) == ["1.1", "1.2", "1.3"]
