"""Prompt tasks against a local chat-completions server under a shared per-second limit.

    python benchmarks/bench_prompt.py [--tasks 300] [--per-second 20] [-n 4] [--runs 1]

Starts the test suite's server (tests/prompt_support.py) on 127.0.0.1, writes a plan of independent
prompt tasks in a temporary project, runs it as a whole pytest process at ``-n N`` and reads the
server's own log of arrival times. A sliding window may start with a burst of L calls, so n calls at
exactly L per second span (n - L) / L seconds from the first to the last: the achieved rate is
(n - L) / span, and the limit is met when no one-second window at the server holds more than L.
That rate includes the ramp-up (the first L calls need L tasks started on N workers); the steady
rate is L over the mean time from a call to the L-th after it (1 s at exactly the limit).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from prompt_support import ChatServer  # noqa: E402


def plan(url: str, tasks: int, per_second: int) -> str:
    lines = [
        "providers:",
        "  local:",
        f'    http: {{url: "{url}", model: bench}}',
        f"    rate_limit: {{per_second: {per_second}}}",
        "phase: 1",
        "groups:",
        "  - id: g",
        "    tasks:",
    ]
    lines += [f'      - {{id: "1.{i}", type: prompt, provider: local, prompt: "question {i}", target: out/{i}.md}}'
              for i in range(1, tasks + 1)]
    return "\n".join(lines) + "\n"


def one_run(tasks: int, per_second: int, workers: int) -> dict[str, float]:
    with ChatServer() as server, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "phases").mkdir()
        (root / "phases" / "p1.yaml").write_text(plan(server.url, tasks, per_second))
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers)],
                              cwd=root, capture_output=True, text=True)
        wall = time.monotonic() - started
        run = json.loads((root / "reports" / "run.json").read_text())
        times = sorted(server.times)
        span = times[-1] - times[0]
        gaps = [b - a for a, b in zip(times, times[per_second:], strict=False)]
        outcomes: dict[str, int] = {}
        for task in run["tasks"]:
            outcomes[task["outcome"]] = outcomes.get(task["outcome"], 0) + 1
        return {
            "exit": proc.returncode, "calls": len(times), "distinct prompts": len(set(server.prompts)),
            "wall s": round(wall, 2), "span s": round(span, 3),
            "achieved /s": round((len(times) - per_second) / span, 3),
            "achieved % of limit": round(100 * (len(times) - per_second) / span / per_second, 1),
            "max in any 1 s window": server.max_in_window(1.0),
            "min span of L+1 calls s": round(min(gaps), 4) if gaps else 0.0,
            "steady /s": round(per_second / (sum(gaps) / len(gaps)), 3) if gaps else 0.0,
            "steady % of limit": round(100 / (sum(gaps) / len(gaps)), 1) if gaps else 0.0,
            "outcomes": outcomes,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--per-second", type=int, default=20)
    parser.add_argument("-n", dest="workers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(f"{args.tasks} prompt tasks, per_second {args.per_second}, -n {args.workers}")
    for _ in range(args.runs):
        print(json.dumps(one_run(args.tasks, args.per_second, args.workers)))


if __name__ == "__main__":
    main()
