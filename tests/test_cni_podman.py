"""nsgen-bridge as podman's network: the real podman (CNI backend) in nsgen's sandbox, on networks installed by
their install.sh, with the reference portmap chained after nsgen-bridge.

The sandbox (nsgen.run.sandbox) is a private machine: its own network, processes, /run, /var/lib, and /etc and /opt
layered over the machine's, so podman's containers.conf, the CNI configs and plugins, the firewall rules and the
forwarding it turns on are the sandbox's alone. A namespace of the test plays another machine on the sandbox's LAN
(198.51.100.0/24), with no route back to the containers' subnets. The session is kept in the pytest temp dir
(podman-session.txt).
"""

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cni_harness import REFERENCE_DIR, processes_mentioning, stop
from conftest import netns_names, root_link_names

from nsgen.render import cni, writing
from nsgen.run import busybox_image, sandbox

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.podman,
    pytest.mark.skipif(
        not (shutil.which("podman") and shutil.which("socat") and (REFERENCE_DIR / "portmap").exists()
             and Path("/bin/busybox").exists()),
        reason="needs podman, socat, containernetworking-plugins and busybox-static",
    ),
]

IMAGE = "localhost/nsgen/busybox:test"
MACHINE, OTHER = "198.51.100.1", "198.51.100.2"  # the sandbox's LAN address, and the other machine's
#: podman on CNI, as /work/shared/README.md found it runs in a sandbox (no systemd, no registry).
CONTAINERS_CONF = """\
[network]
network_backend = "cni"
cni_plugin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]
network_config_dir = "/etc/cni/net.d/"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
"""
#: vfs needs nothing of the file system under /var/lib/containers (a tmpfs here).
STORAGE_CONF = """\
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
"""
#: A container serving "hello from NAME" over HTTP on port 80 (busybox httpd).
SERVE = "mkdir /www && echo hello from $(hostname) > /www/index.html && exec busybox httpd -f -p 80 -h /www"
#: An HTTP GET of / from ADDRESS:PORT, its response on stdout (socat; bash -c ... ADDRESS PORT).
GET = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | socat -t 5 - "TCP:$0:$1,connect-timeout=5"'


