"""The lab as the kernel has it: a recorded lab with its drift (`nsgen.run.drift`) applied.

A change is planned from what runs, not from what was recorded: `diff(as_found(old, drift), new)`
re-adds a namespace, link, address or route the kernel lost, removes an address or route it gained
in a lab namespace, sets an MTU, MAC, sysctl or link condition back, and starts a service that
is not running again. What the model cannot hold is repaired by
commands of its own: a device found down is set up before the change (its addresses and routes
need it up), a port found out of its bridge is plugged back after it (the bridge may be re-made).
"""

import dataclasses
from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from nsgen.plan.commands import Command
from nsgen.plan.declared import SERVICE_LINE, Difference
from nsgen.topology.model import Bridge, Conditions, Interface, Lab, Namespace, Route, VethLink, interface_address


@dataclass(frozen=True)
class Found:
    """The lab as found, the commands that repair what it cannot hold (before the change, after it),
    and the differences they repair (left out of what apply.sh expects to find)."""

    lab: Lab
    before: tuple[Command, ...] = ()
    after: tuple[Command, ...] = ()
    repaired: tuple[Difference, ...] = ()


def route_of(text: str) -> Route:
    """A route from its kernel words: `DEST [via GATEWAY] [dev DEVICE]` (`default`: the gateway's family)."""
    words = text.split()
    pairs = dict(zip(words[1::2], words[2::2], strict=False))
    via = ip_address(pairs["via"]) if "via" in pairs else None
    dest = words[0] if words[0] != "default" else "::/0" if via is not None and via.version == 6 else "0.0.0.0/0"
    return Route(ip_network(dest, strict=False), pairs.get("dev"), via)


def _interface(iface: Interface, change: Difference) -> Interface:
    """`iface` with one difference of its own applied."""
    kind, value = change.line.split(" ")[1], change.line.split(" ")[-1]
    if kind == "address":
        address = interface_address(value)
        kept = tuple(a for a in iface.addresses if a != address)
        return dataclasses.replace(iface, addresses=kept if change.kind == "missing" else (*kept, address))
    if kind == "mtu" and change.have.isdigit():
        return dataclasses.replace(iface, mtu=int(change.have))
    if kind == "mac" and not change.have.startswith("no "):
        return dataclasses.replace(iface, mac=change.have)
    return iface


def _namespace(ns: Namespace, found: list[Difference]) -> Namespace:
    interfaces = {iface.name: iface for iface in ns.interfaces}
    routes, sysctls, services = list(ns.routes), dict(ns.sysctls), list(ns.services)
    for change in found:
        words = change.line.split(" ")
        if words[0] == "route":
            route = route_of(change.line.removeprefix("route "))
            routes = [r for r in routes if r.text != route.text] + ([route] if change.kind == "extra" else [])
        elif words[0] == "sysctl":
            key = words[1].split("=", 1)[0]
            sysctls.pop(key, None)
            if change.have != "unreadable":
                sysctls[key] = change.have
        elif words[0] == "device":
            interfaces.pop(words[1], None)
        elif SERVICE_LINE.match(change.line) and change.kind != "extra":  # not running: started again
            services = [s for s in services if s.name != words[1]]
        elif words[0] in interfaces:
            interfaces[words[0]] = _interface(interfaces[words[0]], change)
    return dataclasses.replace(
        ns, interfaces=tuple(interfaces.values()), routes=tuple(routes), sysctls=tuple(sysctls.items()), services=tuple(services)
    )


def _bridge(bridge: Bridge, found: list[Difference]) -> Bridge:
    own = _root_interface(Interface(bridge.name, bridge.device, bridge.addresses, bridge.mtu), found)
    return dataclasses.replace(bridge, addresses=own.addresses, mtu=own.mtu)


def as_found(lab: Lab, drift: list[Difference]) -> Found:
    """`lab` (its record) as the kernel has it, given its `drift` (extra devices are left out: not the lab's)."""
    gone_netns = {d.netns for d in drift if d.line == "namespace" and d.kind == "missing"}
    gone = {(d.netns, d.line.removeprefix("device ")) for d in drift if d.line.startswith("device ") and d.kind == "missing"}
    by_netns: dict[str | None, list[Difference]] = {}
    for d in drift:
        if d.kind != "extra" or not d.line.startswith(("device ", "namespace")):
            by_netns.setdefault(d.netns, []).append(d)
    # a link condition lost or changed is as good as none (it is replaced); one no end declares, as found
    qdiscs: dict[tuple[str | None, str], dict[str, str]] = {}
    for d in drift:
        words = d.line.split(" ")
        if len(words) == 3 and words[1] in ("qdisc", "rate"):
            qdiscs.setdefault((d.netns, words[0]), {"drift": d.kind})[words[1]] = words[2] if d.kind == "extra" else ""
    links = tuple(
        _conditions_found(link, qdiscs)
        for link in lab.links
        if not any(end.netns in gone_netns or (end.netns, end.device) in gone for end in (link.a, link.b))
    )
    namespaces = tuple(_namespace(ns, by_netns.get(ns.netns, [])) for ns in lab.namespaces if ns.netns not in gone_netns)
    root = by_netns.get(None, [])
    bridges = tuple(_bridge(br, root) for br in lab.bridges if (None, br.device) not in gone)
    root_interfaces = tuple(_root_interface(iface, root) for iface in lab.root_interfaces if (None, iface.device) not in gone)
    ups = [d for d in drift if d.kind == "different" and d.line.endswith(" up")]
    ports = [d for d in drift if d.kind == "different" and len(d.line.split(" ")) == 3 and d.line.split(" ")[1] == "master"]
    before = tuple(Command(("link", "set", "dev", d.line.split(" ")[0], "up"), d.netns) for d in ups)
    after = tuple(Command(("link", "set", "dev", *d.line.split(" ")), d.netns) for d in ports)
    found = dataclasses.replace(lab, namespaces=namespaces, links=links, bridges=bridges, root_interfaces=root_interfaces)
    return Found(found, before, after, (*ups, *ports))


def _conditions_found(link: VethLink, qdiscs: dict[tuple[str | None, str], dict[str, str]]) -> VethLink:
    """`link` with the conditions found: a lost or changed one as none, one no end declares as it is
    (a netem one's delay, jitter and loss are not read back: it is shown as `delay 0ms`)."""
    sends = []
    for end, conditions in zip((link.a, link.b), link.sends, strict=True):
        found = qdiscs.get((end.netns, end.device))
        if found is not None and found["drift"] == "extra":
            rate = found.get("rate") or None
            conditions = Conditions(rate=rate) if found.get("qdisc") == "tbf" else Conditions(rate=rate, delay="0ms")
        elif found is not None:
            conditions = None
        sends.append(conditions)
    return dataclasses.replace(link, sends=(sends[0], sends[1]))


def _root_interface(iface: Interface, found: list[Difference]) -> Interface:
    """A root-namespace device (`iface.device`) with the root namespace's differences about it applied."""
    for change in found:
        if change.line.split(" ")[0] == iface.device:
            iface = _interface(iface, change)
    return iface
