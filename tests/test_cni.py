"""nsgen cni: the generated plugins against the CNI spec, the reference bridge + host-local, and containerd.

Plugins run in a network namespace the test makes (its "host"), so bridges, veths and sysctls never touch
the machine's own namespace; the conformance table of every scenario x plugin is printed by the last test.
"""

import concurrent.futures
import fcntl
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cni_harness import (
    MOUNT_NAMESPACE_SCRIPT,
    REFERENCE_DIR,
    Flavour,
    Net,
    Reply,
    call,
    chain,
    containerd_config,
    macs,
    processes_mentioning,
    shape,
    stop,
)
from conftest import REPO, ip_json, netns_names, nsgen, root_link_names, run, shellcheck

from nsgen import __version__
from nsgen.problems import TopologyError
from nsgen.render import cni, writing
from nsgen.run import busybox_image

GENERATED_CNI = REPO / "generated" / "cni"
SHELL_SCRIPTS = sorted(cni.EXECUTABLES)
FLAVOURS = ("nsgen-bridge", "reference")
#: scenario -> plugin -> outcome, filled as the scenarios run, printed by test_conformance_table (the last test)
CONFORMANCE: dict[str, dict[str, str]] = {}


@contextmanager
def scenario(name: str, flavour: str) -> Iterator[list[str]]:
    """Record a scenario's outcome for the table: FAIL unless the block completes; notes go beside `pass`."""
    notes: list[str] = []
    CONFORMANCE.setdefault(name, {})[flavour] = "FAIL"
    yield notes
    CONFORMANCE[name][flavour] = "pass" + (f" ({'; '.join(notes)})" if notes else "")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default `cni` preset rendered into a temp dir."""
    out = tmp_path_factory.mktemp("cni") / "out"
    writing.write(cni.render_cni(cni.CniOptions()), out, cni.EXECUTABLES)
    return out


def _flavour(name: str, rendered: Path) -> Flavour:
    if name == "nsgen-bridge":
        return Flavour(name, rendered / "nsgen-bridge", "/opt/cni/bin")
    return Flavour(name, REFERENCE_DIR / "bridge", str(REFERENCE_DIR))


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest, rendered: Path) -> Flavour:
    return _flavour(request.param, rendered)


class Lab:
    """One test's namespaces, all named with a unique prefix: hosts for the plugins, and containers."""

    def __init__(self, prefix: str, work: Path):
        self.prefix, self.work = prefix, work

    def netns(self, name: str) -> str:
        full = f"{self.prefix}{name}"
        subprocess.run(["ip", "netns", "add", full], check=True)
        return full

    def net(self, tag: str = "n", **addresses: str) -> Net:
        """A network with its own host netns, bridge and address store."""
        return Net(f"{self.prefix}{tag}", f"{self.prefix}{tag}br", self.netns(f"{tag}-host"), self.work / tag, **addresses)

    def destroy(self) -> None:
        for name in sorted(netns_names()):
            if name.startswith(self.prefix):
                subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """Namespaces deleted afterwards, pass or fail; nothing of the test may be left in the root namespace.

    (Plugins only ever run inside the lab's host namespaces, so their devices go with them.)
    """
    lab = Lab(f"tc{uuid.uuid4().hex[:6]}-", tmp_path / "ipam")
    try:
        yield lab
    finally:
        lab.destroy()
    assert not any(name.startswith(lab.prefix) for name in netns_names() | root_link_names())


def _address(netns: str, ifname: str = "eth0", family: str = "-4") -> str | None:
    """The IPv4 (or, with "-6", global IPv6) address with prefix of a device in a netns, or None when it has none."""
    command = ["ip", "-j", "-n", netns, family, "addr", "show", "dev", ifname, "scope", "global"]
    found = subprocess.run(command, capture_output=True, text=True)
    infos = [info for link in (json.loads(found.stdout or "[]")) for info in link["addr_info"]]
    return f"{infos[0]['local']}/{infos[0]['prefixlen']}" if infos else None


def _add(flavour: Flavour, net: Net, netns: str, **kwargs: object) -> dict:
    reply = call(flavour, net, "ADD", f"{netns}-id", netns, **kwargs)
    assert reply.returncode == 0, reply.stdout + reply.stderr
    return reply.result


def _owners(net: Net) -> str:
    """Everything the address store of a network says (file names and contents)."""
    store = net.data_dir / net.name
    if not store.is_dir():
        return ""
    addresses = (p for p in sorted(store.iterdir()) if p.name[0].isdigit() or ":" in p.name)  # IPv4, IPv6
    return "\n".join(f"{p.name}: {p.read_text()}" for p in addresses)


# --- spec conformance, each scenario against both plugins ---------------------------------------


@pytest.mark.kernel
@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0"])
def test_add_result_matches_the_reference_field_by_field(lab: Lab, rendered: Path, version: str) -> None:
    shapes = {}
    for name in FLAVOURS:
        with scenario(f"ADD result {version}: fields, MACs, address", name):
            flavour = _flavour(name, rendered)
            net = lab.net(name[:3])
            netns = lab.netns(f"{name[:3]}-c")
            result = _add(flavour, net, netns, config=flavour.config(net, version))
            assert result["cniVersion"] == version
            bridge, host_end, container = result["interfaces"]
            host_macs = macs(net.host)
            assert bridge == {"name": net.bridge, "mac": host_macs[net.bridge]}
            assert host_end == {"name": host_end["name"], "mac": host_macs[host_end["name"]]}
            assert container == {"name": "eth0", "mac": macs(netns)["eth0"], "sandbox": f"/run/netns/{netns}"}
            (ip,) = result["ips"]
            assert ip["interface"] == 2 and ip["gateway"] == net.gateway
            assert ("version" in ip) == (version != "1.0.0")
            assert ip["address"] == _address(netns) == f"{net.range_start}/24"
            assert result["routes"] == [{"dst": "0.0.0.0/0", "gw": net.gateway}]
            assert result["dns"] == {}
            shapes[name] = shape(result)
    assert shapes["nsgen-bridge"] == shapes["reference"]
    CONFORMANCE[f"ADD result {version}: same shape as reference"] = {"nsgen-bridge": "pass", "reference": "pass"}


@pytest.mark.kernel
def test_two_namespaces_ping_each_other(lab: Lab, flavour: Flavour) -> None:
    with scenario("two netns ping each other", flavour.name):
        net = lab.net()
        a, b = lab.netns("a"), lab.netns("b")
        addresses = {ns: _add(flavour, net, ns)["ips"][0]["address"].split("/")[0] for ns in (a, b)}
        for source, target in ((a, b), (b, a)):
            ping = run("ip", "netns", "exec", source, "ping", "-c", "1", "-W", "2", addresses[target])
            assert ping.returncode == 0, ping.stdout + ping.stderr


