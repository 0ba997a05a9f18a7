"""Shared by the live-lab tests: a base topology with every kind of object, its variations, and
setting up, applying and reading kernel state."""

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path

from conftest import ip_json, run
from test_styles import _kernel_state

from nsgen.render import lab_files, writing
from nsgen.run import drift
from nsgen.validate import sources
from nsgen.validate.sources import LoadedLab

#: Namespaces on a bridge, a veth pair between two namespaces, a host end; an MTU, a MAC, a sysctl.
#: Its subnets (10.23x) stay clear of the presets' 172.16/16 that other labs on the machine use.
BASE: dict = {
    "name": "live",
    "bridges": {"br0": {"addresses": ["10.231.0.1/24"]}},
    "host": {"interfaces": {"veth-h": {"addresses": ["10.233.0.1/30"]}}},
    "namespaces": {
        "ns-0": {
            "interfaces": {
                "eth0": {"addresses": ["10.231.0.2/24"]},
                "eth1": {"addresses": ["10.232.0.1/24"], "mtu": 9000},
            },
            "routes": [{"to": "default", "via": "10.231.0.1"}],
            "sysctls": {"net.ipv4.ip_forward": 1},
        },
        "ns-1": {
            "interfaces": {
                "eth0": {"addresses": ["10.231.0.3/24"], "mac": "02:00:00:00:01:01"},
                "eth1": {"addresses": ["10.233.0.2/30"]},
            },
            "routes": [{"to": "default", "via": "10.231.0.1"}],
        },
        "ns-2": {
            "interfaces": {"eth0": {"addresses": ["10.232.0.2/24"], "mtu": 9000}},
            "routes": [{"to": "10.231.0.0/24", "via": "10.232.0.1"}],
        },
    },
    "links": [
        ["ns-0:eth0", "br0:p0"],
        ["ns-1:eth0", "br0:p1"],
        ["ns-0:eth1", "ns-2:eth0"],
        ["ns-1:eth1", "host:veth-h"],
    ],
}


def variant(change: Callable[[dict], None]) -> dict:
    doc = copy.deepcopy(BASE)
    change(doc)
    return doc


def _add_namespace(doc: dict) -> None:
    doc["namespaces"]["ns-3"] = {
        "interfaces": {"eth0": {"addresses": ["10.231.0.4/24"]}},
        "routes": [{"to": "default", "via": "10.231.0.1"}],
    }
    doc["links"].append(["ns-3:eth0", "br0:p3"])


def _remove_namespace(doc: dict) -> None:
    del doc["namespaces"]["ns-2"]
    del doc["namespaces"]["ns-0"]["interfaces"]["eth1"]
    doc["links"].remove(["ns-0:eth1", "ns-2:eth0"])


def _move_address(doc: dict) -> None:
    doc["namespaces"]["ns-1"]["interfaces"]["eth0"]["addresses"] = ["10.231.0.9/24"]


def _add_route(doc: dict) -> None:
    doc["namespaces"]["ns-1"]["routes"].append({"to": "10.232.0.0/24", "via": "10.231.0.2"})


def _mtu(doc: dict) -> None:
    doc["namespaces"]["ns-0"]["interfaces"]["eth1"]["mtu"] = 1400
    doc["namespaces"]["ns-2"]["interfaces"]["eth0"]["mtu"] = 1400
    doc["bridges"]["br0"]["mtu"] = 1400


def _mac(doc: dict) -> None:
    doc["namespaces"]["ns-1"]["interfaces"]["eth0"]["mac"] = "02:00:00:00:01:09"
    doc["namespaces"]["ns-0"]["interfaces"]["eth0"]["mac"] = "02:00:00:00:00:09"


def _sysctl(doc: dict) -> None:
    del doc["namespaces"]["ns-0"]["sysctls"]
    doc["namespaces"]["ns-1"]["sysctls"] = {"net.ipv4.ip_forward": 1}


def _add_bridge(doc: dict) -> None:
    doc["bridges"]["br1"] = {"addresses": ["10.234.0.1/24"]}
    doc["namespaces"]["ns-2"]["interfaces"]["eth1"] = {"addresses": ["10.234.0.2/24"]}
    doc["links"].append(["ns-2:eth1", "br1:q0"])


