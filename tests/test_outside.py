"""NAT to the outside and the machine's ports forwarded into a lab, for real, inside an emulated host (a
network namespace with its own /run and /sys): never this machine's own firewall, forwarding or uplink.

The switch namespace's address on the underlay (198.51.100.254) plays the outside world: a server there
is reached from a lab namespace through `nat:` and sees the emulated host's address; from there (and from
the emulated host itself) the host's forwarded port reaches the lab's web server. Teardown leaves the
host's iptables rules and its forwarding sysctl exactly as they were.
"""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run

from nsgen.render import lab_files, writing
from nsgen.run import emulated_hosts
from nsgen.run.emulated_hosts import CONTROLLER, Host
from nsgen.validate import sources

pytestmark = pytest.mark.kernel

UPSTREAM = str(CONTROLLER.ip)


def _lab(name: str, subnet: int) -> dict:
    """A bridge with the host's gateway address, a web server behind it, NAT out, port 8080 + n forwarded in."""
    return {
        "name": name,
        "bridges": {"lan": {"addresses": [f"10.7{subnet}.0.1/24"]}},
        "namespaces": {
            "web": {
                "interfaces": {"eth0": {"addresses": [f"10.7{subnet}.0.2/24"]}},
                "routes": [{"to": "default", "via": f"10.7{subnet}.0.1"}],
                "run": [{"name": "http", "command": f"{sys.executable} -m http.server 80 --directory /", "ready": {"tcp": 80}}],
            }
        },
        "links": [["web:eth0", "lan:p-web"]],
        "nat": [{"from": f"10.7{subnet}.0.0/24"}],
        "forward": [{"port": 8080 + subnet, "to": "web:80"}],
    }


@pytest.fixture
def upstream(host: Host, prefix: str, tmp_path: Path) -> Iterator[Path]:
    """A web server outside the lab (in the switch namespace); its log names each client's address."""
    log = tmp_path / "upstream.log"
    command = ["ip", "netns", "exec", f"{prefix}sw", sys.executable, "-u", "-m", "http.server", "9000", "--bind", UPSTREAM]
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):  # it says so once it listens
            if "Serving HTTP" in log.read_text():
                break
            time.sleep(0.05)
        yield log
    finally:
        server.kill()
        server.wait()


def _get(where: list[str], address: str, port: int, path: str) -> str:
    """An HTTP GET with bash alone, from `where` (a command prefix): the status line, or what failed."""
    script = f'exec 3<>/dev/tcp/{address}/{port} && printf "GET {path} HTTP/1.0\\r\\n\\r\\n" >&3 && head -n 1 <&3'
    result = run(*where, "timeout", "5", "bash", "-c", script)
    return (result.stdout or result.stderr).strip()


def _in(host: Host, *command: str | Path) -> subprocess.CompletedProcess[str]:
    return emulated_hosts.run(host, [str(word) for word in command], timeout=60)


