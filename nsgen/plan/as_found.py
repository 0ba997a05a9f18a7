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
from typing import Literal

from nsgen.plan import declared
from nsgen.plan.commands import Command, Made
from nsgen.topology.conditions import Conditions
from nsgen.topology.ends import Endpoint, VxlanEnd
from nsgen.topology.facts import CONDITIONED, KINDS, Difference, Fact
from nsgen.topology.model import Bridge, Interface, Lab, Link, Namespace, Route, interface_address

#: Routes of these types are no `Route` of the model.
TYPED_ROUTES = ("blackhole", "unreachable", "prohibit", "throw")


def unheld(fact: Fact) -> bool:
    """Whether the model cannot hold `fact` as extra (a policy rule, a typed route, a route of another
    table than main, a device in a lab namespace: one renamed by hand, say): an extra one is removed by
    its kind's command, before the change."""
    words = fact.value.split()
    held_route = fact.kind == "route" and words[0] not in TYPED_ROUTES and "table" not in words
    return fact.kind == "rule" or (fact.kind == "route" and not held_route) or (fact.kind == "device" and fact.netns is not None)


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
    kind, value = change.fact.kind, change.fact.value
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
        fact = change.fact
        if fact.kind == "route" and not unheld(fact):
            route = route_of(fact.value)
            routes = [r for r in routes if r.text != route.text] + ([route] if change.kind == "extra" else [])
        elif fact.kind == "sysctl":
            sysctls.pop(fact.device, None)
            if change.have != "unreadable":
                sysctls[fact.device] = change.have
        elif fact.kind == "device":
            interfaces.pop(fact.device, None)
        elif fact.kind == "service" and change.kind != "extra":  # not running: started again
            services = [s for s in services if s.name != fact.device]
        elif fact.device in interfaces:
            interfaces[fact.device] = _interface(interfaces[fact.device], change)
    return dataclasses.replace(
        ns, interfaces=tuple(interfaces.values()), routes=tuple(routes), sysctls=tuple(sysctls.items()), services=tuple(services)
    )


def _bridge(bridge: Bridge, found: list[Difference]) -> Bridge:
    own = _root_interface(Interface(bridge.name, bridge.device, bridge.addresses, bridge.mtu, bridge.mac), found)
    return dataclasses.replace(bridge, addresses=own.addresses, mtu=own.mtu, mac=own.mac or bridge.mac)


def as_found(lab: Lab, drift: list[Difference]) -> Found:
    """`lab` (its record) as the kernel has it, given its `drift` (extra devices are left out: not the lab's)."""
    gone_netns = {d.netns for d in drift if d.fact.kind == "namespace" and d.kind == "missing"}
    gone = {(d.netns, d.fact.device) for d in drift if d.fact.kind == "device" and d.kind == "missing"}
    removed = [d for d in drift if d.kind == "extra" and unheld(d.fact)]
    by_netns: dict[str | None, list[Difference]] = {}
    for d in drift:
        if d.kind != "extra" or not (d.fact.kind in ("device", "namespace") or unheld(d.fact)):
            by_netns.setdefault(d.netns, []).append(d)
    # a link condition as the kernel has it: each value that differs, the kernel's (None: it has none)
    qdiscs: Qdiscs = {}
    for d in drift:
        if d.fact.kind in CONDITIONED:
            value = {"missing": None, "different": d.have, "extra": d.fact.value}[d.kind]
            qdiscs.setdefault((d.netns, d.fact.device), {})[d.fact.kind] = value
    links = tuple(
        _conditions_found(link, qdiscs)
        for link in lab.links
        if not any(end.netns in gone_netns or (end.netns, end.device) in gone for end in (link.a, link.b))
    )
    namespaces = tuple(_namespace(ns, by_netns.get(ns.netns, [])) for ns in lab.namespaces if ns.netns not in gone_netns)
    root = by_netns.get(None, [])
    bridges = tuple(_bridge(br, root) for br in lab.bridges if (None, br.device) not in gone)
    root_interfaces = tuple(_root_interface(iface, root) for iface in lab.root_interfaces if (None, iface.device) not in gone)
    ups = [d for d in drift if d.kind == "different" and d.fact.kind == "up"]
    ports = [d for d in drift if d.kind != "extra" and d.fact.kind == "master"]
    outside, rules = _outside(lab, drift)
    floods = [d for d in drift if d.fact.kind == "floods"]  # a spanning bridge's port's FDB entries: set as declared
    lost = [d for d in floods if d.kind == "missing"]
    before = (*_commands(ups, "make"), *_commands(removed, "remove"), *outside, *_commands(lost, "make"))
    before += _commands([d for d in floods if d.kind == "extra"], "remove")
    # a VXLAN device gone (or its namespace) is not there: the change makes it again
    there = [t for t in lab.tunnels if t.place not in gone and not (isinstance(t, VxlanEnd) and t.end.netns in gone_netns)]
    tunnels = tuple(
        dataclasses.replace(t, sends=_sends_found(t.end, t.sends, qdiscs)) if isinstance(t, VxlanEnd) else t for t in there
    )
    found = dataclasses.replace(
        lab, namespaces=namespaces, links=links, bridges=bridges, root_interfaces=root_interfaces, tunnels=tunnels
    )
    if any(_nat(d) for d in rules):  # none of its nat rules is left: the change adds them all
        found = dataclasses.replace(found, nat=(), forwards=())
    return Found(found, before, _commands(ports, "make"), (*ups, *ports, *removed, *rules, *floods))


