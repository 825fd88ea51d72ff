"""Size of reports/index.html (and the other reports) for a real 1000-task run.

A script, not a test: it runs pytest on a fresh temporary project whose plan has 1000 tasks in 5
phases of 4 groups; half of them are commands that print 8 KB (cut to their last 4 KB, or less), the
other half generate a 25 KB file (a 25 KB diff, cut to 20 KB, or less), so every task is at the
limits and the page's overall budget decides. Prints the sizes, and with --browser the rows chromium
found in the rendered page.

    python benchmarks/bench_report_size.py [--browser] [--keep]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES, GROUPS, PER_GROUP = 5, 4, 50


def write_plan(root: Path) -> None:
    lines = ["phases:"]
    for p in range(1, PHASES + 1):
        lines += [f"  - phase: {p}", f"    name: Phase {p}"] + ([f"    depends_on: [{p - 1}]"] if p > 1 else [])
        lines.append("    groups:")
        for g in range(GROUPS):
            lines += [f"      - id: g{g}", "        tasks:"]
            for t in range(PER_GROUP):
                task_id = f"{p}.{g}.{t}"
                if t % 2:
                    lines.append(f'          - {{id: "{task_id}", type: command, shell: true, '
                                 f'run: "head -c 8000 /dev/zero | tr \'\\\\0\' x; echo"}}')
                else:
                    lines.append(f'          - {{id: "{task_id}", type: file_generation, target: "out/{task_id}.txt", '
                                 f'content: "{{% for i in range(500) %}}line {{{{ i }}}} of {task_id} padding..'
                                 f'..................{{% endfor %}}"}}')
    (root / "phases").mkdir()
    (root / "phases" / "plan.yaml").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", action="store_true", help="also render the page in headless chromium")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="orch-report-size-"))
    try:
        write_plan(root)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "--orch-progress", "off"], cwd=root, capture_output=True, text=True)
        wall = time.perf_counter() - started
        print(done.stdout.strip().splitlines()[-1])
        reports = root / "reports"
        html = (reports / "index.html").read_text()
        data = json.loads(re.search(r'id="orch-data">(.*?)</script>', html, re.S)[1])
        print(f"tasks: {len(data['tasks'])}, run wall time {wall:.1f} s")
        print(f"per-task limits after the budget: output {data['limits']['output']} chars, "
              f"diff {data['limits']['diff']} chars")
        for name in ("index.html", "run.json", "junit.xml", "timeline.svg"):
            size = (reports / name).stat().st_size
            print(f"{name:13} {size:>10,} bytes ({size / 1024 / 1024:.2f} MB)")
        if args.browser:
            chromium = shutil.which("chromium")
            with tempfile.TemporaryDirectory() as profile:
                t0 = time.perf_counter()
                dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                                      f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom",
                                      (reports / "index.html").as_uri()], capture_output=True, text=True).stdout
                print(f"chromium: {len(re.findall(r'<tr data-task=', dom))} task rows, "
                      f"ready={'data-ready' in dom}, {time.perf_counter() - t0:.1f} s to dump the DOM")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
