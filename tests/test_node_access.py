"""nsgen exec, shell and capture: into a lab's namespaces by their topology names; completion of the CLI."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import leftovers, nsgen, run

from nsgen.topology import presets


@pytest.fixture
def pair_up(pair_dir: Path, prefix: str) -> Iterator[str]:
    """The pair lab set up for real with the test's prefix; torn down afterwards, pass or fail."""
    setup = run("bash", pair_dir / "setup.sh")
    assert setup.returncode == 0, setup.stderr
    try:
        yield prefix
    finally:
        run("bash", pair_dir / "teardown.sh")
        assert leftovers(prefix) == set()


def test_an_unknown_node_is_one_line() -> None:
    result = nsgen("exec", "--preset", "pair", "ns-9", "--", "true", in_process=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "ns-9: no such node in lab 'pair' (its namespaces: ns-0, ns-1)\n"


@pytest.mark.parametrize("command", [["exec", "ns-0", "--", "true"], ["shell", "ns-0"], ["capture", "ns-0:veth-0"]])
def test_a_lab_that_is_not_up_is_one_line(command: list[str], prefix: str) -> None:
    result = nsgen(command[0], "--preset", "pair", "--prefix", prefix, *command[1:], in_process=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"ns-0: namespace '{prefix}ns-0' does not exist: is the lab up (`nsgen up`)?\n"
    nothing = nsgen(command[0], "--prefix", prefix, *command[1:], in_process=True)  # no lab named, none running
    assert nothing.returncode == 2 and nothing.stderr.startswith(f"nsgen: no lab of prefix '{prefix}' is running")


def test_exec_without_a_command_is_one_line() -> None:
    result = nsgen("exec", "--preset", "pair", "ns-0", in_process=True)
    assert (result.returncode, result.stderr) == (2, "ns-0: no command given (nsgen exec NODE -- COMMAND...)\n")


@pytest.mark.parametrize(("target", "message"), [
    ("ns-0", "ns-0: give the interface as NODE:IFACE, e.g. ns-0:veth-0"),
    ("ns-0:eth9", "ns-0:eth9: node 'ns-0' has no interface 'eth9' (its interfaces: veth-0)"),
])
def test_a_bad_capture_target_is_one_line(target: str, message: str) -> None:
    result = nsgen("capture", "--preset", "pair", target, in_process=True)
    assert (result.returncode, result.stderr) == (2, message + "\n")


def test_capture_without_tcpdump_names_its_package() -> None:
    result = run(sys.executable, "-m", "nsgen", "capture", "--preset", "pair", "ns-0:veth-0", env={**os.environ, "PATH": "/nonexistent"})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "tcpdump: not installed (it is the Debian package tcpdump)\n"


@pytest.mark.kernel
def test_exec_runs_in_the_namespace_and_passes_on_its_status(pair_up: str) -> None:
    shown = nsgen("exec", "--prefix", pair_up, "ns-0", "--", "ip", "-br", "addr", "show", "veth-0")
    assert shown.returncode == 0, shown.stderr
    assert "172.16.0.2/32" in shown.stdout
    assert nsgen("exec", "--prefix", pair_up, "ns-1", "--", "sh", "-c", "exit 7").returncode == 7


@pytest.mark.kernel
def test_shell_prompt_names_the_namespace(pair_up: str) -> None:
    shell = subprocess.run(
        [sys.executable, "-m", "nsgen", "shell", "--prefix", pair_up, "ns-1"],
        input="ip -br addr show veth-1\nexit 3\n",
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": "/nonexistent"},  # no user's bashrc: the prompt is ours alone
        check=False,
    )
    assert shell.returncode == 3, shell.stderr
    assert f"[netns {pair_up}ns-1] " in shell.stderr  # bash -i prints its prompt on stderr
    assert "172.16.0.3/32" in shell.stdout


@pytest.mark.kernel
def test_capture_writes_the_pings_to_a_pcap(pair_up: str, tmp_path: Path) -> None:
    ping = ["exec", "--prefix", pair_up, "ns-0", "--", "ping", "-c", "3", "-i", "0.2", "-W", "1", "172.16.0.3"]
    assert nsgen(*ping).returncode == 0  # the neighbour is resolved: the capture sees ICMP alone
    pcap = tmp_path / "ping.pcap"
    capture = subprocess.Popen(
        [sys.executable, "-m", "nsgen", "capture", "--prefix", pair_up, "ns-0:veth-0", "-c", "4", "-w", str(pcap)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert capture.stderr is not None
        assert "listening on veth-0" in capture.stderr.readline()
        assert nsgen(*ping).returncode == 0
        assert capture.wait(timeout=10) == 0
    finally:
        capture.kill()
        capture.wait()
    packets = run("tcpdump", "-n", "-r", pcap, check=True).stdout.splitlines()
    assert len(packets) == 4
    assert all("ICMP echo" in packet for packet in packets)
    assert any("172.16.0.2 > 172.16.0.3: ICMP echo request" in packet for packet in packets)
    assert any("172.16.0.3 > 172.16.0.2: ICMP echo reply" in packet for packet in packets)


@pytest.mark.kernel
def test_the_running_lab_is_found_and_taken_as_the_others_take_it(tmp_path: Path, prefix: str) -> None:
    """Without a file or --preset, exec, status and capture act on the lab that runs (of --prefix);
    with two running they name both; a topology file comes first, as for every other command."""
    topology = tmp_path / "lab.yaml"
    assert nsgen("init", "--preset", "bridge", "-n", "2", "-o", topology).returncode == 0
    assert nsgen("up", topology, "--prefix", prefix).returncode == 0
    try:
        found = nsgen("exec", "--prefix", prefix, "ns-1", "--", "cat", "/proc/sys/net/ipv4/ip_forward")
        assert found.returncode == 0, found.stderr
        assert nsgen("status", "--prefix", prefix).returncode == 0
        assert nsgen("exec", topology, "--prefix", prefix, "ns-0", "--", "true").returncode == 0
        pcap = tmp_path / "bridge.pcap"
        capture = subprocess.Popen(
            [sys.executable, "-m", "nsgen", "capture", "--prefix", prefix, "v-net-0", "icmp", "-c", "2", "-w", str(pcap)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert capture.stderr is not None and f"listening on {prefix}v-net-0" in capture.stderr.readline()
            arp = nsgen("exec", "--prefix", prefix, "ns-0", "--", "ping", "-c", "1", "-W", "2", "172.16.0.3")
            assert arp.returncode == 0, arp.stdout + arp.stderr
            assert capture.wait(timeout=10) == 0
        finally:
            capture.kill()
            capture.wait()
        packets = run("tcpdump", "-n", "-r", pcap, check=True).stdout.splitlines()
        assert len(packets) == 2 and all("ICMP echo" in packet for packet in packets), packets  # the filter: no ARP
        assert nsgen("up", "--preset", "router", "-n", "1", "--prefix", prefix).returncode == 0
        both = nsgen("status", "--prefix", prefix)
        assert both.returncode == 2
        assert both.stderr == f"nsgen: 2 labs are running ('{prefix}bridge', '{prefix}router'): name one with its topology file or --preset (and --prefix)\n"
    finally:
        nsgen("down", "--preset", "router", "-n", "1", "--prefix", prefix)
        nsgen("down", topology, "--prefix", prefix)
    assert leftovers(prefix) == set()


def _complete(*words: str) -> list[str]:
    """What bash completion offers after `nsgen WORDS...` (the last word being completed)."""
    env = {**os.environ, "_NSGEN_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(("nsgen", *words)),
           "COMP_CWORD": str(len(words))}
    script = "import sys; from nsgen.cli.app import app; sys.argv[0] = 'nsgen'; app(prog_name='nsgen')"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_completion_offers_commands_options_and_preset_names() -> None:
    assert {"capture", "exec", "shell", "render"} <= set(_complete(""))
    assert "--preset" in _complete("render", "--")
    assert _complete("render", "--preset", "") == list(presets.PRESETS)
    assert _complete("up", "-p", "br") == ["bridge"]
    assert _complete("init", "--preset", "m") == ["mesh"]