@dataclass
class PodmanHost:
    """The sandbox: commands run inside it (its mounts, network and processes), each kept in the session."""

    pid: int  # a process inside the sandbox, entered by nsenter
    prefix: str
    networks: dict[str, cni.Network]
    outside: str  # the namespace playing another machine
    session: list[str] = field(default_factory=list)

    def run(self, *command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        inside = ["nsenter", "-t", str(self.pid), "-m", "-n", "-p", "--", "env", "TMPDIR=/run/podman-tmp"]
        result = subprocess.run([*inside, *command], capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
        self.session.append(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}".rstrip() + "\n")
        if check:
            assert result.returncode == 0, self.session[-1]
        return result

    def podman_run(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`podman run` of the test's image: in a cgroup under the sandbox's (removed with it), ping allowed."""
        return self.run("podman", "run", "--cgroup-parent", f"/{sandbox.name()}", "--cap-add", "NET_RAW",
                        "--name", f"{self.prefix}{name}", *args, check=check)

    def address(self, name: str, ifname: str = "eth0") -> str:
        out = self.run("podman", "exec", f"{self.prefix}{name}", "ip", "-o", "-4", "addr", "show", "dev", ifname).stdout
        return re.search(r"inet (\S+)/", out).group(1)

    def state(self) -> str:
        """What a container could leave: the nat rules, the sandbox's devices, every network's address store."""
        return "\n".join([
            self.run("iptables", "-w", "-t", "nat", "-S").stdout,
            self.run("ip", "-o", "link", "show").stdout,
            self.run("sh", "-c", "ls /var/lib/cni/networks/*").stdout,
        ])


def _network(prefix: str, tag: str, third_octet: int) -> cni.CniOptions:
    return cni.CniOptions(f"{prefix}{tag}", f"{prefix}{tag}", f"10.{third_octet}.0.0/24")


@pytest.fixture(scope="module")
def podman_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanHost]:
    """A sandbox with podman configured for CNI, two nsgen networks installed, the image imported, and a LAN to
    another machine; torn down whole afterwards (its processes, mounts, devices and cgroups), pass or fail."""
    work = tmp_path_factory.mktemp("podman")
    prefix = f"pm{uuid.uuid4().hex[:5]}"
    options = {"a": _network(prefix, "a", 207), "b": _network(prefix, "b", 208)}
    for tag, option in options.items():
        writing.write(cni.render_cni(option), work / tag, cni.EXECUTABLES)
    (work / "busybox.tar").write_bytes(busybox_image.rootfs())
    (work / "containers.conf").write_text(CONTAINERS_CONF)
    (work / "storage.conf").write_text(STORAGE_CONF)
    outside = f"{prefix}-out"
    with sandbox.sandbox() as wrapper:
        machine = subprocess.Popen([*wrapper, "sleep", "600"], stdin=subprocess.DEVNULL)
        host = None
        try:
            host = PodmanHost(_inner_pid(machine), prefix, {t: cni.validate(o) for t, o in options.items()}, outside)
            host.run("sh", "-c", f"mkdir -p /run/podman-tmp && cp {work}/containers.conf {work}/storage.conf"
                                 " /etc/containers/")
            for tag in options:
                host.run(str(work / tag / "install.sh"))
            host.run("podman", "import", str(work / "busybox.tar"), IMAGE)
            subprocess.run(["ip", "netns", "add", outside], check=True)
            subprocess.run(["ip", "-n", outside, "link", "add", "lan0", "type", "veth", "peer", "name", "lan0",
                            "netns", str(host.pid)], check=True)
            subprocess.run(["ip", "-n", outside, "addr", "add", f"{OTHER}/24", "dev", "lan0"], check=True)
            subprocess.run(["ip", "-n", outside, "link", "set", "dev", "lan0", "up"], check=True)
            host.run("ip", "addr", "add", f"{MACHINE}/24", "dev", "lan0")
            host.run("ip", "link", "set", "dev", "lan0", "up")
            yield host
        finally:
            if host is not None:
                (tmp_path_factory.getbasetemp() / "podman-session.txt").write_text("\n".join(host.session))
            stop(machine.pid)
            machine.wait(timeout=30)
            if outside in netns_names():
                subprocess.run(["ip", "netns", "del", outside], check=False)
    assert not processes_mentioning(str(work)), "a process of the sandbox outlived it"
    assert not any(name.startswith(prefix) for name in netns_names() | root_link_names())
    shutil.rmtree(work, ignore_errors=True)


def _inner_pid(machine: subprocess.Popen) -> int:
    """The sandbox's `sleep`: started by its PID 1 once the sandbox's mounts are made (unshare -> PID 1 -> sleep)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert machine.poll() is None, "the sandbox ended before it started"
        pids = [machine.pid]
        for _ in range(2):
            children = Path(f"/proc/{pids[-1]}/task/{pids[-1]}/children").read_text().split()
            if not children:
                break
            pids.append(int(children[0]))
        if len(pids) == 3 and Path(f"/proc/{pids[2]}/cmdline").read_bytes().startswith(b"sleep"):
            return pids[2]
        time.sleep(0.05)
    raise AssertionError("the sandbox did not start in 30 s")


def _replied(ping: subprocess.CompletedProcess) -> bool:
    """Whether a ping got an answer. One lost is no failure here: this machine's one neighbour table (every
    namespace's, 1024 entries) overflows under another suite's large lab, and then a first ARP goes unanswered."""
    return ping.returncode == 0 and re.search(r" [1-9]\d* packets received", ping.stdout) is not None


def _neighbour_table_overflows() -> int:
    """How often the machine's ARP table was full (/proc/net/stat/arp_cache, every CPU's table_fulls)."""
    rows = [line.split() for line in Path("/proc/net/stat/arp_cache").read_text().splitlines()]
    column = rows[0].index("table_fulls")
    return sum(int(row[column], 16) for row in rows[1:])


def _clean(host: PodmanHost) -> None:
    """Every container of the test gone: nothing of nsgen-bridge or portmap's per-container rules is left."""
    state = host.state()
    assert "nsgen-bridge" not in state and "CNI-DN-" not in state, state
    assert not re.search(r"veth[0-9a-f]{11}", state), state
    assert not re.search(r"networks/\S+:\n(?!lock\n)", state + "\n"), state


def test_containers_ping_publish_masquerade_and_hairpin(podman_host: PodmanHost) -> None:
    host, net = podman_host, podman_host.networks["a"]
    gateway = str(net.ipv4.gateway)
    try:
        host.podman_run("web", "-d", "--hostname", f"{host.prefix}web", "--network", net.options.name, "-p", "8080:80", IMAGE,
                        "sh", "-c", SERVE)
        web = host.address("web")
        assert _replied(host.podman_run("client", "--rm", "--network", net.options.name, IMAGE, "ping", "-c", "3", web))
        for address in (MACHINE, gateway):  # from the sandbox's own host
            assert host.run("bash", "-c", GET, address, "8080").stdout.endswith(f"\n\nhello from {host.prefix}web\n")
        other = subprocess.run(["ip", "netns", "exec", host.outside, "bash", "-c", GET, MACHINE, "8080"],
                               capture_output=True, text=True)  # from another machine
        assert other.stdout.endswith(f"\n\nhello from {host.prefix}web\n"), other.stderr
        # the other machine has no route to the containers: only a masqueraded ping comes back
        assert subprocess.run(["ip", "-n", host.outside, "route", "get", web], capture_output=True).returncode != 0
        assert _replied(host.podman_run("masq", "--rm", "--network", net.options.name, IMAGE, "ping", "-c", "3", OTHER))
        # hairpin: the server reaches its own published port through the machine's address
        hairpin = host.run("podman", "exec", f"{host.prefix}web", "sh", "-c",
                           f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 {MACHINE} 8080")
        assert hairpin.stdout.endswith(f"hello from {host.prefix}web\n")
    finally:
        host.run("podman", "rm", "-f", "-t", "0", f"{host.prefix}web", check=False)
    _clean(host)


def test_mac_address_and_ip_are_the_ones_asked_for(podman_host: PodmanHost) -> None:
    host, net = podman_host, podman_host.networks["a"]
    fixed = str(net.ipv4.range_end - 1)
    out = host.podman_run("fixed", "--rm", "--network", net.options.name, "--ip", fixed, "--mac-address",
                          "02:42:0a:cf:00:42", IMAGE, "ip", "-o", "addr", "show", "dev", "eth0").stdout
    assert f"inet {fixed}/24" in out
    out = host.podman_run("fixed", "--rm", "--network", net.options.name, "--mac-address", "02:42:0a:cf:00:42",
                          IMAGE, "ip", "-o", "link", "show", "dev", "eth0").stdout
    assert "link/ether 02:42:0a:cf:00:42" in out
    _clean(host)


def test_two_networks_connect_and_disconnect(podman_host: PodmanHost) -> None:
    host, a, b = podman_host, podman_host.networks["a"], podman_host.networks["b"]
    try:
        both = host.podman_run("both", "--rm", "--network", a.options.name, "--network", b.options.name, IMAGE,
                               "sh", "-c", "ip -o -4 addr show scope global; ip route show default").stdout
        assert both.count("inet ") == 2 and both.count("default via") == 1, both
        host.podman_run("one", "-d", "--network", a.options.name, IMAGE, "sleep", "300")
        host.run("podman", "network", "connect", b.options.name, f"{host.prefix}one")
        routes = host.run("podman", "exec", f"{host.prefix}one", "ip", "route").stdout
        assert f"default via {a.ipv4.gateway} dev eth0" in routes and f"{b.ipv4.subnet} dev eth1" in routes
        peer = host.podman_run("peer", "--rm", "--network", b.options.name, IMAGE, "ping", "-c", "3",
                               host.address("one", "eth1"))
        assert _replied(peer)
        host.run("podman", "network", "disconnect", b.options.name, f"{host.prefix}one")
        links = host.run("podman", "exec", f"{host.prefix}one", "ip", "-o", "link").stdout
        assert "eth1" not in links and "eth0" in links
        assert _replied(host.run("podman", "exec", f"{host.prefix}one", "ping", "-c", "3", OTHER))
    finally:
        host.run("podman", "rm", "-f", "-t", "0", f"{host.prefix}one", check=False)
    _clean(host)


def test_the_gateway_keeps_its_mac_while_containers_come_and_go(podman_host: PodmanHost) -> None:
    host, net = podman_host, podman_host.networks["a"]
    bridge = net.options.bridge
    mac = cni.stable_mac(net.options.name, bridge)
    try:
        # 40 pings at 0.25 s through the gateway to the other machine, while 3 containers start and stop
        overflows = _neighbour_table_overflows()
        host.podman_run("pinger", "-d", "--network", net.options.name, IMAGE, "ping", "-c", "40", "-i", "0.25", OTHER)
        for index in range(3):
            host.podman_run(f"passer{index}", "--rm", "--network", net.options.name, IMAGE, "sleep", "1")
            assert f"link/ether {mac}" in host.run("ip", "-o", "link", "show", "dev", bridge).stdout
        host.run("podman", "wait", f"{host.prefix}pinger", timeout=60)
        log = host.run("podman", "logs", f"{host.prefix}pinger").stdout
        if " 0% packet loss" not in log and _neighbour_table_overflows() > overflows:
            pytest.skip("the machine's neighbour table overflowed during the pings (another lab's namespaces): "
                        "losses say nothing of the gateway's MAC")
        assert "40 packets transmitted, 40 packets received, 0% packet loss" in log, log
    finally:
        host.run("podman", "rm", "-f", "-t", "0", f"{host.prefix}pinger", check=False)
    _clean(host)