def _rename_port(doc: dict) -> None:
    doc["links"][1] = ["ns-1:eth0", "br0:p9"]


def _host_end(doc: dict) -> None:
    doc["host"]["interfaces"]["veth-h"]["addresses"] = ["10.233.0.5/30"]
    doc["namespaces"]["ns-1"]["interfaces"]["eth1"]["addresses"] = ["10.233.0.6/30"]


def _remove_host_end(doc: dict) -> None:
    del doc["host"]
    del doc["namespaces"]["ns-1"]["interfaces"]["eth1"]
    doc["links"].remove(["ns-1:eth1", "host:veth-h"])


def _ipv6(doc: dict) -> None:
    doc["namespaces"]["ns-0"]["interfaces"]["eth1"]["addresses"].append("fd00:232::1/64")
    doc["namespaces"]["ns-2"]["interfaces"]["eth0"]["addresses"].append("fd00:232::2/64")
    doc["namespaces"]["ns-2"]["routes"].append({"to": "::/0", "via": "fd00:232::1"})


def _remove_bridge(doc: dict) -> None:
    del doc["bridges"]
    for name in ("ns-0", "ns-1"):
        del doc["namespaces"][name]["interfaces"]["eth0"]
        doc["namespaces"][name]["routes"] = []
    doc["namespaces"]["ns-2"]["routes"] = []
    doc["links"] = doc["links"][2:]


#: Each kind of change (applied A -> B, then back B -> A).
VARIANTS = {
    "add-namespace": _add_namespace,
    "remove-namespace": _remove_namespace,
    "move-address": _move_address,
    "add-route": _add_route,
    "mtu": _mtu,
    "mac": _mac,
    "sysctl": _sysctl,
    "add-bridge": _add_bridge,
    "remove-bridge": _remove_bridge,
    "rename-port": _rename_port,
    "host-end-addresses": _host_end,
    "remove-host-end": _remove_host_end,
    "ipv6": _ipv6,
}


def load(doc: dict, prefix: str) -> LoadedLab:
    return sources.from_document(doc, "test", "test", prefix)


def setup(loaded: LoadedLab, lab_dir: Path) -> None:
    writing.write(lab_files.render(loaded), lab_dir)
    result = run("bash", lab_dir / "setup.sh")
    assert result.returncode == 0, result.stderr


def teardown(lab_dir: Path) -> None:
    result = run("bash", lab_dir / "teardown.sh")
    assert result.returncode == 0, result.stderr


def apply(old: LoadedLab, new: LoadedLab, lab_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    writing.write(lab_files.render_apply(old.lab, new), lab_dir)
    return run("bash", lab_dir / "apply.sh", *args, env=env)


def state(loaded: LoadedLab) -> dict:
    """The lab's kernel state (links, addresses, routes of each namespace; its root devices) and its
    declared sysctls, without what the kernel picks (indexes, MACs nobody declared)."""
    lab = loaded.lab
    netns = [ns.netns for ns in lab.namespaces]
    kernel = _kernel_state(lab.prefix, netns, lab.root_devices)
    sysctls = {}
    for ns in lab.namespaces:
        for key in {"net.ipv4.ip_forward", *(key for key, _ in ns.sysctls)}:
            path = "/proc/sys/" + key.replace(".", "/")
            sysctls[(ns.netns, key)] = run("ip", "netns", "exec", ns.netns, "cat", path).stdout.strip()
    macs = {}
    for ns in lab.namespaces:
        for iface in ns.interfaces:
            if iface.mac:
                [entry] = ip_json("link", "show", "dev", iface.name, netns=ns.netns)
                macs[(ns.netns, iface.name)] = entry["address"]
    return {"kernel": kernel, "sysctls": sysctls, "macs": macs, "drift": [str(found) for found in drift.differences(lab)]}


def ifindexes(netns: str) -> dict[str, int]:
    return {e["ifname"]: e["ifindex"] for e in ip_json("link", "show", netns=netns)}


def record(loaded: LoadedLab) -> str | None:
    path = Path("/run/nsgen") / f"{loaded.lab.prefix}{loaded.lab.name}.yaml"
    return path.read_text() if path.exists() else None
