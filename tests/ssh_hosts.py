"""SSH test hosts as network namespaces on this machine (root only), for the remote-worker tests.

Each host is a network namespace with one veth pair to a bridge in the root namespace and its own
``sshd``, listening on the host's address in a private /24 that is picked free at random. The
filesystem is shared, so a host's "remote" python can be this venv's and its checkout a clone in a
temporary folder. Only those addresses (and loopback) are ever contacted. ``close()`` kills every
process in the namespaces and removes namespaces, links and the bridge.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def why_not_available() -> str | None:
    """Why SSH test hosts cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "SSH test hosts are network namespaces, which need root (CI runs these tests as root)"
    if not Path(SSHD).exists():
        return "openssh-server is not installed (apt-get install -y openssh-server; .ci/run installs it)"
    for tool in ("ip", "ssh", "ssh-keygen", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["ip", "netns", "add", f"orchprobe{os.getpid()}"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace here: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", f"orchprobe{os.getpid()}"], capture_output=True)
    return None


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return proc


def _free_subnet(rng: random.Random) -> str:
    """A 10.x.y.0/24 that no address or route of this machine uses yet."""
    used = _run("ip", "-4", "route", "show", "table", "all").stdout + _run("ip", "-4", "addr").stdout
    for _ in range(200):
        prefix = f"10.{rng.randint(100, 250)}.{rng.randint(1, 254)}"
        if f"{prefix}." not in used:
            return prefix
    raise RuntimeError("no free private /24 found")


@dataclass
class Host:
    name: str
    netns: str
    address: str
    veth_outside: str


@dataclass
class SshHosts:
    """Make hosts with ``add``; ``kill`` and ``cut`` take one away; ``close`` removes everything."""

    workdir: Path
    tag: str = field(default_factory=lambda: f"{os.getpid() % 10000}{random.randint(0, 999):03d}")
    hosts: dict[str, Host] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prefix = _free_subnet(random.Random())
        self.bridge = f"orchbr{self.tag}"[:15]
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.prefix}.1/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        self.key = self.workdir / "id_ed25519"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        self.ssh_config = self.workdir / "ssh_config"
        # no keep-alive settings here: pytest-orch adds its own (what the network-cut test checks)
        self.ssh_config.write_text(
            f"Host *\n  User root\n  IdentityFile {self.key}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n")
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)

    def add(self, name: str) -> Host:
        index = len(self.hosts) + 11
        netns = f"orch{self.tag}{name}"
        inside, outside = f"oi{self.tag}{index}"[:15], f"oo{self.tag}{index}"[:15]
        address = f"{self.prefix}.{index}"
        _run("ip", "netns", "add", netns)
        host = self.hosts[name] = Host(name, netns, address, outside)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", netns)
        _run("ip", "link", "set", outside, "master", self.bridge)
        _run("ip", "link", "set", outside, "up")
        _run("ip", "-n", netns, "addr", "add", f"{address}/24", "dev", inside)
        _run("ip", "-n", netns, "link", "set", inside, "up")
        _run("ip", "-n", netns, "link", "set", "lo", "up")
        self.start_sshd(name)
        return host

    def start_sshd(self, name: str) -> None:
        host = self.hosts[name]
        folder = self.workdir / name
        folder.mkdir(exist_ok=True)
        hostkey = folder / "host_key"
        if not hostkey.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey))
        authorized = folder / "authorized_keys"
        authorized.write_text(Path(f"{self.key}.pub").read_text())
        config = folder / "sshd_config"
        config.write_text(
            f"ListenAddress {host.address}\nHostKey {hostkey}\nPidFile {folder / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized}\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nMaxStartups 100\nMaxSessions 100\n"
            "AcceptEnv PYTEST_* ORCH_*\n")
        # stdio to /dev/null: the daemon would otherwise keep the caller's pipes open
        subprocess.run(["ip", "netns", "exec", host.netns, "unshare", "--uts", "sh", "-c",
                        f"hostname {name}; exec {SSHD} -f {config}"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            probe = subprocess.run(["ssh", "-F", str(self.ssh_config), "-o", "ConnectTimeout=2", host.address,
                                    "true"], capture_output=True, timeout=30)
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"sshd on {name} ({host.address}) did not answer")

    def tx(self, name: str, python: str, chdir: Path, count: int = 1) -> str:
        """The --tx spec that reaches ``name``."""
        spec = f"ssh=root@{self.hosts[name].address}//ssh_config={self.ssh_config}//python={python}//chdir={chdir}"
        return f"{count}*{spec}" if count > 1 else spec

    def pids(self, name: str) -> list[int]:
        out = _run("ip", "netns", "pids", self.hosts[name].netns, check=False).stdout
        return [int(p) for p in out.split()]

    def kill(self, name: str) -> None:
        """The host dies: its sshd and every process in it (the workers) are killed."""
        for pid in self.pids(name):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

    def cut(self, name: str) -> None:
        """The host's link goes down: its processes live on, unreachable."""
        _run("ip", "link", "set", self.hosts[name].veth_outside, "down")

    def close(self) -> None:
        for name, host in self.hosts.items():
            self.kill(name)
            _run("ip", "link", "del", host.veth_outside, check=False)
            _run("ip", "netns", "del", host.netns, check=False)
        self.hosts.clear()
        _run("ip", "link", "del", self.bridge, check=False)