def _firewall(host: Host) -> tuple[str, str, str]:
    """The host's filter and nat rules, and its IPv4 forwarding."""
    rules = [_in(host, "iptables", "-w", "-t", table, "-S").stdout for table in ("filter", "nat")]
    return rules[0], rules[1], _in(host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()


def _render(tmp_path: Path, prefix: str, document: dict) -> Path:
    lab_dir = tmp_path / document["name"]
    writing.write(lab_files.render(sources.from_document(document, "test", "test", prefix)), lab_dir)
    return lab_dir


def test_nat_reaches_the_outside_as_the_host_and_a_forwarded_port_reaches_the_lab(
    host: Host, upstream: Path, tmp_path: Path, prefix: str
) -> None:
    before = _firewall(host)
    assert before[2] == "0"
    lab_dir = _render(tmp_path, prefix, _lab("out", 7))
    setup = _in(host, "bash", lab_dir / "setup.sh")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    in_lab = ["nsenter", f"--target={host.holder}", "--net", "--mount", "--", "ip", "netns", "exec", f"{prefix}web"]
    assert _get(in_lab, UPSTREAM, 9000, "/from-the-lab").startswith("HTTP/1.0 404")  # reached: no such file
    assert f'{host.address.ip} - - ' in upstream.read_text() and "GET /from-the-lab" in upstream.read_text()
    outside = ["ip", "netns", "exec", f"{prefix}sw"]
    assert _get(outside, str(host.address.ip), 8087, "/") == "HTTP/1.0 200 OK"  # the lab's server, from outside
    on_host = ["nsenter", f"--target={host.holder}", "--net", "--mount", "--"]
    assert _get(on_host, str(host.address.ip), 8087, "/") == "HTTP/1.0 200 OK"  # and from the host itself
    assert _firewall(host)[2] == "1"

    teardown = _in(host, "bash", lab_dir / "teardown.sh")
    assert teardown.returncode == 0, teardown.stderr
    assert "4 iptables rule(s)" in teardown.stdout
    assert _firewall(host) == before
    assert _in(host, "ls", "-A", "/run/nsgen").stdout == ""


def test_where_forward_drops_setup_names_the_outside_and_allow_forward_lets_it_through(
    host: Host, upstream: Path, tmp_path: Path, prefix: str
) -> None:
    assert _in(host, "iptables", "-w", "-P", "FORWARD", "DROP").returncode == 0
    before = _firewall(host)
    lab_dir = _render(tmp_path, prefix, _lab("out", 7))
    refused = _in(host, "bash", lab_dir / "setup.sh")
    assert refused.returncode == 2
    assert "its traffic to and from the outside (NAT from 10.77.0.0/24, tcp port 8087 to web:80) would be dropped" in refused.stderr
    assert _firewall(host) == before

    setup = _in(host, "bash", lab_dir / "setup.sh", "--allow-forward")
    assert setup.returncode == 0, setup.stderr
    assert "FORWARD accepts the lab's traffic: 5 iptables rule(s)" in setup.stdout
    in_lab = ["nsenter", f"--target={host.holder}", "--net", "--mount", "--", "ip", "netns", "exec", f"{prefix}web"]
    assert _get(in_lab, UPSTREAM, 9000, "/through-drop").startswith("HTTP/1.0 404")
    assert _get(["ip", "netns", "exec", f"{prefix}sw"], str(host.address.ip), 8087, "/") == "HTTP/1.0 200 OK"
    assert _in(host, "bash", lab_dir / "teardown.sh").returncode == 0
    assert _firewall(host) == before  # DROP kept, every rule of the lab's gone, forwarding off again


def test_forwarding_is_put_back_by_the_last_lab_that_needed_it(host: Host, tmp_path: Path, prefix: str) -> None:
    first, second = _render(tmp_path, prefix, _lab("one", 7)), _render(tmp_path, prefix + "b", _lab("two", 8))
    assert _in(host, "bash", first / "setup.sh").returncode == 0
    assert _in(host, "bash", second / "setup.sh").returncode == 0
    assert _in(host, "bash", first / "teardown.sh").returncode == 0
    assert _firewall(host)[2] == "1"  # the second lab still needs it
    assert _in(host, "bash", second / "teardown.sh").returncode == 0
    assert _firewall(host)[2] == "0"


def test_apply_changes_the_forwarded_ports_and_the_services_keep_running(host: Host, tmp_path: Path, prefix: str) -> None:
    before = _firewall(host)
    old = _lab("out", 7)
    old_dir = _render(tmp_path, prefix, old)
    assert _in(host, "bash", old_dir / "setup.sh").returncode == 0
    pid = _in(host, "cat", f"/run/nsgen/{prefix}out/{prefix}web/http.pid").stdout
    new = {**old, "forward": [{"port": 9090, "to": "web:80"}]}
    loaded = [sources.from_document(doc, "test", "test", prefix) for doc in (old, new)]
    change = tmp_path / "change"
    writing.write(lab_files.render_apply(loaded[0].lab, loaded[1]), change)
    applied = _in(host, "bash", change / "apply.sh")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    outside = ["ip", "netns", "exec", f"{prefix}sw"]
    assert _get(outside, str(host.address.ip), 9090, "/") == "HTTP/1.0 200 OK"
    assert "refused" in _get(outside, str(host.address.ip), 8087, "/")  # the old port is no more
    assert _in(host, "cat", f"/run/nsgen/{prefix}out/{prefix}web/http.pid").stdout == pid
    assert _in(host, "bash", change / "teardown.sh").returncode == 0
    assert _firewall(host) == before


def test_a_udp_port_is_forwarded_to_the_lab_and_answered(host: Host, tmp_path: Path, prefix: str) -> None:
    """`proto: udp`: a datagram to the host's port reaches the lab's UDP echo server, and its answer comes back."""
    before = _firewall(host)
    document = _lab("udp", 9)
    document["namespaces"]["web"]["run"] = [{"name": "echo", "command": "socat -T1 UDP-LISTEN:5300,fork PIPE"}]
    document["forward"] = [{"port": 5301, "to": "web:5300", "proto": "udp"}]
    lab_dir = _render(tmp_path, prefix, document)
    setup = _in(host, "bash", lab_dir / "setup.sh")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "-p udp --dport 5301" in (lab_dir / "setup.sh").read_text()
    outside = ["ip", "netns", "exec", f"{prefix}sw"]
    answers = []
    for attempt in range(20):  # the server has no readiness probe for UDP: the first datagrams may come too soon
        sent = run(*outside, "bash", "-c", f"echo datagram-{attempt} | timeout 5 socat -T1 - UDP:{host.address.ip}:5301")
        answers.append(sent.stdout.strip())
        if sent.stdout.strip() == f"datagram-{attempt}":
            break
        time.sleep(0.1)
    assert answers[-1] == f"datagram-{len(answers) - 1}", answers
    assert _in(host, "bash", lab_dir / "teardown.sh").returncode == 0
    assert _firewall(host) == before
    silent = run(*outside, "bash", "-c", f"echo after | timeout 5 socat -T1 - UDP:{host.address.ip}:5301")
    assert silent.stdout.strip() == ""  # the port is forwarded no more


def test_status_and_verify_see_the_rules_and_forwarding_and_apply_puts_them_back(host: Host, tmp_path: Path, prefix: str) -> None:
    """The lab's NAT rules and the root's forwarding are declared state: a rule deleted by hand, one
    added with the lab's comment, forwarding turned off, each named by verify.sh and `nsgen status`,
    and repaired by `nsgen apply`."""
    before = _firewall(host)
    lab_dir = _render(tmp_path, prefix, _lab("out", 7))
    assert _in(host, "bash", lab_dir / "setup.sh").returncode == 0
    nsgen = [sys.executable, "-m", "nsgen"]
    topology = lab_dir / "topology.yaml"
    try:
        status = _in(host, *nsgen, "status", topology)
        assert status.returncode == 0, status.stdout + status.stderr
        comment = f"nsgen:{prefix}out"
        masquerade = ["-t", "nat", "-D", "POSTROUTING", "-s", "10.77.0.0/24", "-m", "comment", "--comment", comment, "-j", "MASQUERADE"]
        assert _in(host, "iptables", "-w", *masquerade).returncode == 0
        stray = ["-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/24", "-m", "comment", "--comment", comment, "-j", "MASQUERADE"]
        assert _in(host, "iptables", "-w", *stray).returncode == 0
        dropping = ["-t", "filter", "-A", "INPUT", "-s", "10.99.0.0/24", "-m", "comment", "--comment", comment, "-j", "DROP"]
        assert _in(host, "iptables", "-w", *dropping).returncode == 0  # a filter rule with the lab's comment
        assert _in(host, "bash", "-c", "echo 0 >/proc/sys/net/ipv4/ip_forward").returncode == 0
        named = [
            "host: sysctl net.ipv4.ip_forward=1: different (0)",
            f"host: iptables -t nat -A POSTROUTING -s 10.77.0.0/24 -m comment --comment {comment} -j MASQUERADE: missing",
            f"host: iptables -t filter -A INPUT -s 10.99.0.0/24 -m comment --comment {comment} -j DROP: extra",
            f"host: iptables -t nat -A POSTROUTING -s 10.99.0.0/24 -m comment --comment {comment} -j MASQUERADE: extra",
        ]
        status = _in(host, *nsgen, "status", topology)
        assert status.returncode == 1 and status.stdout.splitlines()[:-1] == named, status.stdout
        verify = _in(host, "bash", lab_dir / "verify.sh")
        assert verify.returncode == 1 and all(f"FAIL  {line}" in verify.stdout for line in named), verify.stdout
        applied = _in(host, *nsgen, "apply", topology)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        status = _in(host, *nsgen, "status", topology)
        assert status.returncode == 0, status.stdout
        assert comment not in _in(host, "iptables", "-w", "-t", "filter", "-S").stdout  # the stray DROP is gone
        outside = ["ip", "netns", "exec", f"{prefix}sw"]
        assert _get(outside, str(host.address.ip), 8087, "/") == "HTTP/1.0 200 OK"  # forwarded again
    finally:
        assert _in(host, "bash", lab_dir / "teardown.sh").returncode == 0
    assert _firewall(host) == before


def test_apply_to_a_lab_without_outside_puts_back_what_its_teardown_would_not(host: Host, tmp_path: Path, prefix: str) -> None:
    """The new lab has no bridge, NAT or forwarded port: its teardown.sh carries no section for the old
    one's FORWARD rules and forwarding, so apply.sh deletes and puts those back itself."""
    assert _in(host, "iptables", "-w", "-P", "FORWARD", "DROP").returncode == 0
    before = _firewall(host)
    old = _lab("out", 7)
    old_dir = _render(tmp_path, prefix, old)
    assert _in(host, "bash", old_dir / "setup.sh", "--allow-forward").returncode == 0
    assert _firewall(host)[2] == "1"
    new = {
        "name": "out",
        "namespaces": {
            "web": {"interfaces": {"eth0": {"addresses": ["10.77.0.2/24"]}}, "run": old["namespaces"]["web"]["run"]},
            "peer": {"interfaces": {"eth0": {"addresses": ["10.77.0.3/24"]}}},
        },
        "links": [["web:eth0", "peer:eth0"]],
    }
    loaded = [sources.from_document(doc, "test", "test", prefix) for doc in (old, new)]
    change = tmp_path / "change"
    writing.write(lab_files.render_apply(loaded[0].lab, loaded[1]), change)
    assert "rules" in lab_files.sections(loaded[0].lab, "teardown.sh")
    assert lab_files.sections(loaded[1].lab, "teardown.sh") == ("services", "stop")
    applied = _in(host, "bash", change / "apply.sh")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _firewall(host) == before  # DROP kept, the old lab's rules gone, forwarding off again
    teardown = _in(host, "bash", change / "teardown.sh")
    assert teardown.returncode == 0, teardown.stdout + teardown.stderr
    assert _firewall(host) == before
    assert _in(host, "ls", "-A", "/run/nsgen").stdout == ""


def test_a_forwarded_port_the_host_serves_already_is_refused_and_force_forwards_it(host: Host, tmp_path: Path, prefix: str) -> None:
    lab_dir = _render(tmp_path, prefix, _lab("shadow", 9))
    before = _firewall(host)
    on_host = ["nsenter", f"--target={host.holder}", "--net", "--"]
    server = subprocess.Popen([*on_host, sys.executable, "-m", "http.server", "8089"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if ":1F99 " in _in(host, "cat", "/proc/net/tcp", "/proc/net/tcp6").stdout:
                break
            time.sleep(0.05)
        refused = _in(host, "bash", lab_dir / "setup.sh")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr == (
            "setup.sh: the lab forwards tcp port 8089, which this machine serves already (ss -lntup shows what): other"
            " machines would reach the lab instead. Nothing was changed: forward another port, or use --force to forward it anyway\n"
        )
        assert _firewall(host) == before and _in(host, "ip", "netns", "list").stdout == ""
        forced = _in(host, "bash", lab_dir / "setup.sh", "--force")
        assert forced.returncode == 0, forced.stderr
        assert "--force: the lab forwards tcp port 8089" in forced.stderr
    finally:
        torn = _in(host, "bash", lab_dir / "teardown.sh")  # whatever came up, its services too
        server.kill()
        server.wait()
    assert torn.returncode == 0, torn.stderr
    assert _firewall(host) == before


def test_an_apply_that_fails_before_its_rules_rolls_back_without_a_word_of_them(host: Host, tmp_path: Path, prefix: str) -> None:
    """The change moves the forwarded port and adds a namespace whose bridge port's name someone else
    has taken: apply deletes the old rules, fails at that link, and rolls back. Its rollback deletes the
    new rules only where they are (none are: no "Bad rule" from iptables), and puts the old ones back."""
    lab_dir = _render(tmp_path, prefix, _lab("out", 7))
    assert _in(host, "bash", lab_dir / "setup.sh").returncode == 0
    nsgen = [sys.executable, "-m", "nsgen"]
    try:
        running = _firewall(host)
        new = _lab("out", 7)
        new["forward"] = [{"port": 8090, "to": "web:80"}]
        new["namespaces"]["web2"] = {"interfaces": {"eth0": {"addresses": ["10.77.0.3/24"]}}}
        new["links"].append(["web2:eth0", "lan:p-web2"])
        topology = tmp_path / "new.yaml"
        topology.write_text(json.dumps(new))
        squat = ["ip", "link", "add", f"{prefix}p-web2", "type", "veth", "peer", "name", f"{prefix}x-web2"]
        assert _in(host, *squat).returncode == 0  # someone else's
        applied = _in(host, *nsgen, "apply", topology, "--prefix", prefix)
        assert applied.returncode == 1, applied.stdout + applied.stderr
        assert "failed at line" in applied.stderr and "Bad rule" not in applied.stderr, applied.stderr
        assert _firewall(host) == running
    finally:
        assert _in(host, "bash", lab_dir / "teardown.sh").returncode == 0
        _in(host, "ip", "link", "del", f"{prefix}p-web2")


def test_a_forward_rule_of_allow_forward_deleted_by_hand_is_named_and_put_back(host: Host, tmp_path: Path, prefix: str) -> None:
    """FORWARD drops, and the lab was set up with --allow-forward (its five ACCEPT rules): one deleted by
    hand is named missing by status and verify.sh (the others say the lab has them), and apply inserts
    it again, first in the chain."""
    assert _in(host, "iptables", "-w", "-P", "FORWARD", "DROP").returncode == 0
    try:
        lab_dir = _render(tmp_path, prefix, _lab("out", 7))
        assert _in(host, "bash", lab_dir / "setup.sh", "--allow-forward").returncode == 0
        nsgen = [sys.executable, "-m", "nsgen"]
        topology = lab_dir / "topology.yaml"
        try:
            assert _in(host, *nsgen, "status", topology).returncode == 0
            comment = f"nsgen:{prefix}out"
            rule = ["FORWARD", "-s", "10.77.0.0/24", "-m", "comment", "--comment", comment, "-j", "ACCEPT"]
            assert _in(host, "iptables", "-w", "-D", *rule).returncode == 0
            named = f"host: iptables -t filter -A FORWARD -s 10.77.0.0/24 -m comment --comment {comment} -j ACCEPT: missing"
            status = _in(host, *nsgen, "status", topology)
            assert status.returncode == 1 and status.stdout.splitlines()[0] == named, status.stdout
            assert f"FAIL  {named}" in _in(host, "bash", lab_dir / "verify.sh").stdout
            applied = _in(host, *nsgen, "apply", topology)
            assert applied.returncode == 0, applied.stdout + applied.stderr
            assert _in(host, *nsgen, "status", topology).returncode == 0
            forward = _in(host, "iptables", "-w", "-S", "FORWARD").stdout.splitlines()
            assert forward[1].startswith("-A FORWARD -s 10.77.0.0/24 ") and forward[1].endswith(" -j ACCEPT")  # first
        finally:
            assert _in(host, "bash", lab_dir / "teardown.sh").returncode == 0
        assert comment not in _in(host, "iptables", "-w", "-S").stdout
    finally:
        _in(host, "iptables", "-w", "-P", "FORWARD", "ACCEPT")
