"""Declared state: every object a lab declares, in the kernel's words.

`declared(lab)` lists every object the topology declares: namespaces, devices, up state, addresses,
MTUs (a namespace's veth end has the kernel's 1500 unless it declares one), MACs, bridge ports,
routes, sysctls, services running. Each is one exact line (`eth0 address 10.0.0.2/24`, `route default via 10.0.0.1`)
in the words the kernel's state is read into: verify.sh and apply.sh get them by place (`places`),
and their runtime compares them with what `ip -o` shows (kernel_facts); `nsgen status` compares
the same lines with what `ip -j` shows (`nsgen.run.drift`).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from nsgen.plan.commands import MTU_DEFAULT, canonical_rate
from nsgen.topology.model import ROOT, Conditions, Interface, Lab, VxlanEnd, rate_bits

#: A service's line: `service NAME running` (declared), or `exited` (the kernel side, once it ended).
SERVICE_LINE = re.compile(r"^service ([^ ]+) (running|exited)$")


@dataclass(frozen=True)
class Expect:
    """One declared fact. `netns` None is the root namespace (its `node` is `host`)."""

    netns: str | None
    node: str
    kind: str  # namespace, device, up, address, mtu, mac, master, qdisc, rate, route, sysctl, service
    device: str = ""
    value: str = ""

    @property
    def line(self) -> str:
        """The fact as one line, as the kernel's state is read into lines (`nsgen.run.drift`, kernel_facts)."""
        if self.kind == "namespace":
            return "namespace"
        if self.kind == "device":
            return f"device {self.device}"
        if self.kind == "up":
            return f"{self.device} up"
        if self.kind == "route":
            return f"route {self.value}"
        if self.kind == "sysctl":
            return f"sysctl {self.device}={self.value}"
        if self.kind == "service":
            return f"service {self.device} running"
        return f"{self.device} {self.kind} {self.value}"

    @property
    def label(self) -> str:
        return f"{self.node}: {self.line}"


@dataclass(frozen=True)
class Place:
    """Where facts live: a namespace (`netns`, shown as `node`), or the root namespace (netns None)
    read for `devices` only; and the lines of its facts."""

    netns: str | None
    node: str
    devices: tuple[str, ...]
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Difference:
    """One line of drift at a place (`node`, in `netns`): a declared `line` the kernel lacks
    (`missing`) or holds with another value (`different`, `have` its value), or a line it has beyond
    the declared ones (`extra`)."""

    netns: str | None
    node: str
    line: str
    kind: str  # missing, different, extra
    have: str = ""

    def __str__(self) -> str:
        return f"{self.node}: {self.line}: {self.kind}" + (f" ({self.have})" if self.kind == "different" else "")


def _interface(
    netns: str | None, node: str, device: str, iface: Interface | None, master: str | None, sends: Conditions | None = None
) -> list[Expect]:
    facts = [Expect(netns, node, "device", device), Expect(netns, node, "up", device)]
    if master:
        facts.append(Expect(netns, node, "master", device, master))
    if sends:  # the qdisc that conditions what it sends, and its rate
        facts.append(Expect(netns, node, "qdisc", device, sends.qdisc))
        facts += [Expect(netns, node, "rate", device, canonical_rate(rate_bits(sends.rate)))] if sends.rate else []
    if iface is not None:
        facts += [Expect(netns, node, "address", device, a.with_prefixlen) for a in iface.addresses]
        mtu = iface.mtu or (MTU_DEFAULT if netns else None)  # a root end may follow its bridge's MTU
        facts += [Expect(netns, node, "mtu", device, str(mtu))] if mtu else []
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
        for end, sends in zip((link.a, link.b), link.sends, strict=True):
            if end.netns is None:
                iface = root_interfaces.get(end.interface) if end.bridge is None else None
                root += _interface(None, ROOT, end.device, iface, end.bridge, sends)
            else:
                ns = lab.namespace(end.node)
                facts_of_end = _interface(ns.netns, ns.name, end.device, ns.interface(end.interface), None, sends)
                ends.setdefault(ns.netns, []).extend(facts_of_end)
    for tunnel in lab.tunnels:  # a multi-host lab's VXLAN devices: a link's end in its namespace, a bridge's port
        if isinstance(tunnel, VxlanEnd):
            ns = lab.namespace(tunnel.end.node)
            iface = ns.interface(tunnel.end.interface)
            ends.setdefault(ns.netns, []).extend(_interface(ns.netns, ns.name, tunnel.end.interface, iface, None))
        else:
            root += _interface(None, ROOT, tunnel.device, None, tunnel.bridge)
            root.append(Expect(None, ROOT, "mtu", tunnel.device, str(tunnel.mtu)))
    for ns in lab.namespaces:
        if only is not None and ns.netns not in only:
            continue
        facts += [Expect(ns.netns, ns.name, "namespace"), Expect(ns.netns, ns.name, "up", "lo")]
        facts += ends.get(ns.netns, [])
        facts += [Expect(ns.netns, ns.name, "route", value=r.text) for r in ns.routes]
        facts += [Expect(ns.netns, ns.name, "sysctl", key, value) for key, value in ns.sysctls]
        facts += [Expect(ns.netns, ns.name, "service", service.name) for service in ns.services]
    return facts + [f for f in root if only_devices is None or f.device in only_devices]


def places(facts: list[Expect]) -> list[Place]:
    """The facts by place, in order: each namespace, then the root namespace (its devices' facts)."""
    grouped: dict[str | None, list[Expect]] = {}
    for fact in facts:
        grouped.setdefault(fact.netns, []).append(fact)
    result = []
    for netns, mine in grouped.items():
        devices = tuple(dict.fromkeys(f.device for f in mine if f.device)) if netns is None else ()  # the devices read
        lines = tuple(f.line for f in mine if f.kind != "namespace")
        result.append(Place(netns, mine[0].node, devices, lines))
    return result