def _commands(drift: list[Difference], way: Literal["make", "remove"]) -> tuple[Command, ...]:
    """The commands that make (or remove) the facts of `drift`, each by its kind's tool."""
    found = []
    for d in drift:
        if argv := (d.fact.make() if way == "make" else d.fact.remove()):
            fact = (Made.of(d.fact),)
            found.append(Command(argv, d.netns, KINDS[d.fact.kind].tool, *((fact, ()) if way == "make" else ((), fact))))
    return tuple(found)


def _outside(lab: Lab, drift: list[Difference]) -> tuple[list[Command], list[Difference]]:
    """The root namespace's sysctls set back; where a NAT or forwarded-port rule is missing or extra,
    every rule of the lab's that is there deleted (the change adds them all again, in order: a
    RETURN before its MASQUERADE), with the differences they repair."""
    sysctls = [d for d in drift if d.netns is None and d.fact.kind == "sysctl" and d.kind == "different"]
    rules = [d for d in drift if d.fact.kind == "iptables"]
    commands = list(_commands(sysctls, "make"))
    if any(_nat(d) for d in rules):
        missing = {d.line for d in rules if d.kind == "missing"}
        ours = [fact for fact in declared.outside(lab) if fact.kind == "iptables" and fact.line not in missing]
        commands += _commands([Difference(fact, "extra") for fact in ours], "remove")
    commands += _commands([d for d in rules if d.kind == "extra"], "remove")  # a filter table's too
    # a FORWARD rule of --allow-forward's that is missing: inserted again, first in the chain, as it was
    accepts = [d.fact.make() for d in rules if d.kind == "missing" and not _nat(d)]
    commands += [Command(tuple("-I" if word == "-A" else word for word in argv), None, "iptables") for argv in accepts]
    return commands, [*sysctls, *rules]


def _nat(difference: Difference) -> bool:
    """Whether the difference is of a rule of the nat table (the lab's NAT and forwarded ports)."""
    return difference.fact.kind == "iptables" and difference.fact.value.startswith("-t nat ")


#: The link conditions drift names, by namespace and device: the kernel's value of each kind that differs.
Qdiscs = dict[tuple[str | None, str], dict[str, str | None]]


def _conditions_found(link: Link, qdiscs: Qdiscs) -> Link:
    """`link` with the conditions found on its ends (`_sends_found`)."""
    sends = [_sends_found(end, conditions, qdiscs) for end, conditions in zip((link.a, link.b), link.sends, strict=True)]
    return dataclasses.replace(link, sends=(sends[0], sends[1]))


def _sends_found(end: Endpoint, conditions: Conditions | None, qdiscs: Qdiscs) -> Conditions | None:
    """The conditions the kernel has on what `end` sends: the declared ones with the kernel's values
    where they differ (none where it has no root qdisc of a link's; a netem one with neither delay
    nor loss as `delay 0ms`), so that a change replaces them and its rollback puts them back."""
    found = qdiscs.get((end.netns, end.device))
    if found is None:
        return conditions
    values = {key: value for key, value in dataclasses.asdict(conditions).items() if value is not None} if conditions else {}
    values |= {kind: value for kind, value in found.items() if kind != "qdisc"}
    qdisc = found.get("qdisc", conditions.qdisc if conditions else None)
    rate, delay, jitter, loss = (values.get(kind) for kind in ("rate", "delay", "jitter", "loss"))
    if qdisc is None:
        return None
    if qdisc == "tbf":
        return Conditions(rate=rate)
    return Conditions(rate=rate, delay=delay or (None if loss else "0ms"), jitter=jitter if delay else None, loss=loss)


def _root_interface(iface: Interface, found: list[Difference]) -> Interface:
    """A root-namespace device (`iface.device`) with the root namespace's differences about it applied."""
    for change in found:
        if change.fact.device == iface.device and KINDS[change.fact.kind].of_device:
            iface = _interface(iface, change)
    return iface
