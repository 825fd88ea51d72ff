"""Remote workers: launch to the first task on a remote worker, with remote gateways started together or
one after another (ORCH_REMOTE_START=serial). A script, not a test; needs root (SSH test hosts are
network namespaces, tests/ssh_hosts.py) and openssh-server. Prints a Markdown table.

    python benchmarks/bench_remote.py                  # 2 hosts x 2 workers, 40 tasks of 0.1 s, 3 runs each
    python benchmarks/bench_remote.py --workers 1 --runs 5
    python benchmarks/bench_remote.py --latency 25        # 25 ms each way through a relay (ssh ProxyCommand)

The test hosts share this machine's cores, so their pythons start on the same CPU as the controller's
workers; on real hosts that work is remote. ``--latency`` puts a network delay between ssh and each
host (a small relay run as ssh's ProxyCommand; no kernel netem needed), which is what making the
connections together overlaps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ssh_hosts import SshHosts, why_not_available  # noqa: E402


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=b@example.com", "-c", "user.name=b", *args], cwd=cwd, check=True,
                   capture_output=True)


RELAY = r"""
import os, socket, sys, threading, time
delay = float(sys.argv[3])
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])))


def pump(read, write, done):
    while True:
        data = read()
        if not data:
            break
        time.sleep(delay)  # each chunk arrives `delay` later, each way
        write(data)
    done()


threading.Thread(target=pump, args=(lambda: os.read(0, 65536), conn.sendall,
                                    lambda: conn.shutdown(socket.SHUT_WR)), daemon=True).start()
pump(lambda: conn.recv(65536), lambda data: os.write(1, data), lambda: None)
"""


def add_latency(hosts: SshHosts, folder: Path, milliseconds: float) -> None:
    """Route ssh to the test hosts through a relay that delays every chunk, each way."""
    relay = folder / "relay.py"
    relay.write_text(RELAY)
    config = hosts.ssh_config.read_text()
    hosts.ssh_config.write_text(config + f"  ProxyCommand {sys.executable} {relay} %h %p {milliseconds / 1000}\n")


def make_project(root: Path, tasks: int, duration: float) -> None:
    (root / "phases").mkdir(parents=True)
    lines = ["phase: 1", "groups:", "  - id: g", "    tasks:"]
    lines += [f'      - {{id: "t{i}", type: command, run: "sleep {duration}"}}' for i in range(tasks)]
    (root / "phases" / "p1.yaml").write_text("\n".join(lines) + "\n")
    (root / ".gitignore").write_text("reports/\n.orch/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "plan")


def run_once(project: Path, tx: list[str], mode: str) -> dict[str, float]:
    env = dict(os.environ, ORCH_REMOTE_START=mode)
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--force", "-q"]
    for spec in tx:
        args += ["--tx", spec]
    launch = time.time()
    proc = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    wall = time.time() - launch
    if proc.returncode != 0:
        raise SystemExit(f"pytest failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    tasks = json.loads((project / "reports" / "run.json").read_text())["tasks"]
    remote = {f"gw{i}" for i in range(len(tx))}  # the --tx specs come first; the local worker is added last
    starts = [ts(t["started"]) for t in tasks]
    remote_starts = [ts(t["started"]) for t in tasks if t["worker"] in remote]
    ends = [ts(t["finished"]) for t in tasks]
    firsts: dict[str, float] = {}
    for t in tasks:
        if t["worker"] in remote:
            firsts[t["worker"]] = min(firsts.get(t["worker"], float("inf")), ts(t["started"]))
    # every remote worker has started a task (nan when one never got any)
    all_remote = max(firsts.values()) - launch if len(firsts) == len(remote) else float("nan")
    return {"wall": wall, "first": min(starts) - launch, "tail": launch + wall - max(ends),
            "first_remote": min(remote_starts) - launch if remote_starts else float("nan"),
            "all_remote": all_remote,
            "remote_share": len(remote_starts) / len(tasks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="workers per host (default 2)")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--duration", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.0, help="one-way delay to the hosts, ms (default 0)")
    opts = parser.parse_args()
    why = why_not_available()
    if why is not None:
        raise SystemExit(why)
    with tempfile.TemporaryDirectory(prefix="orch-bench-remote-") as tmp:
        folder = Path(tmp)
        hosts = SshHosts(folder / "hosts")
        try:
            project = folder / "project"
            make_project(project, opts.tasks, opts.duration)
            tx = []
            for name in ("h1", "h2"):
                hosts.add(name)
                clone = folder / f"clone-{name}"
                git(folder, "clone", "-q", str(project), str(clone))
                tx.append(hosts.tx(name, sys.executable, clone, opts.workers))
            if opts.latency:
                add_latency(hosts, folder, opts.latency)
            rows = []
            for mode in ("parallel", "serial"):
                runs = [run_once(project, tx, mode) for _ in range(opts.runs)]
                rows.append((mode, runs))
        finally:
            hosts.close()
    delay = f", {opts.latency:g} ms each way to the hosts" if opts.latency else ""
    print(f"2 hosts x {opts.workers} workers + 1 local{delay}, {opts.tasks} tasks of {opts.duration} s, "
          f"median of {opts.runs} runs (each run's value in brackets)\n")
    print("| remote start | launch->first task s | launch->first task on a remote worker s "
          "| launch->every remote worker busy s | wall s | last task end->exit s | tasks on remote workers |")
    print("|---|---|---|---|---|---|---|")
    for mode, runs in rows:
        def cell(key: str, runs: list[dict[str, float]] = runs) -> str:
            values = [r[key] for r in runs]
            return f"{statistics.median(values):.2f} [{', '.join(f'{v:.2f}' for v in values)}]"
        share = statistics.median(r["remote_share"] for r in runs)
        cells = [cell(key) for key in ("first", "first_remote", "all_remote", "wall", "tail")]
        print(f"| {mode} | {' | '.join(cells)} | {share:.0%} |")


if __name__ == "__main__":
    main()
