"""--orch-graph mermaid|dot|json: the selected graph on stdout, checked by Graphviz and by Mermaid in chromium."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import browser
import pytest

browser_page = browser.browser_page  # the fixture, by its name in this module

MERMAID_JS = Path(os.environ.get("ORCH_MERMAID_JS") or
                  Path(__file__).parent.parent / ".cache" / "mermaid" / "package" / "dist" / "mermaid.min.js")
PLAN = {
    "phases/p1": """
        phase: 1
        name: Base "quoted" <b>name</b>
        groups:
          - id: a
            name: Setup
            execution: sequential
            tasks:
              - {id: "1.1", name: First step, type: command, run: "true", tags: [fast]}
              - {id: "1.2", type: command, run: "true"}
          - id: b
            depends_on: [a]
            tasks:
              - {id: "1.3", type: command, run: "true", depends_on: ["1.1"], tags: [fast]}
        checkpoints:
          - {id: "1.check", type: command, run: "true"}
        """,
    "phases/p2": """
        phase: 2
        name: Next
        depends_on: [1]
        groups:
          - id: c
            tasks:
              - {id: "2.1", type: command, run: "exit 3", depends_on: ["1.3"]}
              - {id: "2.2", type: manual, instructions: "check by hand"}
        """,
}
ALL = ["1.1", "1.2", "1.3", "1.check", "2.1", "2.2"]


def graph_of(pytester, fmt, *args):
    result = pytester.runpytest("--orch-graph", fmt, *args)
    assert result.ret == 0, result.stderr.str()
    return "\n".join(result.outlines) + "\n"


@pytest.fixture
def plan(pytester):
    pytester.makefile(".yaml", **PLAN)
    return pytester


def test_json_has_phases_groups_tasks_edges_and_the_critical_path_and_runs_nothing(plan):
    data = json.loads(graph_of(plan, "json"))
    assert [t["id"] for t in data["tasks"]] == ALL
    assert [p["id"] for p in data["phases"]] == ["1", "2"]
    assert [g["id"] for g in data["phases"][0]["groups"]] == ["a", "b", "checkpoints"]
    edges = {(e["kind"], e["level"], e["from"], e["to"]) for e in data["edges"]}
    assert ("requires", "task", "1.1", "1.3") in edges
    assert ("after", "task", "1.1", "1.2") in edges  # sequential group: ordering only
    assert ("requires", "group", "1.a", "1.b") in edges
    assert ("requires", "phase", "1", "2") in edges
    assert ("after", "group", "1.b", "1.checkpoints") in edges
    assert data["critical_path"][0] == "1.1" and data["critical_path"][-1].startswith("2.")
    assert all(t["last_outcome"] is None for t in data["tasks"])
    assert not (plan.path / ".orch").exists() and not (plan.path / "reports").exists()


def test_phase_group_k_and_m_select_the_graph(plan):
    assert [t["id"] for t in json.loads(graph_of(plan, "json", "--phase", "2"))["tasks"]] == ["2.1", "2.2"]
    assert [t["id"] for t in json.loads(graph_of(plan, "json", "--group", "1.b"))["tasks"]] == ["1.3"]
    assert [t["id"] for t in json.loads(graph_of(plan, "json", "-m", "fast"))["tasks"]] == ["1.1", "1.3"]
    assert [t["id"] for t in json.loads(graph_of(plan, "json", "-k", "2.1"))["tasks"]] == ["2.1"]


def test_after_a_run_nodes_carry_their_last_outcome(plan):
    plan.runpytest()
    data = json.loads(graph_of(plan, "json"))
    last = {t["id"]: t["last_outcome"] for t in data["tasks"]}
    assert last == {"1.1": "passed", "1.2": "passed", "1.3": "passed", "1.check": "passed",
                    "2.1": "failed", "2.2": "skipped"}
    dot = graph_of(plan, "dot")
    assert '"2.1" [label="2.1", fillcolor="#d1453b", fontcolor="white"' in dot


def test_dot_output_is_accepted_by_graphviz(plan, tmp_path):
    binary = shutil.which("dot")
    if binary is None:
        browser.missing("graphviz's dot not found; install it with: apt-get install -y graphviz")
    source = graph_of(plan, "dot")
    assert source.startswith("digraph plan {")
    done = subprocess.run([binary, "-Tsvg"], input=source, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings either (a bad lhead/ltail is a warning)
    for task_id in ALL:
        assert f"<title>{task_id}</title>" in done.stdout
    assert "phase 1: Base &quot;quoted&quot; &lt;b&gt;name&lt;/b&gt;" in done.stdout


def test_mermaid_output_renders_in_the_browser_with_mermaids_own_script(plan, browser_page):
    if not MERMAID_JS.exists():
        browser.missing(f"mermaid's script not found at {MERMAID_JS}; .ci/run installs it "
                        "(npm pack mermaid@11.17.2 into .cache/mermaid)")
    source = graph_of(plan, "mermaid")
    page = browser_page
    page.set_content("<html><body><div id='out'></div></body></html>")
    page.add_script_tag(path=str(MERMAID_JS))
    svg = page.evaluate("""async (text) => {
        mermaid.initialize({startOnLoad: false, securityLevel: "strict"});
        const {svg} = await mermaid.render("plan", text);
        document.getElementById("out").innerHTML = svg;
        return svg;
    }""", source)
    assert "Syntax error" not in svg
    labels = page.eval_on_selector_all("#out .node", "nodes => nodes.map(n => n.textContent.trim())")
    assert sorted(label.split(" ")[0] for label in labels) == sorted(ALL)
    assert page.locator("#out .node.critical").count() >= 2
    clusters = page.eval_on_selector_all("#out .cluster", "cs => cs.map(c => c.textContent.trim())")
    assert 'phase 1: Base "quoted" <b>name</b>' in clusters
    assert page.errors == []


def test_a_bad_plan_is_one_line_and_no_graph(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "true", depends_on: ["9.9"]}
        """})
    result = pytester.runpytest("--orch-graph", "dot")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*phases/p1.yaml:5: task '1.1' depends on unknown task '9.9'*"])
    assert "digraph" not in result.stdout.str() and "Traceback" not in result.stderr.str()


def test_an_unknown_format_is_a_usage_error(plan):
    result = plan.runpytest("--orch-graph", "png")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--orch-graph: invalid choice: 'png'*"])
