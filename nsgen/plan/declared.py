"""Declared state: every object a lab declares, in the kernel's words.

`declared(lab)` lists every object the topology declares: namespaces, devices, up state, addresses,
MTUs (a namespace's veth end has the kernel's 1500 unless it declares one), MACs, bridge ports,
routes, sysctls, services running, the root's forwarding and the lab's NAT rules. Each is a typed
`Fact` (`nsgen.topology.facts`), one exact line in the kernel's words (`eth0 address 10.0.0.2/24`,
`route default via 10.0.0.1`): verify.sh, check.sh, apply.sh and `nsgen status` get them by place
(`places`) and compare them with the kernel in the runtime's one reader (`expect`).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from nsgen.plan import commands
from nsgen.plan.commands import MTU_DEFAULT, canonical_rate
from nsgen.topology.conditions import Conditions, kept_percent, rate_bits, shown_percent, shown_time, time_us
from nsgen.topology.ends import ROOT, VxlanEnd, owned
from nsgen.topology.facts import Fact
from nsgen.topology.model import Interface, Lab


@dataclass(frozen=True)
class Place:
    """Where facts live: a namespace (`netns`, shown as `node`), or the root namespace (netns None)
    read for `devices` only; and the lines of its facts."""

    netns: str | None
    node: str
    devices: tuple[str, ...]
    lines: tuple[str, ...]


def _interface(
    netns: str | None,
    node: str,
    device: str,
    iface: Interface | None,
    master: str | None,
    sends: Conditions | None = None,
    mtu_default: int | None = MTU_DEFAULT,
) -> list[Fact]:
    """A device's facts; `mtu_default` is its MTU in a namespace when it declares none (a veth's
    1500; none for a macvlan, which follows its parent)."""
    facts = [Fact(netns, node, "device", device), Fact(netns, node, "up", device)]
    if master:
        facts.append(Fact(netns, node, "master", device, master))
    if sends:
        facts += _conditions(netns, node, device, sends)
    if iface is not None:
        facts += [Fact(netns, node, "address", device, a.with_prefixlen) for a in iface.addresses]
        mtu = iface.mtu or (mtu_default if netns else None)  # a root end may follow its bridge's MTU
        facts += [Fact(netns, node, "mtu", device, str(mtu))] if mtu else []
        facts += [Fact(netns, node, "mac", device, iface.mac.lower())] if iface.mac else []
    return facts


def _conditions(netns: str | None, node: str, device: str, sends: Conditions) -> list[Fact]:
    """The qdisc that conditions what a device sends, and each value it has, as tc prints it (a zero
    delay, jitter or loss is none: tc prints none)."""
    values = {
        "delay": shown_time(time_us(sends.delay)) if sends.delay and time_us(sends.delay) else None,
        "jitter": shown_time(time_us(sends.jitter)) if sends.jitter and time_us(sends.jitter) else None,
        "loss": shown_percent(sends.loss) if sends.loss and kept_percent(sends.loss) else None,
        "rate": canonical_rate(rate_bits(sends.rate)) if sends.rate else None,
    }
    facts = [Fact(netns, node, "qdisc", device, sends.qdisc)]
    return facts + [Fact(netns, node, kind, device, value) for kind, value in values.items() if value]


def declared(lab: Lab, namespaces: Iterable[str] | None = None, devices: Iterable[str] | None = None) -> list[Fact]:
    """Every object `lab` declares, grouped by where it lives: each namespace, then the root
    namespace; with `namespaces` (kernel names) and `devices` (the root's), of those only."""
    only = None if namespaces is None else set(namespaces)
    only_devices = None if devices is None else set(devices)
    facts: list[Fact] = []
    root_interfaces = {iface.name: iface for iface in lab.root_interfaces}
    root: list[Fact] = []
    for br in lab.bridges:
        root.append(Fact(None, ROOT, "device", br.device))
        root.append(Fact(None, ROOT, "up", br.device))
        root += [Fact(None, ROOT, "address", br.device, a.with_prefixlen) for a in br.addresses]
        root += [Fact(None, ROOT, "mtu", br.device, str(br.mtu))] if br.mtu else []
        root.append(Fact(None, ROOT, "mac", br.device, br.mac))
    ends: dict[str, list[Fact]] = {}
    for link in lab.links:
        for end, sends in zip((link.a, link.b), link.sends, strict=True):
            if not owned(end):  # a macvlan's parent: not the lab's
                continue
            if end.netns is None:
                iface = root_interfaces.get(end.interface) if end.bridge is None else None
                root += _interface(None, ROOT, end.device, iface, end.bridge, sends)
            else:
                ns = lab.namespace(end.node)
                mtu_default = MTU_DEFAULT if owned(link.a) and owned(link.b) else None  # a macvlan's is its parent's
                iface = ns.interface(end.interface)
                facts_of_end = _interface(ns.netns, ns.name, end.device, iface, None, sends, mtu_default)
                ends.setdefault(ns.netns, []).extend(facts_of_end)
    for tunnel in lab.tunnels:  # a multi-host lab's VXLAN devices: a link's end in its namespace, a bridge's port
        if isinstance(tunnel, VxlanEnd):
            ns = lab.namespace(tunnel.end.node)
            iface = ns.interface(tunnel.end.interface)
            ends.setdefault(ns.netns, []).extend(_interface(ns.netns, ns.name, tunnel.end.interface, iface, None, tunnel.sends))
        else:
            root += _interface(None, ROOT, tunnel.device, None, tunnel.bridge)
            root.append(Fact(None, ROOT, "mtu", tunnel.device, str(tunnel.mtu)))
            root += [Fact(None, ROOT, "floods", tunnel.device, str(remote)) for remote in tunnel.remotes]
    for ns in lab.namespaces:
        if only is not None and ns.netns not in only:
            continue
        facts += [Fact(ns.netns, ns.name, "namespace"), Fact(ns.netns, ns.name, "up", "lo")]
        facts += ends.get(ns.netns, [])
        facts += [Fact(ns.netns, ns.name, "route", value=r.text) for r in ns.routes]
        facts += [Fact(ns.netns, ns.name, "sysctl", key, value) for key, value in ns.sysctls]
        facts += [Fact(ns.netns, ns.name, "service", service.name, "running") for service in ns.services]
    root += outside(lab)
    return facts + [f for f in root if only_devices is None or f.device in only_devices]


def outside(lab: Lab) -> list[Fact]:
    """The root namespace's forwarding and the lab's NAT and forwarded-port rules, as `iptables -S`
    prints them: what nsgen.plan.commands' commands for them make."""
    return [Fact(m.netns, ROOT, m.kind, m.device, m.value) for command in commands.outside(lab) for m in command.makes]


def accepted(lab: Lab) -> list[str]:
    """The matches of the FORWARD rules --allow-forward may add (`nsgen.plan.commands.accepts`), in
    `iptables -S`'s words: the lab's, there or not (a choice of setup's, not the topology's)."""
    return [" ".join(command.argv) for command in commands.accepts(lab)]


def places(facts: list[Fact]) -> list[Place]:
    """The facts by place, in order: each namespace, then the root namespace (its devices' facts)."""
    grouped: dict[str | None, list[Fact]] = {}
    for fact in facts:
        grouped.setdefault(fact.netns, []).append(fact)
    result = []
    for netns, mine in grouped.items():
        devices = tuple(dict.fromkeys(f.device for f in mine if f.device)) if netns is None else ()  # the devices read
        lines = tuple(f.line for f in mine if f.kind != "namespace")
        result.append(Place(netns, mine[0].node, devices, lines))
    return result
