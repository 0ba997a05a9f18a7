"""Drift: what the kernel has versus what the lab declares.

`declared(lab)` lists every object the topology declares, in the kernel's words: namespaces,
devices, up state, addresses, MTUs, MACs, bridge ports, routes, sysctls. verify.sh and apply.sh get
them as lines (`expect_addr eth0 10.0.0.2/24` under `expect_netns NETNS NODE`) that their runtime
checks with `ip -o` alone; `nsgen status` checks the same list from `ip -j` in Python, and adds what
the kernel has and the lab does not. Every difference is one line: `ns-2: route default via
172.16.0.1: missing`, `ns-0: eth0 mtu 9000: different (1500)`, `ns-0: device eth9: extra`.
A missing namespace or device is one line: what it holds is not listed.
"""

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from nsgen.topology.model import HOST, Interface, Lab


@dataclass(frozen=True)
class Expect:
    """One declared fact. `netns` None is the root namespace (its `node` is `host`)."""

    netns: str | None
    node: str
    kind: str  # namespace, device, up, address, mtu, mac, master, route, sysctl
    device: str = ""
    value: str = ""

    @property
    def label(self) -> str:
        if self.kind == "namespace":
            return f"{self.node}: namespace"
        if self.kind == "device":
            return f"{self.node}: device {self.device}"
        if self.kind == "up":
            return f"{self.node}: {self.device} up"
        if self.kind == "route":
            return f"{self.node}: route {self.value}"
        if self.kind == "sysctl":
            return f"{self.node}: sysctl {self.device}={self.value}"
        return f"{self.node}: {self.device} {self.kind} {self.value}"


def _interface(netns: str | None, node: str, device: str, iface: Interface | None, master: str | None) -> list[Expect]:
    facts = [Expect(netns, node, "device", device), Expect(netns, node, "up", device)]
    if master:
        facts.append(Expect(netns, node, "master", device, master))
    if iface is not None:
        facts += [Expect(netns, node, "address", device, a.with_prefixlen) for a in iface.addresses]
        facts += [Expect(netns, node, "mtu", device, str(iface.mtu))] if iface.mtu else []
        facts += [Expect(netns, node, "mac", device, iface.mac.lower())] if iface.mac else []
    return facts


def declared(lab: Lab, namespaces: Iterable[str] | None = None, devices: Iterable[str] | None = None) -> list[Expect]:
    """Every object `lab` declares, grouped by where it lives: each namespace, then the root
    namespace; with `namespaces` (kernel names) and `devices` (the root's), of those only."""
    only = None if namespaces is None else set(namespaces)
    only_devices = None if devices is None else set(devices)
    facts: list[Expect] = []
    hosts = {iface.name: iface for iface in lab.host}
    root: list[Expect] = []
    for br in lab.bridges:
        root.append(Expect(None, HOST, "device", br.device))
        root.append(Expect(None, HOST, "up", br.device))
        root += [Expect(None, HOST, "address", br.device, a.with_prefixlen) for a in br.addresses]
        root += [Expect(None, HOST, "mtu", br.device, str(br.mtu))] if br.mtu else []
    ends: dict[str, list[Expect]] = {}
    for link in lab.links:
        for end in (link.a, link.b):
            if end.netns is None:
                iface = hosts.get(end.interface) if end.bridge is None else None
                root += _interface(None, HOST, end.device, iface, end.bridge)
            else:
                ns = lab.namespace(end.node)
                ends.setdefault(ns.netns, []).extend(_interface(ns.netns, ns.name, end.device, ns.interface(end.interface), None))
    for ns in lab.namespaces:
        if only is not None and ns.netns not in only:
            continue
        facts.append(Expect(ns.netns, ns.name, "namespace"))
        facts += ends.get(ns.netns, [])
        facts += [Expect(ns.netns, ns.name, "route", value=r.text) for r in ns.routes]
        facts += [Expect(ns.netns, ns.name, "sysctl", key, value) for key, value in ns.sysctls]
    return facts + [f for f in root if only_devices is None or f.device in only_devices]


_FUNCTIONS = {"address": "addr"}


def shell_lines(facts: list[Expect], some_root_devices: bool = False) -> list[tuple[str, ...]]:
    """The facts as verify.sh's and apply.sh's lab part writes them (words for the shell); with
    `some_root_devices`, the root namespace is read for the devices of the facts only."""
    lines: list[tuple[str, ...]] = []
    where: object = object()
    root_devices = tuple(dict.fromkeys(f.device for f in facts if f.netns is None and f.kind == "device"))
    for fact in facts:
        if fact.netns != where:
            where = fact.netns
            root = ("expect_root", "only", *root_devices) if some_root_devices else ("expect_root", "all")
            lines.append(root if fact.netns is None else ("expect_netns", fact.netns, fact.node))
        if fact.kind == "namespace":
            continue
        if fact.kind in ("route",):
            lines.append(("expect_route", fact.value))
        elif fact.kind in ("device", "up"):
            lines.append((f"expect_{fact.kind}", fact.device))
        else:
            lines.append(("expect_" + _FUNCTIONS.get(fact.kind, fact.kind), fact.device, fact.value))
    return lines


# --- `nsgen status`: the same facts read from `ip -j`, and what is there that the lab does not declare