@pytest.mark.kernel
def test_check_with_prev_result(lab: Lab, flavour: Flavour) -> None:
    with scenario("CHECK with prevResult; then a flushed address", flavour.name) as notes:
        net = lab.net()
        netns = lab.netns("c")
        result = _add(flavour, net, netns)
        config = {**flavour.config(net), "prevResult": result}
        check = call(flavour, net, "CHECK", f"{netns}-id", netns, config=config)
        assert (check.returncode, check.stdout) == (0, ""), check.stdout + check.stderr
        subprocess.run(["ip", "-n", netns, "addr", "flush", "dev", "eth0"], check=True)
        broken = call(flavour, net, "CHECK", f"{netns}-id", netns, config=config)
        assert broken.returncode == 1 and broken.result["code"], broken.stdout
        notes.append(f"code {broken.result['code']} after flush")


@pytest.mark.kernel
def test_del_twice(lab: Lab, flavour: Flavour) -> None:
    with scenario("DEL, then DEL again", flavour.name):
        net = lab.net()
        netns = lab.netns("c")
        _add(flavour, net, netns)
        assert f"{netns}-id" in _owners(net)
        for _ in range(2):
            reply = call(flavour, net, "DEL", f"{netns}-id", netns)
            assert (reply.returncode, reply.stdout) == (0, ""), reply.stdout + reply.stderr
        assert "eth0" not in macs(netns)
        assert f"{netns}-id" not in _owners(net)


@pytest.mark.kernel
def test_del_after_the_netns_is_gone(lab: Lab, flavour: Flavour) -> None:
    with scenario("DEL after netns gone; DEL with empty CNI_NETNS", flavour.name):
        net = lab.net()
        netns = lab.netns("c")
        _add(flavour, net, netns)
        subprocess.run(["ip", "netns", "del", netns], check=True)
        gone = call(flavour, net, "DEL", f"{netns}-id", netns)
        assert (gone.returncode, gone.stdout) == (0, ""), gone.stdout + gone.stderr
        empty = call(flavour, net, "DEL", f"{netns}-id", None)
        assert (empty.returncode, empty.stdout) == (0, ""), empty.stdout + empty.stderr
        assert f"{netns}-id" not in _owners(net)


ERRORS = {
    "bad JSON on stdin": ({"config": "{not json"}, 6),
    "unsupported cniVersion 9.9.9": ({"version": "9.9.9"}, 1),
    "missing CNI_IFNAME": ({"ifname": None}, 4),
}


@pytest.mark.kernel
@pytest.mark.parametrize("case", ERRORS)
def test_errors_have_the_spec_code(lab: Lab, flavour: Flavour, case: str) -> None:
    change, code = ERRORS[case]
    with scenario(f"error: {case} -> code {code}", flavour.name):
        net = lab.net()
        netns = lab.netns("c")
        config = change.get("config") or flavour.config(net, change.get("version", "1.0.0"))
        reply = call(flavour, net, "ADD", f"{netns}-id", netns, ifname=change.get("ifname", "eth0"), config=config)
        assert reply.returncode == 1
        assert reply.result["code"] == code and reply.result["msg"], reply.stdout
        if flavour.name == "nsgen-bridge":
            assert set(reply.result) <= {"cniVersion", "code", "msg", "details"} and reply.result["cniVersion"]
        assert "eth0" not in macs(netns) and not _owners(net)


@pytest.mark.kernel
def test_twenty_concurrent_adds_get_twenty_addresses(lab: Lab, flavour: Flavour) -> None:
    with scenario("20 concurrent ADDs: 20 distinct addresses", flavour.name) as notes:
        net = lab.net()
        namespaces = [lab.netns(f"c{i}") for i in range(20)]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(namespaces)) as pool:
            replies = list(pool.map(lambda ns: call(flavour, net, "ADD", f"{ns}-id", ns), namespaces))
        notes.append(f"{time.monotonic() - started:.1f} s")
        assert [r.returncode for r in replies] == [0] * 20, [r.stdout for r in replies if r.returncode]
        addresses = [r.result["ips"][0]["address"] for r in replies]
        assert len(set(addresses)) == 20
        assert addresses == [_address(ns) for ns in namespaces]


@pytest.mark.kernel
def test_range_exhaustion_is_a_clear_error(lab: Lab, flavour: Flavour) -> None:
    with scenario("range of 2 exhausted: 3rd ADD fails", flavour.name) as notes:
        net = lab.net(range_start="10.201.0.10", range_end="10.201.0.11")
        first, second, third = (lab.netns(f"c{i}") for i in range(3))
        _add(flavour, net, first)
        _add(flavour, net, second)
        reply = call(flavour, net, "ADD", f"{third}-id", third)
        assert reply.returncode == 1 and reply.result["code"], reply.stdout
        notes.append(f"code {reply.result['code']}: {reply.result['msg'][:60]}")
        if flavour.name == "nsgen-bridge":
            assert "no free address left in 10.201.0.10-10.201.0.11" in reply.result["msg"]
            assert "eth0" not in macs(third)  # the failed ADD undid its steps
        elif "eth0" in macs(third):
            notes.append("left eth0 in the netns")
        # as the spec asks of runtimes: DEL after a failed ADD; then free an address and ADD again
        call(flavour, net, "DEL", f"{third}-id", third)
        call(flavour, net, "DEL", f"{first}-id", first)
        assert _add(flavour, net, third)["ips"][0]["address"] == "10.201.0.10/24"


@pytest.mark.kernel
def test_fixed_address_from_cni_args(lab: Lab, flavour: Flavour) -> None:
    with scenario("CNI_ARGS IP=10.201.0.42", flavour.name):
        net = lab.net()
        netns = lab.netns("c")
        result = _add(flavour, net, netns, cni_args="IgnoreUnknown=1;IP=10.201.0.42")
        assert result["ips"][0]["address"] == _address(netns) == "10.201.0.42/24"


@pytest.mark.kernel
def test_version_lists_the_supported_versions(lab: Lab, flavour: Flavour) -> None:
    with scenario("VERSION: 0.3.1, 0.4.0, 1.0.0 supported", flavour.name):
        reply = call(flavour, lab.net(), "VERSION", config={"cniVersion": "1.0.0"})
        assert reply.returncode == 0
        assert {"0.3.1", "0.4.0", "1.0.0"} <= set(reply.result["supportedVersions"])


