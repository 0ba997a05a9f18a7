"""Emulated hosts: private namespaces lists and firewalls, an underlay between them, nothing left after teardown."""

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import leftovers, netns_names, run

from nsgen.run import emulated_hosts


@pytest.fixture
def hosts(prefix: str) -> Iterator[list[emulated_hosts.Host]]:
    """Two emulated hosts named with the test's prefix; destroyed afterwards, pass or fail."""
    made = emulated_hosts.create(prefix, 2)
    try:
        yield made
    finally:
        emulated_hosts.destroy(prefix)


@pytest.mark.kernel
def test_a_namespace_made_in_a_host_is_its_own(hosts: list[emulated_hosts.Host]) -> None:
    one, two = hosts
    assert emulated_hosts.run(one, ["ip", "netns", "add", "inner"]).returncode == 0
    assert emulated_hosts.run(one, ["ip", "netns", "list"]).stdout.split() == ["inner"]
    assert emulated_hosts.run(two, ["ip", "netns", "list"]).stdout == ""
    assert "inner" not in netns_names()


@pytest.mark.kernel
def test_hosts_ping_each_other_over_the_underlay(hosts: list[emulated_hosts.Host]) -> None:
    one, two = hosts
    assert str(one.address) == "198.51.100.1/24" and str(two.address) == "198.51.100.2/24"
    for source, target in ((one, two), (two, one)):
        ping = emulated_hosts.run(source, ["ping", "-c", "1", "-W", "2", str(target.address.ip)])
        assert ping.returncode == 0, ping.stdout + ping.stderr


@pytest.mark.kernel
@pytest.mark.skipif(shutil.which("iptables") is None, reason="needs iptables (Debian package iptables)")
def test_a_hosts_firewall_is_not_the_machines(hosts: list[emulated_hosts.Host]) -> None:
    machine_before = run("iptables", "-S", "FORWARD", check=True).stdout
    assert emulated_hosts.run(hosts[0], ["iptables", "-P", "FORWARD", "DROP"]).returncode == 0
    assert "-P FORWARD DROP" in emulated_hosts.run(hosts[0], ["iptables", "-S", "FORWARD"]).stdout
    assert "-P FORWARD ACCEPT" in emulated_hosts.run(hosts[1], ["iptables", "-S", "FORWARD"]).stdout
    assert run("iptables", "-S", "FORWARD", check=True).stdout == machine_before


@pytest.mark.kernel
def test_destroy_leaves_nothing(prefix: str) -> None:
    made = emulated_hosts.create(prefix, 2)
    assert emulated_hosts.run(made[0], ["ip", "netns", "add", "inner"]).returncode == 0
    # a process in a namespace of the host's own (a lab's service) would keep that namespace alive
    started = emulated_hosts.run(made[0], ["sh", "-c", "ip netns exec inner sleep 300 >/dev/null 2>&1 & echo $!"])
    inner = int(started.stdout)
    # the controller's processes (as its ssh's) have this machine's files: the machine's namespaces are not the hosts'
    controller = subprocess.Popen(emulated_hosts.controller_argv(prefix, ["sleep", "300"]), stdin=subprocess.DEVNULL)
    run("ip", "netns", "add", f"{prefix}bystander", check=True)
    bystander = subprocess.Popen(["ip", "netns", "exec", f"{prefix}bystander", "sleep", "300"], stdin=subprocess.DEVNULL)
    try:
        assert {f"{prefix}h1", f"{prefix}h2", f"{prefix}sw"} <= netns_names()
        while not emulated_hosts._processes(f"{prefix}bystander"):
            time.sleep(0.02)
        emulated_hosts.destroy(prefix)
        assert bystander.poll() is None  # another namespace of the machine: left alone
        assert controller.wait(timeout=5) is not None
        deadline = time.monotonic() + 5
        while Path(f"/proc/{inner}").exists() and time.monotonic() < deadline:  # killed, then reaped by init
            time.sleep(0.02)
        assert not Path(f"/proc/{inner}").exists()
    finally:
        if Path(f"/proc/{inner}").exists():
            os.kill(inner, signal.SIGKILL)
        for process in (controller, bystander):
            process.kill()
            process.wait()
        run("ip", "netns", "del", f"{prefix}bystander")
    assert leftovers(prefix) == set()
    assert emulated_hosts.names(prefix) == []
    assert not any(Path(f"/proc/{host.holder}").exists() for host in made)


def test_a_bad_count_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="0 is not between 1 and 253"):
        emulated_hosts.create(prefix, 0)
    assert leftovers(prefix) == set()
