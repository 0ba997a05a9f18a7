"""Declared state: every object a lab declares, in the kernel's words.

`declared(lab)` lists every object the topology declares, in the kernel's words: namespaces,
devices, up state, addresses, MTUs, MACs, bridge ports, routes, sysctls. verify.sh and apply.sh get
them as lines (`expect_addr eth0 10.0.0.2/24` under `expect_netns NETNS NODE`) that their runtime
checks with `ip -o` alone; `nsgen status` checks the same list from `ip -j` (`nsgen.run.drift`).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from nsgen.topology.model import ROOT, Interface, Lab


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
    root_interfaces = {iface.name: iface for iface in lab.root_interfaces}
    root: list[Expect] = []
    for br in lab.bridges:
        root.append(Expect(None, ROOT, "device", br.device))
        root.append(Expect(None, ROOT, "up", br.device))
        root += [Expect(None, ROOT, "address", br.device, a.with_prefixlen) for a in br.addresses]
        root += [Expect(None, ROOT, "mtu", br.device, str(br.mtu))] if br.mtu else []
    ends: dict[str, list[Expect]] = {}
    for link in lab.links:
        for end in (link.a, link.b):
            if end.netns is None:
                iface = root_interfaces.get(end.interface) if end.bridge is None else None
                root += _interface(None, ROOT, end.device, iface, end.bridge)
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