@pytest.mark.kernel
def test_a_busy_store_says_try_again_later(lab: Lab, rendered: Path) -> None:
    CONFORMANCE.setdefault("store lock held: code 11", {})["reference"] = "n/a"
    with scenario("store lock held: code 11", "nsgen-bridge"):
        flavour = _flavour("nsgen-bridge", rendered)
        net = lab.net()
        netns = lab.netns("c")
        (net.data_dir / net.name).mkdir(parents=True)
        with open(net.data_dir / net.name / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            reply = call(flavour, net, "ADD", f"{netns}-id", netns, env={"NSGEN_CNI_LOCK_WAIT": "1"})
        assert reply.returncode == 1 and reply.result["code"] == 11, reply.stdout


@pytest.mark.kernel
def test_only_the_container_end_enters_the_netns_as_eth0(lab: Lab, rendered: Path) -> None:
    flavour = _flavour("nsgen-bridge", rendered)
    net = lab.net()
    netns = lab.netns("c")
    result = _add(flavour, net, netns)
    host_end = cni.host_interface(f"{netns}-id", "eth0")
    assert result["interfaces"][1]["name"] == host_end
    assert set(macs(net.host)) == {"lo", net.bridge, host_end}
    assert set(macs(netns)) == {"lo", "eth0"}
    assert ip_json("link", "show", "dev", "lo", netns=netns)[0]["operstate"] == "UNKNOWN"  # lo is up


# --- podman's default network: isGateway, ipMasq, hairpinMode, MACs, routes (issue 30) -------------------


def _nat(net: Net) -> list[str]:
    """The nat POSTROUTING rules of the network's host netns (iptables -S; the comments unquoted)."""
    out = run("ip", "netns", "exec", net.host, "iptables", "-w", "-t", "nat", "-S", "POSTROUTING").stdout
    return [line.replace('"', "") for line in out.splitlines() if line.startswith("-A")]


def _sysctl(netns: str, key: str) -> str:
    return run("ip", "netns", "exec", netns, "sysctl", "-n", key).stdout.strip()


def _nsgen(rendered: Path) -> Flavour:
    return _flavour("nsgen-bridge", rendered)


@pytest.mark.kernel
def test_the_bridge_keeps_its_own_mac_as_ports_come_and_go(lab: Lab, rendered: Path) -> None:
    flavour, net = _nsgen(rendered), lab.net()
    mac = cni.stable_mac(net.name, net.bridge)
    assert int(mac[:2], 16) & 3 == 2  # locally administered, unicast
    seen = set()
    for ns in (lab.netns(f"c{i}") for i in range(4)):
        result = _add(flavour, net, ns)
        assert result["interfaces"][0] == {"name": net.bridge, "mac": mac}
        seen.add(macs(net.host)[net.bridge])
        call(flavour, net, "DEL", f"{ns}-id", ns)
        seen.add(macs(net.host)[net.bridge])
    assert seen == {mac}


@pytest.mark.kernel
def test_the_port_forwards_as_soon_as_add_returns(lab: Lab, rendered: Path) -> None:
    """The host end joins the bridge with both ends up, as the reference bridge does it: the port is forwarding when
    it joins, not once the kernel's deferred carrier event reaches the bridge."""
    flavour, net = _nsgen(rendered), lab.net()
    for ns in (lab.netns(f"c{i}") for i in range(6)):
        port = _add(flavour, net, ns)["interfaces"][1]["name"]
        assert "state forwarding" in run("bridge", "-n", net.host, "link", "show", "dev", port).stdout


@pytest.mark.kernel
def test_a_second_network_leaves_the_default_route_alone(lab: Lab, rendered: Path) -> None:
    flavour = _nsgen(rendered)
    first, second = lab.net("a"), lab.net("b", subnet="10.202.0.0/24", gateway="10.202.0.1",
                                          range_start="10.202.0.10", range_end="10.202.0.60")
    netns = lab.netns("c")
    results = [_add(flavour, first, netns), _add(flavour, second, netns, ifname="eth1")]
    assert results[0]["routes"] == [{"dst": "0.0.0.0/0", "gw": first.gateway}] and results[1]["routes"] == []
    defaults = ip_json("route", "show", "default", netns=netns)
    assert [(r["gateway"], r["dev"]) for r in defaults] == [(first.gateway, "eth0")]
    for net, result, ifname in ((first, results[0], "eth0"), (second, results[1], "eth1")):
        config = {**flavour.config(net), "prevResult": result}
        check = call(flavour, net, "CHECK", f"{netns}-id", netns, ifname=ifname, config=config)
        assert (check.returncode, check.stdout) == (0, ""), check.stdout + check.stderr
        ping = _ping(netns, net.gateway)
        assert ping.returncode == 0, ping.stdout


@pytest.mark.kernel
def test_a_gateway_turns_forwarding_on_and_leaves_it_on(lab: Lab, rendered: Path) -> None:
    flavour = _nsgen(rendered)
    net, quiet = lab.net("g", **DUAL_STACK), lab.net("q")
    keys = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
    assert [_sysctl(net.host, key) for key in keys] == ["0", "0"]  # a new netns's, as Debian's default
    netns = lab.netns("c")
    _add(flavour, net, netns)
    assert [_sysctl(net.host, key) for key in keys] == ["1", "1"]
    assert call(flavour, net, "DEL", f"{netns}-id", netns).returncode == 0
    assert [_sysctl(net.host, key) for key in keys] == ["1", "1"]  # left on, as the reference bridge does
    # isGateway false: no address on the bridge, no default route, forwarding untouched
    other = lab.netns("d")
    result = _add(flavour, quiet, other, config={**flavour.config(quiet), "isGateway": False})
    assert result["routes"] == [] and not ip_json("route", "show", "default", netns=other)
    assert not [a for link in ip_json("-4", "addr", "show", "dev", quiet.bridge, netns=quiet.host) for a in link["addr_info"]]
    assert _sysctl(quiet.host, "net.ipv4.ip_forward") == "0"


@pytest.mark.kernel
def test_masquerade_reaches_a_machine_with_no_route_back_and_goes_exactly(lab: Lab, rendered: Path) -> None:
    flavour = _nsgen(rendered)
    net = lab.net(**DUAL_STACK)
    outside = lab.netns("out")  # another machine on the host's LAN, with no route to the containers
    run("ip", "-n", outside, "link", "add", "lan0", "type", "veth", "peer", "name", "lan0", "netns", net.host,
        check=True)
    for netns, address in ((net.host, "198.51.100.1/24"), (outside, "198.51.100.2/24")):
        run("ip", "-n", netns, "addr", "add", address, "dev", "lan0", check=True)
        run("ip", "-n", netns, "link", "set", "dev", "lan0", "up", check=True)
    foreign = ["-A", "POSTROUTING", "-s", "10.9.9.0/24", "-j", "MASQUERADE"]  # a rule of someone else's
    run("ip", "netns", "exec", net.host, "iptables", "-w", "-t", "nat", *foreign, check=True)
    a, b, quiet = lab.netns("a"), lab.netns("b"), lab.netns("q")
    addresses = {ns: _add(flavour, net, ns)["ips"][0]["address"].split("/")[0] for ns in (a, b)}
    rules = _nat(net)
    for ns, address in addresses.items():
        comment = f"nsgen-bridge:{net.name}:{cni.host_interface(f'{ns}-id', 'eth0')}"
        assert f"-A POSTROUTING -s {address}/32 ! -d {net.subnet} -m comment --comment {comment} -j MASQUERADE" in rules
    assert _ping(a, "198.51.100.2").returncode == 0
    _add(flavour, net, quiet, config={**flavour.config(net), "ipMasq": False})
    assert len(_nat(net)) == 3 and _ping(quiet, "198.51.100.2").returncode != 0
    assert call(flavour, net, "DEL", f"{a}-id", a).returncode == 0
    assert _nat(net) == [" ".join(foreign), *[r for r in rules if addresses[b] in r]]
    _gc(flavour, net, [quiet])  # b is no valid attachment: its rules go; the foreign rule stays
    assert _nat(net) == [" ".join(foreign)]
    six = run("ip", "netns", "exec", net.host, "ip6tables", "-w", "-t", "nat", "-S", "POSTROUTING").stdout
    assert "nsgen-bridge" not in six


@pytest.mark.kernel
def test_hairpin_is_on_unless_hairpin_mode_is_false(lab: Lab, rendered: Path) -> None:
    flavour, net = _nsgen(rendered), lab.net()
    for tag, hairpin in (("on", True), ("off", False)):
        netns = lab.netns(tag)
        _add(flavour, net, netns, config={**flavour.config(net), "hairpinMode": hairpin})
        port = ip_json("-d", "link", "show", "dev", cni.host_interface(f"{netns}-id", "eth0"), netns=net.host)[0]
        assert port["linkinfo"]["info_slave_data"]["hairpin"] is hairpin


@pytest.mark.kernel
def test_the_mac_from_runtime_config_or_cni_args(lab: Lab, rendered: Path) -> None:
    flavour, net = _nsgen(rendered), lab.net()
    from_args, from_config = lab.netns("a"), lab.netns("b")
    result = _add(flavour, net, from_args, cni_args="IgnoreUnknown=1;MAC=02:42:0a:c9:00:0a")
    assert result["interfaces"][2]["mac"] == macs(from_args)["eth0"] == "02:42:0a:c9:00:0a"
    config = {**flavour.config(net), "runtimeConfig": {"mac": "02:42:0a:c9:00:0b"}}
    _add(flavour, net, from_config, cni_args="MAC=02:42:0a:c9:00:0c", config=config)  # runtimeConfig comes first
    assert macs(from_config)["eth0"] == "02:42:0a:c9:00:0b"
    bad = call(flavour, net, "ADD", "bad-id", lab.netns("c"), cni_args="MAC=03:00:00:00:00:01")  # multicast
    assert bad.returncode == 1 and bad.result["code"] == 7, bad.stdout


@pytest.mark.kernel
def test_a_second_add_of_the_same_attachment_is_refused(lab: Lab, flavour: Flavour) -> None:
    with scenario("ADD of the same id+ifname from another netns: refused", flavour.name) as notes:
        net = lab.net()
        first, second = lab.netns("a"), lab.netns("b")
        address = _add(flavour, net, first)["ips"][0]["address"]
        again = call(flavour, net, "ADD", f"{first}-id", second)
        assert again.returncode == 1 and again.result["code"], again.stdout
        notes.append(f"code {again.result['code']}")
        if flavour.name == "nsgen-bridge":
            assert "eth0" not in macs(second)
        elif "eth0" in macs(second):
            notes.append("left eth0 in the second netns")
        assert _address(first) == address
        assert _ping(net.host, address).returncode == 0


def _reference(name: str) -> Flavour:
    return Flavour(name, REFERENCE_DIR / name, str(REFERENCE_DIR))


@pytest.mark.kernel
def test_reference_plugins_chained_after_the_bridge(lab: Lab, flavour: Flavour) -> None:
    """portmap, tuning and bandwidth after the bridge plugin, as a conflist chains them: ADD, CHECK, DEL. portmap
    1.1.1's own CHECK fails after either bridge plugin (it looks for its IPv4 rules among the IPv6 ones: seen
    with both), so CHECK runs the others."""
    with scenario("chained portmap, tuning, bandwidth: ADD, CHECK, DEL", flavour.name):
        net = lab.net()
        netns = lab.netns("c")
        mappings = {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
        portmap = (_reference("portmap"), {"type": "portmap", "capabilities": {"portMappings": True},
                                           "runtimeConfig": mappings})
        others = [
            (_reference("tuning"), {"type": "tuning", "mtu": 1400}),
            (_reference("bandwidth"), {"type": "bandwidth", "ingressRate": 10_000_000, "ingressBurst": 100_000}),
        ]
        links = [(flavour, flavour.config(net)), portmap, *others]
        added = chain(links, net, "ADD", netns)
        host_end = added["interfaces"][1]["name"]
        assert [i["name"] for i in added["interfaces"]] == [net.bridge, host_end, "eth0"]
        assert ip_json("link", "show", "dev", "eth0", netns=netns)[0]["mtu"] == 1400
        assert "tbf" in run("tc", "-n", net.host, "qdisc", "show", "dev", host_end).stdout
        dnat = run("ip", "netns", "exec", net.host, "iptables", "-w", "-t", "nat", "-S").stdout
        assert f"--to-destination {added['ips'][0]['address'].split('/')[0]}:80" in dnat
        chain([links[0], *others], net, "CHECK", netns, added=added)
        chain(links, net, "DEL", netns, added=added)
        left = run("ip", "netns", "exec", net.host, "iptables", "-w", "-t", "nat", "-S").stdout
        assert "CNI-DN-" not in left and "nsgen-bridge" not in left, left
        assert f"{netns}-id" not in _owners(net) and host_end not in macs(net.host)


# --- spec 1.1.0 (STATUS, GC) and dual-stack --------------------------------------------------------

DUAL_STACK = {"subnet6": "fd00:201::/64", "gateway6": "fd00:201::1", "range_start6": "fd00:201::10",
              "range_end6": "fd00:201::60"}


def _ping(source: str, address: str) -> subprocess.CompletedProcess:
    return run("ip", "netns", "exec", source, "ping", "-c", "1", "-W", "2", address.split("/")[0])


@pytest.mark.kernel
def test_dual_stack_gives_both_families(lab: Lab, flavour: Flavour) -> None:
    with scenario("dual-stack: ADD lists both, ping -4/-6, CHECK, DEL", flavour.name):
        net = lab.net(**DUAL_STACK)
        a, b = lab.netns("a"), lab.netns("b")
        results = {ns: _add(flavour, net, ns) for ns in (a, b)}
        for ns, result in results.items():
            ip4, ip6 = result["ips"]
            assert ip4["address"] == _address(ns) and ip6["address"] == _address(ns, family="-6")
            assert (ip6["interface"], ip6["gateway"]) == (2, net.gateway6) and ip6["address"].endswith("/64")
            assert {"dst": "::/0", "gw": net.gateway6} in result["routes"]
        for source, target in ((a, b), (b, a)):
            for ip in results[target]["ips"]:
                ping = _ping(source, ip["address"])
                assert ping.returncode == 0, ping.stdout + ping.stderr
        check = call(flavour, net, "CHECK", f"{a}-id", a, config={**flavour.config(net), "prevResult": results[a]})
        assert (check.returncode, check.stdout) == (0, ""), check.stdout + check.stderr
        assert call(flavour, net, "DEL", f"{a}-id", a).returncode == 0
        assert f"{a}-id" not in _owners(net) and _owners(net).count(f"{b}-id") == 2


def _nsgen_only(name: str, rendered: Path) -> Flavour:
    """nsgen-bridge, for a scenario the reference plugins (spec 1.0.0) cannot run: its row says so."""
    CONFORMANCE.setdefault(name, {})["reference"] = "n/a (no 1.1.0)"
    return _flavour("nsgen-bridge", rendered)


def _gc(flavour: Flavour, net: Net, valid: list[str] | None, **config: object) -> None:
    """GC with these netns as the valid attachments (no key at all for None); it must succeed silently."""
    if valid is not None:
        config["cni.dev/valid-attachments"] = [{"containerID": f"{ns}-id", "ifname": "eth0"} for ns in valid]
    reply = call(flavour, net, "GC", ifname=None, config={**flavour.config(net, "1.1.0"), **config})
    assert (reply.returncode, reply.stdout) == (0, ""), reply.stdout + reply.stderr


@pytest.mark.kernel
def test_gc_removes_what_is_not_valid_and_nothing_else(lab: Lab, rendered: Path) -> None:
    name = "GC: keeps the valid, frees the rest; idempotent; per network"
    with scenario(name, "nsgen-bridge"):
        flavour = _nsgen_only(name, rendered)
        net = lab.net(**DUAL_STACK)
        valid, stale = lab.netns("valid"), lab.netns("stale")
        kept = _add(flavour, net, valid, config=flavour.config(net, "1.1.0"))
        _add(flavour, net, stale, config=flavour.config(net, "1.1.0"))
        _gc(flavour, net, [valid])
        assert f"{stale}-id" not in _owners(net) and _owners(net).count(f"{valid}-id") == 2
        assert cni.host_interface(f"{stale}-id", "eth0") not in macs(net.host) and "eth0" not in macs(stale)
        for ip in kept["ips"]:
            assert _ping(net.host, ip["address"]).returncode == 0
        state = (_owners(net), macs(net.host))
        _gc(flavour, net, [valid])  # again: nothing left to do
        _gc(flavour, net, None, name=f"{lab.prefix}other")  # another network's GC, with none valid
        _gc(flavour, net, None, disableGC=True)
        assert (_owners(net), macs(net.host)) == state
        _gc(flavour, net, None)  # no cni.dev/valid-attachments: none is valid
        assert not _owners(net) and set(macs(net.host)) == {"lo", net.bridge} and "eth0" not in macs(valid)


@pytest.mark.kernel
def test_gc_goes_on_past_a_failure_and_reports_it(lab: Lab, rendered: Path) -> None:
    name = "GC: one reservation it cannot release -> code 999, the rest done"
    with scenario(name, "nsgen-bridge"):
        flavour = _nsgen_only(name, rendered)
        net = lab.net()
        stuck, other = lab.netns("stuck"), lab.netns("other")
        stuck_address = _add(flavour, net, stuck)["ips"][0]["address"].split("/")[0]
        _add(flavour, net, other)
        stuck_file = net.data_dir / net.name / stuck_address
        if run("chattr", "+i", stuck_file).returncode != 0:
            pytest.skip(f"no immutable files on the file system of {stuck_file}")
        try:
            reply = call(flavour, net, "GC", ifname=None, config=flavour.config(net, "1.1.0"))
        finally:
            run("chattr", "-i", stuck_file)
        assert reply.returncode == 1 and reply.result["code"] == 999, reply.stdout
        assert reply.result["msg"] == f"GC left 1 stale resources of the network {net.name}"
        assert reply.result["details"] == f"could not release {stuck_file}"
        assert _owners(net) == f"{stuck_address}: {stuck}-id\neth0\n" and set(macs(net.host)) == {"lo", net.bridge}


@pytest.mark.kernel
def test_status_says_whether_an_add_can_succeed(lab: Lab, rendered: Path) -> None:
    name = "STATUS: ready; full range, taken bridge -> 50 (51 if attached)"
    with scenario(name, "nsgen-bridge") as notes:
        flavour = _nsgen_only(name, rendered)
        net = lab.net(range_start="10.201.0.10", range_end="10.201.0.11")
        config = flavour.config(net, "1.1.0")

        def status(network: Net = net, **changes: object) -> Reply:
            return call(flavour, network, "STATUS", ifname=None, config={**config, **changes})

        ready = status()
        assert (ready.returncode, ready.stdout) == (0, ""), ready.stdout + ready.stderr
        for ns in (lab.netns("c0"), lab.netns("c1")):
            _add(flavour, net, ns, config=config)
        full = status()
        assert full.returncode == 1 and full.result["code"] == 50, full.stdout
        assert full.result["msg"] == f"no free address left in 10.201.0.10-10.201.0.11 of the network {net.name}"
        notes.append(full.result["msg"][:40])
        for tag, code in (("t", 50), ("u", 51)):  # 51: containers are attached, and their bridge is gone
            taken = lab.net(tag)
            taken_config = {**config, "name": taken.name, "bridge": taken.bridge}
            if code == 51:
                _add(flavour, taken, lab.netns(f"{tag}-c"), config=taken_config)
                subprocess.run(["ip", "-n", taken.host, "link", "del", taken.bridge], check=True)
            subprocess.run(["ip", "-n", taken.host, "link", "add", taken.bridge, "type", "veth", "peer", "name", "tp"],
                           check=True)
            not_bridge = status(taken, **taken_config)
            assert not_bridge.result["code"] == code, not_bridge.stdout
            assert not_bridge.result["msg"] == f"{taken.bridge} exists and is not a bridge"
        old = status(cniVersion="1.0.0")
        assert old.result["code"] == 1 and "STATUS needs cniVersion 1.1.0" in old.result["details"]
        version = call(flavour, net, "VERSION", config={"cniVersion": "1.1.0"})
        assert "1.1.0" in version.result["supportedVersions"]


# --- the other generated files ---------------------------------------------------------------------


def test_dummy_logs_what_the_runtime_sends(tmp_path: Path, rendered: Path) -> None:
    log = tmp_path / "dummy.log"
    base = {"PATH": "/usr/bin:/bin", "NSGEN_CNI_DUMMY_LOG": str(log), "CNI_CONTAINERID": "demo", "CNI_IFNAME": "eth0"}
    config = json.dumps({"cniVersion": "0.4.0", "name": "demo", "type": "dummy"})
    replies = {
        command: subprocess.run([rendered / "dummy"], input=config, env={**base, "CNI_COMMAND": command},
                                capture_output=True, text=True)
        for command in ("ADD", "DEL", "VERSION")
    }
    assert all(reply.returncode == 0 for reply in replies.values())
    assert json.loads(replies["ADD"].stdout) == {"cniVersion": "0.4.0", "interfaces": [], "ips": [], "dns": {}}
    assert replies["DEL"].stdout == ""
    assert "1.0.0" in json.loads(replies["VERSION"].stdout)["supportedVersions"]
    text = log.read_text()
    assert text.count("CNI_CONTAINERID=demo\n") == 3 and "CNI_COMMAND=DEL\n" in text and config in text


def test_install_sh_installs_under_a_prefix(tmp_path: Path, rendered: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/cni/net.d").mkdir(parents=True)
    (root / "etc/cni/net.d/00-other.conflist").write_text("{}")
    result = run(rendered / "install.sh", "--prefix", root)
    assert result.returncode == 0, result.stderr
    plugin = root / "opt/cni/bin/nsgen-bridge"
    assert plugin.read_bytes() == (rendered / "nsgen-bridge").read_bytes() and plugin.stat().st_mode & 0o777 == 0o755
    assert (root / "etc/cni/net.d/10-nsgen-net.conflist").read_text() == (rendered / "nsgen-net.conflist").read_text()
    assert "00-other.conflist sorts first" in result.stderr


@pytest.mark.skipif(not (REFERENCE_DIR / "portmap").exists(), reason="needs containernetworking-plugins")
@pytest.mark.parametrize("portmap", [True, False], ids=["portmap", "no-portmap"])
def test_install_lists_only_the_versions_every_plugin_supports(tmp_path: Path, portmap: bool) -> None:
    """Debian's portmap 1.1.1 speaks up to 1.0.0: a runtime picking the highest of cniVersions must not get 1.1.0."""
    writing.write(cni.render_cni(cni.CniOptions(cni_version="1.1.0", portmap=portmap)), tmp_path / "out", cni.EXECUTABLES)
    result = run(tmp_path / "out" / "install.sh", "--prefix", tmp_path / "root")
    assert result.returncode == 0, result.stderr
    installed = json.loads((tmp_path / "root/etc/cni/net.d/10-nsgen-net.conflist").read_text())
    expected = ["1.0.0"] if portmap else ["1.0.0", "1.1.0"]
    assert (installed["cniVersion"], installed["cniVersions"]) == ("1.0.0", expected)
    assert [plugin["type"] for plugin in installed["plugins"]] == ["nsgen-bridge", *(["portmap"] if portmap else [])]
    if portmap:
        assert (tmp_path / "root/opt/cni/bin/portmap").resolve() == (REFERENCE_DIR / "portmap").resolve()


@pytest.mark.kernel
def test_install_leaves_portmap_out_where_it_is_not_installed(tmp_path: Path, rendered: Path) -> None:
    hide = "; ".join(f"mount -t tmpfs none {d}" for d in ("/usr/lib/cni", "/usr/libexec/cni") if Path(d).is_dir())
    result = run("unshare", "-m", "--propagation", "private", "bash", "-c",
                 f'{hide}; "$0" --prefix "$1"', rendered / "install.sh", tmp_path / "root")
    assert result.returncode == 0, result.stderr
    installed = json.loads((tmp_path / "root/etc/cni/net.d/10-nsgen-net.conflist").read_text())
    assert [plugin["type"] for plugin in installed["plugins"]] == ["nsgen-bridge"]
    assert "apt-get install containernetworking-plugins" in result.stderr


CONFIGS = {  # the config on stdin -> whether nsgen-bridge decodes it (it then finds no netns: code 3) or not (6)
    "nested, escapes, spaces": ('{"cniVersion": "1.0.0", "name": "n", "bridge": "b", "subnet": "10.1.0.0/24",'
                                ' "gateway": "10.1.0.1", "rangeStart": "10.1.0.2", "rangeEnd": "10.1.0.9",\n'
                                ' "note": "a \\"quoted\\" \\\\ {word}", "dns": {"nameservers": ["10.1.0.1"], "x": []},'
                                ' "runtimeConfig": {"portMappings": [{"hostPort": 80}], "mac": "02:00:00:00:00:01"},'
                                ' "n": -1.5e3, "ok": true, "none": null}\n', 3),
    "not an object": ("[1, 2]", 6),
    "two objects": ('{"cniVersion": "1.0.0"} {}', 6),
    "a trailing comma": ('{"cniVersion": "1.0.0",}', 6),
    "no colon": ('{"cniVersion" "1.0.0"}', 6),
    "unclosed": ('{"cniVersion": "1.0.0", "dns": {"a": [1}', 6),
    "not a number": ('{"cniVersion": "1.0.0", "n": 1.2.3}', 6),
    "a bad escape": ('{"cniVersion": "1.0.0", "s": "a\\qb"}', 6),
}


@pytest.mark.parametrize("case", CONFIGS)
def test_the_config_is_read_as_json(tmp_path: Path, rendered: Path, case: str) -> None:
    config, code = CONFIGS[case]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0",
           "CNI_PATH": "/opt/cni/bin", "CNI_NETNS": str(tmp_path / "none"), "NSGEN_CNI_DATA_DIR": str(tmp_path)}
    reply = subprocess.run([rendered / "nsgen-bridge"], env=env, input=config, capture_output=True, text=True)
    assert (reply.returncode, json.loads(reply.stdout)["code"]) == (1, code), reply.stdout + reply.stderr


def test_version_is_a_fixed_answer_without_jq(tmp_path: Path, rendered: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "bash").symlink_to(shutil.which("bash"))
    reply = subprocess.run([rendered / "nsgen-bridge"], env={"PATH": str(tmp_path / "bin"), "CNI_COMMAND": "VERSION"},
                           input='{"cniVersion": "1.0.0"}', capture_output=True, text=True)
    assert (reply.returncode, reply.stdout) == (0, cni.version_result() + "\n"), reply.stderr
    assert json.loads(reply.stdout)["supportedVersions"] == list(cni.SUPPORTED_VERSIONS)


def test_each_default_has_a_flag_to_turn_it_off(tmp_path: Path) -> None:
    result = nsgen("cni", "--no-gateway", "--no-ip-masq", "--no-hairpin", "--no-portmap", "-o", tmp_path / "cni")
    assert result.returncode == 0, result.stderr
    (plugin,) = json.loads((tmp_path / "cni" / "nsgen-net.conflist").read_text())["plugins"]
    assert (plugin["isGateway"], plugin["ipMasq"], plugin["hairpinMode"]) == (False, False, False)
    assert "--no-portmap --no-gateway --no-ip-masq --no-hairpin" in (tmp_path / "cni" / "nsgen-bridge").read_text()
    defaults = json.loads(cni.render_cni(cni.CniOptions())["nsgen-net.conflist"])["plugins"]
    assert [p["type"] for p in defaults] == ["nsgen-bridge", "portmap"] and defaults[0]["capabilities"] == {"mac": True}
    assert (defaults[0]["isGateway"], defaults[0]["ipMasq"], defaults[0]["hairpinMode"]) == (True, True, True)


def test_committed_generated_cni_is_current() -> None:
    stale = writing.differences(cni.render_cni(cni.CniOptions()), GENERATED_CNI, cni.EXECUTABLES)
    assert not stale, f"generated/cni is stale ({', '.join(stale)}): run `nsgen cni -o generated/cni`"


def test_output_is_byte_identical_and_headed() -> None:
    files = cni.render_cni(cni.CniOptions())
    assert files == cni.render_cni(cni.CniOptions())
    assert sorted(files) == [
        "containerd/config.toml", "containerd/run-container.sh", "dummy", "install.sh", "nsgen-bridge",
        "nsgen-net.conflist",
    ]
    for name in SHELL_SCRIPTS:
        lines = files[name].splitlines()
        assert lines[0] == "#!/usr/bin/env bash"
        assert f"# Generated by nsgen {__version__} for the CNI network 'nsgen-net', by" in lines
        assert f"#   {cni.CniOptions().command_line()}" in lines
        assert "set -Eeuo pipefail" in lines
    assert json.loads(files["nsgen-net.conflist"])["plugins"][0]["type"] == "nsgen-bridge"


OTHER = cni.CniOptions("lab.net_2", "br-x", "172.20.0.0/16", "172.20.0.1", "172.20.1.0-172.20.1.255", "0.4.0", True,
                       subnet6="fd00:20::/64")


@pytest.mark.parametrize("options", [cni.CniOptions(), OTHER], ids=["default", "other"])
def test_every_script_passes_shellcheck(tmp_path: Path, options: cni.CniOptions) -> None:
    writing.write(cni.render_cni(options), tmp_path / "out", cni.EXECUTABLES)
    result = shellcheck(*(tmp_path / "out" / name for name in SHELL_SCRIPTS), options=["--severity=style"])
    assert result.returncode == 0, result.stdout
    conflist = json.loads((tmp_path / "out" / "lab.net_2.conflist").read_text()) if options is OTHER else None
    if conflist:
        assert [plugin["type"] for plugin in conflist["plugins"]] == ["nsgen-bridge", "portmap"]


BAD_OPTIONS = {
    "--name": {"name": "$(reboot)"},
    "--bridge": {"bridge": "a-very-long-bridge"},
    "--subnet": {"subnet": "10.0.0.1/24"},
    "--gateway": {"gateway": "10.244.1.1"},
    "--range": {"range": "10.244.0.20-10.244.0.10"},
    "--cni-version": {"cni_version": "0.2.0"},
}


@pytest.mark.parametrize("field", BAD_OPTIONS)
def test_bad_options_are_one_problem_each(field: str) -> None:
    with pytest.raises(TopologyError) as error:
        cni.validate(cni.CniOptions(**BAD_OPTIONS[field]))
    assert [(p.source, p.field) for p in error.value.problems] == [("nsgen cni", field)]


def test_gateway_inside_the_range_is_refused() -> None:
    with pytest.raises(TopologyError, match="--gateway: 10.244.0.20 is inside the range"):
        cni.validate(cni.CniOptions(gateway="10.244.0.20", range="10.244.0.10-10.244.0.250"))


def _family(family: cni.Family | None) -> tuple[str, ...] | None:
    return family and tuple(map(str, (family.subnet, family.gateway, family.range_start, family.range_end)))


DEFAULTS = {
    "subnet only": ({"subnet": "10.86.0.0/24"}, ("10.86.0.0/24", "10.86.0.1", "10.86.0.2", "10.86.0.254")),
    "gateway last": ({"subnet": "10.86.0.0/30", "gateway": "10.86.0.2"}, ("10.86.0.0/30", "10.86.0.2", "10.86.0.1", "10.86.0.1")),
    "subnet6 only": ({"subnet6": "fd00:86::/64"}, ("fd00:86::/64", "fd00:86::1", "fd00:86::2", "fd00:86::ffff:ffff:ffff:ffff")),
    "range6 given": ({"subnet6": "fd00:86::/120", "range6": "fd00:86::10-fd00:86::20"},
                     ("fd00:86::/120", "fd00:86::1", "fd00:86::10", "fd00:86::20")),
}


@pytest.mark.parametrize("case", DEFAULTS)
def test_gateway_and_range_follow_the_subnet(case: str) -> None:
    options, expected = DEFAULTS[case]
    network = cni.validate(cni.CniOptions(**options))
    assert expected in (_family(network.ipv4), _family(network.ipv6))


def test_subnet_alone_renders_a_network_of_that_subnet(tmp_path: Path) -> None:
    result = nsgen("cni", "--subnet", "10.86.0.0/24", "--subnet6", "fd00:86::/64", "-o", tmp_path / "cni")
    assert result.returncode == 0, result.stderr
    plugin, portmap = json.loads((tmp_path / "cni" / "nsgen-net.conflist").read_text())["plugins"]
    assert portmap["type"] == "portmap"
    assert (plugin["gateway"], plugin["rangeStart"], plugin["rangeEnd"]) == ("10.86.0.1", "10.86.0.2", "10.86.0.254")
    assert (plugin["subnet6"], plugin["gateway6"], plugin["rangeStart6"]) == ("fd00:86::/64", "fd00:86::1", "fd00:86::2")


DEPENDENT_OPTIONS = {
    "--gateway": ["--subnet", "10.86.0.0/24", "--gateway", "10.244.0.1"],
    "--range": ["--subnet", "10.86.0.0/24", "--range", "10.244.0.10-10.244.0.250"],
    "--range ": ["--range", "10.244.0.1-10.244.0.9"],  # holds the default gateway
    "--subnet6": ["--subnet6", "10.86.0.0/24"],
    "--gateway6": ["--gateway6", "fd00:86::1"],  # without --subnet6
    "--gateway6 ": ["--subnet6", "fd00:86::/64", "--gateway6", "fd00:87::1"],
    "--range6": ["--subnet6", "fd00:86::/64", "--range6", "fd00:86::9-fd00:86::2"],
}


@pytest.mark.parametrize("case", DEPENDENT_OPTIONS)
def test_an_option_at_odds_with_another_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    result = nsgen("cni", *DEPENDENT_OPTIONS[case], "-o", tmp_path / "cni")
    assert result.returncode == 2 and not (tmp_path / "cni").exists()
    assert result.stderr.startswith(f"nsgen cni: {case.strip()}: ") and result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize("version", cni.SUPPORTED_VERSIONS)
def test_the_conflist_declares_its_versions(version: str) -> None:
    conflist = json.loads(cni.render_cni(cni.CniOptions(cni_version=version))["nsgen-net.conflist"])
    if version == "1.1.0":  # runtimes before 1.1.0 read cniVersion alone; the others pick from cniVersions
        assert (conflist["cniVersion"], conflist["cniVersions"]) == ("1.0.0", ["1.0.0", "1.1.0"])
    else:
        assert conflist["cniVersion"] == version and "cniVersions" not in conflist


# --- containerd end to end -------------------------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.containerd
def test_containerd_runs_two_containers_on_the_network(tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> None:
    work = tmp_path_factory.mktemp("containerd")
    options = cni.CniOptions(f"{lab.prefix}net", f"{lab.prefix}br", "10.203.0.0/24", "10.203.0.1",
                             "10.203.0.10-10.203.0.30", "1.0.0", portmap=True, subnet6="fd00:203::/64")
    writing.write(cni.render_cni(options), work / "cni", cni.EXECUTABLES)
    (work / "containerd.toml").write_text(containerd_config(work))
    image = "docker.io/nsgen/busybox:test"
    busybox_image.archive(work / "busybox.tar", image)
    host = lab.netns("host")
    namespace = lab.prefix.rstrip("-")  # containerd's namespace: also names its cgroups
    transcript: list[str] = []
    with open(work / "containerd.log", "w") as log:
        daemon = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{host}", "unshare", "-m", "--propagation", "private",
             "bash", "-c", MOUNT_NAMESPACE_SCRIPT, "containerd-in-private-mounts", str(work)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CONTAINERD_ADDRESS": str(work / "containerd.sock"),
           "CONTAINERD_NAMESPACE": namespace, "NSGEN_CNI_DATA_DIR": str(work / "ipam")}
    inside = ["nsenter", "-t", str(daemon.pid), "-m", "-n", "env", *(f"{k}={v}" for k, v in env.items())]
    run_container = [*inside, "bash", work / "cni/containerd/run-container.sh", "--image", image]

    def step(*command: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout)
        shown = " ".join(str(c) for c in command[len(inside):])
        transcript.append(f"$ {shown}\n{result.stdout}{result.stderr}(exit {result.returncode})")
        return result

    first = None
    try:
        deadline = time.monotonic() + 30
        while not (work / "containerd.sock").exists():
            assert daemon.poll() is None and time.monotonic() < deadline, (work / "containerd.log").read_text()
            time.sleep(0.1)
        assert step(*inside, "ctr", "image", "import", work / "busybox.tar").returncode == 0, transcript[-1]
        first = subprocess.Popen(
            [str(c) for c in [*run_container, "--id", "first", "--", "sh", "-c",
                              "ip -o addr show dev eth0 scope global; ip route; sleep 120"]],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        first_lines = [first.stdout.readline(), first.stdout.readline()]
        addresses = re.findall(r"inet6? (10\.203\.0\.\d+|fd00:203::[0-9a-f]+)/(?:24|64)", "".join(first_lines))
        assert len(addresses) == 2, "".join(first_lines) + first.stdout.read()
        first_lines.append(first.stdout.readline())
        second = step(*run_container, "--id", "second", "--", "sh", "-c",
                      "ip -o addr show dev eth0 scope global" + "".join(f"; ping -c 3 -W 2 {a}" for a in addresses))
        assert second.returncode == 0 and second.stdout.count(" 0% packet loss") == 2, transcript[-1]
        step(*inside, "ctr", "task", "kill", "-s", "SIGKILL", "first")
        first.wait(timeout=30)
        transcript.insert(1, f"$ run-container.sh --image {image} --id first -- sh -c 'ip -o addr show dev eth0"
                             f" scope global; ip route; sleep 120'   (in the background)\n{''.join(first_lines)}"
                             f"(killed with ctr task kill -s SIGKILL first; exit {first.returncode})")
        # DEL ran for both: no container, no address, no veth left; the bridge stays, as with the reference
        assert step(*inside, "ctr", "containers", "ls", "-q").stdout == ""
        assert [p.name for p in (work / "ipam" / options.name).iterdir()] == ["lock"]
        assert set(macs(host)) == {"lo", options.bridge}
    finally:
        if first is not None and first.poll() is None:
            first.kill()
        stop(daemon.pid)
        for pid in processes_mentioning(str(work)):  # shims of this daemon, if any survived it
            stop(pid)
        for cgroup in Path("/sys/fs/cgroup").glob(f"*/{namespace}"):
            for child in sorted(cgroup.glob("*/"), reverse=True):
                child.rmdir()
            cgroup.rmdir()
        shutil.rmtree(work, ignore_errors=True)
        (tmp_path_factory.getbasetemp() / "containerd-run.txt").write_text("\n\n".join(transcript) + "\n")
    assert not processes_mentioning(str(work))
    CONFORMANCE["containerd: ctr run --rm --cni, ping -4/-6, DEL"] = {"nsgen-bridge": "pass", "reference": "not run"}


#: An outcome in the table: passed (with notes), not applicable to the plugin (why), or not run against it by design.
OUTCOME = re.compile(r"pass( \(.+\))?|n/a( \(.+\))?|not run")


@pytest.mark.kernel
def test_conformance_table(tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture) -> None:
    """Runs last: the outcome of every scenario above, per plugin, printed and kept in the pytest temp dir; each
    scenario that ran has an outcome for each plugin, and none failed."""
    if not CONFORMANCE:
        pytest.skip("no CNI scenario ran in this session: there is no table")
    width = max([len("scenario"), *map(len, CONFORMANCE)])
    columns = {name: max([len(name), *(len(row.get(name, "")) for row in CONFORMANCE.values())]) for name in FLAVOURS}
    lines = [f"{'scenario':<{width}} | " + " | ".join(f"{name:<{columns[name]}}" for name in FLAVOURS)]
    lines.append("-" * len(lines[0]))
    for name, row in CONFORMANCE.items():
        lines.append(f"{name:<{width}} | " + " | ".join(f"{row.get(f, '-'):<{columns[f]}}" for f in FLAVOURS))
    table = "\n".join(lines) + "\n"
    path = tmp_path_factory.getbasetemp() / "cni-conformance.txt"
    path.write_text(table)
    with capsys.disabled():
        print(f"\n\nCNI conformance (also in {path}):\n{table}")
    wrong = {(name, flavour): row.get(flavour) for name, row in CONFORMANCE.items() for flavour in FLAVOURS
             if not OUTCOME.fullmatch(row.get(flavour, ""))}
    assert not wrong, f"scenarios that failed (FAIL) or have no outcome (None) for a plugin: {wrong}"
