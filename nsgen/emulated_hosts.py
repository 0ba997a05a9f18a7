"""Emulated hosts on this machine: each its own network namespace and private /run, joined by an underlay switch.

A host `PREFIXhN` is a named network namespace plus a mount namespace in which a tmpfs hides the machine's
/run, so the host's `ip netns`, locks and daemons' files stay its own. A mount namespace lasts only while a
process is in it: each host has a holder (`sleep infinity` started under `unshare --mount`), and commands
enter the host with `nsenter --target HOLDER --net --mount`. The underlay is a bridge inside a namespace of
its own, `PREFIXsw`, with a veth to each host's `eth0`; addresses come from 198.51.100.0/24 (TEST-NET-2:
the machine's own eth0 may sit in TEST-NET-1) and
exist only inside these namespaces. Nothing is made in the machine's root namespace.
"""

import ipaddress
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

UNDERLAY = ipaddress.IPv4Network("198.51.100.0/24")
SWITCH = "sw"
#: The most hosts an underlay of UNDERLAY's size holds (.1 to .254).
MAX_HOSTS = UNDERLAY.num_addresses - 2


@dataclass(frozen=True)
class Host:
    """One emulated host: its network namespace, underlay address and the PID holding its mount namespace."""

    name: str
    address: ipaddress.IPv4Interface
    holder: int


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def create(prefix: str, count: int) -> list[Host]:
    """Make `count` hosts `PREFIXh1`.. on the underlay switch `PREFIXsw`; on failure, remove what was made."""
    if not 1 <= count <= MAX_HOSTS:
        raise ValueError(f"emulated hosts: {count} is not between 1 and {MAX_HOSTS}")
    hosts: list[Host] = []
    try:
        switch = prefix + SWITCH
        _ip("netns", "add", switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for index in range(1, count + 1):
            hosts.append(_host(prefix, switch, index))
    except BaseException:
        destroy(prefix)
        raise
    return hosts


def _host(prefix: str, switch: str, index: int) -> Host:
    name = f"{prefix}h{index}"
    address = ipaddress.IPv4Interface((int(UNDERLAY.network_address) + index, UNDERLAY.prefixlen))
    _ip("netns", "add", name)
    _ip("-n", switch, "link", "add", f"h{index}", "type", "veth", "peer", "name", "eth0", "netns", name)
    _ip("-n", switch, "link", "set", f"h{index}", "master", "br0", "up")
    _ip("-n", name, "link", "set", "lo", "up")
    _ip("-n", name, "addr", "add", str(address), "dev", "eth0")
    _ip("-n", name, "link", "set", "eth0", "up")
    holder = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{name}", "unshare", "--mount", "--propagation", "private",
         "sleep", "infinity"],
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # the holder outlives our process group's signals; destroy() ends it
    )
    host = Host(name, address, _until_unshared(holder))
    for command in (["mount", "-t", "tmpfs", "tmpfs", "/run"], ["mkdir", "/run/netns", "/run/sshd"]):
        subprocess.run(argv(host, command), check=True, capture_output=True, text=True)
    return host


def _until_unshared(holder: subprocess.Popen[bytes]) -> int:
    """The holder's PID once it runs in a mount namespace of its own (nsenter and unshare exec in place)."""
    mine = Path("/proc/self/ns/mnt").resolve()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            theirs = Path(f"/proc/{holder.pid}/ns/mnt").resolve()
            if theirs != mine and Path(f"/proc/{holder.pid}/cmdline").read_bytes().startswith(b"sleep\0"):
                return holder.pid
        except OSError:
            pass
        if holder.poll() is not None:
            raise RuntimeError(f"emulated hosts: the holder exited with status {holder.returncode}")
        time.sleep(0.01)
    raise RuntimeError("emulated hosts: the holder did not start in time")


def argv(host: Host, command: list[str]) -> list[str]:
    """`command` run inside `host`: its network namespace and its mount namespace (private /run)."""
    return ["nsenter", f"--target={host.holder}", "--net", "--mount", "--", *command]


def run(host: Host, command: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `command` inside `host`, stdin closed, capturing its output as text."""
    return subprocess.run(
        argv(host, command), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
    )


def names(prefix: str) -> list[str]:
    """The machine's namespaces of the hosts and switch of `prefix`."""
    listed = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    ours = {f"{prefix}{SWITCH}"}
    return [
        name
        for name in (line.split()[0] for line in listed.splitlines() if line.strip())
        if name in ours or (name.startswith(f"{prefix}h") and name[len(prefix) + 1 :].isdigit())
    ]


def destroy(prefix: str) -> None:
    """End every process in the hosts of `prefix` (the holders first among them), then delete their namespaces."""
    for name in names(prefix):
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout
        for pid in map(int, pids.split()):
            _kill(pid)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _kill(pid: int) -> None:
    """SIGKILL `pid` and wait until it is gone: reaped when it is our child, else dead or a zombie."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:  # a zombie holds no namespace any more
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return True
