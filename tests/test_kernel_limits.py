"""Kernel limits found at validation: bridge ports, IPv6's least MTU, sysctls of devices a namespace lacks."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import netns_names, nsgen

from nsgen.problems import TopologyError
from nsgen.topology import presets
from nsgen.validate import kernel_limits, sources


def _problems(document: dict[str, Any]) -> list[str]:
    """The lines validation prints for `document` (none when it is valid)."""
    try:
        sources.from_document(document, "lab.yaml", "test")
    except TopologyError as error:
        return [str(problem) for problem in error.problems]
    return []


def _v6_pair(mtu: int | None = None, address: str = "2001:db8::1/64") -> dict[str, Any]:
    eth0 = {"addresses": [address], **({"mtu": mtu} if mtu is not None else {})}
    return {
        "name": "v6",
        "namespaces": {"ns-0": {"interfaces": {"eth0": eth0}}, "ns-1": {}},
        "links": [["ns-0:eth0", "ns-1:eth0"]],
    }


def test_a_bridge_of_1023_ports_is_fine() -> None:
    lab = sources.load(preset="bridge", count=1023).lab
    assert kernel_limits.problems(lab, "preset bridge") == []


def test_a_bridge_of_1024_ports_is_one_line() -> None:
    assert _problems(presets.build("bridge", 1024)) == [
        "lab.yaml: bridges.v-net-0: bridge 'v-net-0' has 1024 ports; a Linux bridge takes at most 1023"
        " (the kernel refuses more with 'Exchange full')"
    ]


def test_render_refuses_an_oversized_bridge_and_writes_nothing(tmp_path: Path) -> None:
    result = nsgen("render", "--preset", "bridge", "-n", "1100", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "preset bridge: bridges.v-net-0: bridge 'v-net-0' has 1100 ports; a Linux bridge takes at most 1023"
        " (the kernel refuses more with 'Exchange full')"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("mtu", "address", "refused"), [
    (1279, "2001:db8::1/64", True),
    (1280, "2001:db8::1/64", False),
    (None, "2001:db8::1/64", False),
    (1000, "10.0.0.1/24", False),  # IPv4 alone is fine down to 68
])
def test_ipv6_needs_an_mtu_of_1280(mtu: int | None, address: str, refused: bool) -> None:
    expected = [
        f"lab.yaml: namespaces.ns-0.interfaces.eth0.mtu: mtu {mtu} is below 1280, the least IPv6 allows,"
        f" and the device has the IPv6 address {address}"
    ]
    assert _problems(_v6_pair(mtu, address)) == (expected if refused else [])


def test_a_bridge_with_an_ipv6_address_needs_an_mtu_of_1280() -> None:
    document = {
        "name": "br6",
        "bridges": {"br0": {"addresses": ["2001:db8::1/64"], "mtu": 1200}},
        "namespaces": {"ns-0": {"interfaces": {"eth0": {"addresses": ["2001:db8::2/64"]}}}},
        "links": [["ns-0:eth0", "br0:p0"]],
    }
    assert _problems(document) == [
        "lab.yaml: bridges.br0.mtu: mtu 1200 is below 1280, the least IPv6 allows,"
        " and the device has the IPv6 address 2001:db8::1/64"
    ]


@pytest.mark.parametrize(("key", "refused"), [
    ("net.ipv4.conf.eth1.forwarding", True),
    ("net.ipv6.conf.eth1.disable_ipv6", True),
    ("net.ipv4.conf.eth0.forwarding", False),
    ("net.ipv4.conf.all.forwarding", False),
    ("net.ipv6.conf.default.forwarding", False),
    ("net.ipv4.conf.lo.rp_filter", False),
    ("net.ipv4.ip_forward", False),
])
def test_a_per_device_sysctl_needs_the_device(key: str, refused: bool) -> None:
    document = {
        "name": "fwd",
        "namespaces": {"ns-0": {"sysctls": {key: 1}}, "ns-1": {}},
        "links": [["ns-0:eth0", "ns-1:eth0"]],
    }
    expected = [f"lab.yaml: namespaces.ns-0.sysctls['{key}']: namespace 'ns-0' has no device 'eth1',"
                f" so the kernel has no sysctl '{key}'"]
    assert _problems(document) == (expected if refused else [])


def test_every_preset_is_within_the_limits() -> None:
    for name in presets.PRESETS:
        assert kernel_limits.problems(sources.load(preset=name).lab, name) == []


@pytest.mark.kernel
def test_the_kernel_refuses_a_1024th_bridge_port(prefix: str) -> None:
    """The limit is real: 1023 veth ends join a bridge, the 1024th fails with 'Exchange full'."""
    netns = f"{prefix}limit"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    assert netns in netns_names()  # the prefix fixture deletes it, pass or fail
    count = kernel_limits.BRIDGE_MAX_PORTS
    batch = ["link add br0 type bridge"]
    batch += [f"link add p{i} type veth peer name q{i}" for i in range(count + 1)]
    batch += [f"link set p{i} master br0" for i in range(count)]
    subprocess.run(["ip", "-n", netns, "-batch", "-"], input="\n".join(batch) + "\n", text=True, check=True)
    last = subprocess.run(["ip", "-n", netns, "link", "set", f"p{count}", "master", "br0"],
                          capture_output=True, text=True, check=False)
    assert last.returncode != 0
    assert "Exchange full" in last.stderr