def _ip_json(*args: str) -> list[dict]:
    result = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def _sysctl(netns: str, key: str) -> str | None:
    path = "/proc/sys/" + key.replace(".", "/")
    result = subprocess.run(["ip", "netns", "exec", netns, "cat", path], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


class _Kernel:
    """What one namespace (the root when None) has, read once."""

    def __init__(self, netns: str | None):
        where = ("-n", netns) if netns else ()
        self.netns = netns
        self.links = {e["ifname"]: e for e in _ip_json(*where, "link", "show")}
        self.addresses = {e["ifname"]: e.get("addr_info", []) for e in _ip_json(*where, "addr", "show")}
        self.routes: list[dict] | None = None
        self.where = where

    def route_list(self) -> list[dict]:
        if self.routes is None:
            self.routes = _ip_json(*self.where, "route", "show") + _ip_json(*self.where, "-6", "route", "show")
        return self.routes

    def address_set(self, device: str) -> set[str]:
        return {f"{a['local']}/{a['prefixlen']}" for a in self.addresses.get(device, []) if not a["local"].startswith("fe80:")}


def _route_words(entry: dict) -> str:
    words = [entry["dst"]]
    words += ["via", entry["gateway"]] if "gateway" in entry else []
    words += ["dev", entry["dev"]] if "dev" in entry else []
    return " ".join(words)


def _route_matches(entry: dict, text: str) -> bool:
    words = text.split()
    if entry.get("dst") != words[0]:
        return False
    pairs = dict(zip(words[1::2], words[2::2], strict=False))
    return all(entry.get({"via": "gateway"}.get(k, k)) == v for k, v in pairs.items())


def _check(fact: Expect, kernel: _Kernel) -> str | None:
    """None when the kernel has `fact`, else `missing` or `different (WHAT IT HAS)`."""
    link = kernel.links.get(fact.device) if fact.device else None
    if fact.kind == "device":
        return None if link else "missing"
    if fact.kind == "up":
        return None if "UP" in link["flags"] else "different (down)"
    if fact.kind == "address":
        return None if fact.value in kernel.address_set(fact.device) else "missing"
    if fact.kind == "mtu":
        return None if str(link["mtu"]) == fact.value else f"different ({link['mtu']})"
    if fact.kind == "mac":
        return None if link.get("address", "").lower() == fact.value else f"different ({link.get('address')})"
    if fact.kind == "master":
        return None if link.get("master") == fact.value else f"different ({link.get('master') or 'no master'})"
    if fact.kind == "route":
        return None if any(_route_matches(r, fact.value) for r in kernel.route_list()) else "missing"
    if fact.kind == "sysctl":
        have = _sysctl(fact.netns or "", fact.device)
        return None if have == fact.value else f"different ({have})"
    return None


def differences(lab: Lab) -> list[str]:
    """One line per difference between the kernel and `lab`: missing, different, extra."""
    lines: list[str] = []
    present = {e["name"] for e in _ip_json("netns", "list")}
    kernels: dict[str | None, _Kernel] = {}
    gone: set[tuple[str | None, str]] = set()
    facts = declared(lab)
    for fact in facts:
        if fact.kind == "namespace":
            if fact.netns not in present:
                lines.append(f"{fact.label}: missing")
                gone.add((fact.netns, ""))
            continue
        if (fact.netns, "") in gone or (fact.netns, fact.device) in gone:
            continue
        kernel = kernels.get(fact.netns) or kernels.setdefault(fact.netns, _Kernel(fact.netns))
        result = _check(fact, kernel)
        if result is not None:
            lines.append(f"{fact.label}: {result}")
            if fact.kind == "device":
                gone.add((fact.netns, fact.device))
    # what the kernel has and the lab does not: devices, addresses, routes in its namespaces
    for ns in lab.namespaces:
        kernel = kernels.get(ns.netns)
        if kernel is None:
            continue
        mine = [f for f in facts if f.netns == ns.netns]
        devices = {f.device for f in mine if f.kind == "device"}
        lines += [f"{ns.name}: device {name}: extra" for name in sorted(kernel.links.keys() - devices - {"lo"})]
        for device in sorted(devices & kernel.links.keys()):
            wanted = {f.value for f in mine if f.kind == "address" and f.device == device}
            lines += [f"{ns.name}: {device} address {a}: extra" for a in sorted(kernel.address_set(device) - wanted)]
        routes = [f.value for f in mine if f.kind == "route"]
        for entry in kernel.route_list():
            if entry.get("protocol") == "kernel" or entry.get("type", "unicast") != "unicast":
                continue
            if not any(_route_matches(entry, text) for text in routes):
                lines.append(f"{ns.name}: route {_route_words(entry)}: extra")
    root = kernels.get(None) or _Kernel(None)
    for bridge in lab.bridges:
        ports = {f.device for f in facts if f.kind == "master" and f.value == bridge.device}
        extra = [name for name, e in root.links.items() if e.get("master") == bridge.device and name not in ports]
        lines += [f"{HOST}: {name} master {bridge.device}: extra" for name in sorted(extra)]
    if lab.prefix:  # what carries the lab's prefix but is not the lab's
        ours = {ns.netns for ns in lab.namespaces} | set(lab.root_devices)
        lines += [f"{name}: namespace: extra" for name in sorted(present - ours) if name.startswith(lab.prefix)]
        lines += [f"{HOST}: device {d}: extra" for d in sorted(root.links.keys() - ours) if d.startswith(lab.prefix)]
    return lines
