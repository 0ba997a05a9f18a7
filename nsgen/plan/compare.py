"""The comparison of a running lab with a new one, object by object: what goes, what comes, what stays.

Namespaces and bridges are compared by name, veth links by their two ends (`ns-0:eth0`,
`v-net-0:veth-0`); a kept link's interfaces are paired by name, whatever order the topology writes
them in. A renamed object is a removal and an addition. `touched` and `disturbed` say which of the
old lab's namespaces the change reaches.
"""

import dataclasses
from dataclasses import dataclass

from nsgen.plan import commands
from nsgen.plan.lab_plans import ipv4_only
from nsgen.topology.conditions import Conditions
from nsgen.topology.ends import Tunnel, VxlanEnd, VxlanPort, owned
from nsgen.topology.model import Bridge, Interface, Lab, Link, Namespace, Service


@dataclass(frozen=True)
class End:
    """A link end that is an interface (a namespace's or the root's), with where it lives."""

    label: str
    netns: str | None
    device: str
    iface: Interface


@dataclass(frozen=True)
class Tunnels:
    """A multi-host lab's part, old against new: the VXLAN devices that go and those that come (one
    whose settings change goes and comes again), and the spanning bridges' ports that stay, old and
    new, whose other machines (their FDB entries) may change."""

    removed: list[Tunnel]
    added: list[Tunnel]
    kept_ports: list[tuple[VxlanPort, VxlanPort]]


@dataclass(frozen=True)
class Comparison:
    """The objects of `old` and `new`, sorted into removed, added and kept."""

    old: Lab
    new: Lab
    old_ns: dict[str, Namespace]
    new_ns: dict[str, Namespace]
    old_br: dict[str, Bridge]
    new_br: dict[str, Bridge]
    removed_links: list[Link]
    added_links: list[Link]
    kept_links: list[tuple[Link, Link]]
    kept_ends: list[tuple[End, End]]  # the interfaces of kept links, before and after
    v4_old: bool
    v4_new: bool
    touched: frozenset[str]  # namespaces (kernel names) of `old` that the change reaches or deletes
    disturbed: frozenset[str]  # namespaces whose every route is deleted and added again
    stopped: list[tuple[Namespace, Service]]  # services of `old` that go or change (restarted)
    started: list[tuple[Namespace, Service]]  # services of `new` that come or change
    tunnels: Tunnels  # a multi-host lab's part: its VXLAN devices that go, come, or change their remotes

    @property
    def kept_ns(self) -> list[str]:
        return [name for name in self.new_ns if name in self.old_ns]

    @property
    def kept_br(self) -> list[str]:
        return [name for name in self.new_br if name in self.old_br]

    @property
    def accepts_added(self) -> list[tuple[str, ...]]:
        """The matches of --allow-forward's FORWARD rules (`commands.accepts`) that `new` has and `old` not."""
        return _beyond(self.new, self.old)

    @property
    def accepts_removed(self) -> list[tuple[str, ...]]:
        """Those `old` has and `new` not."""
        return _beyond(self.old, self.new)


def _beyond(lab: Lab, other: Lab) -> list[tuple[str, ...]]:
    theirs = {command.argv for command in commands.accepts(other)}
    return [command.argv for command in commands.accepts(lab) if command.argv not in theirs]


def _settings(tunnel: Tunnel) -> Tunnel:
    """What a VXLAN device is made with: not its conditions, nor a port's other machines (changed in place)."""
    return dataclasses.replace(tunnel, sends=None) if isinstance(tunnel, VxlanEnd) else dataclasses.replace(tunnel, remotes=())


def compare_tunnels(old: Lab, new: Lab) -> Tunnels:
    """The VXLAN devices of `old` and `new` by where they are (a multi-host lab's part)."""
    before = {t.place: t for t in old.tunnels}
    after = {t.place: t for t in new.tunnels}
    kept = [key for key, t in after.items() if key in before and _settings(before[key]) == _settings(t)]  # in order
    kept_ports = [(before[key], after[key]) for key in kept]
    ports = [(b, a) for b, a in kept_ports if isinstance(b, VxlanPort) and isinstance(a, VxlanPort)]
    return Tunnels([t for key, t in before.items() if key not in kept], [t for key, t in after.items() if key not in kept], ports)


def vxlan_conditions(old: Lab, new: Lab) -> list[tuple[VxlanEnd, Conditions | None, Conditions | None]]:
    """A multi-host lab's part: each VXLAN end that stays and whose conditions change, with its old ones and its new ones."""
    before = {str(t.end): t for t in old.tunnels if isinstance(t, VxlanEnd)}
    kept = [(before[str(t.end)], t) for t in new.tunnels if isinstance(t, VxlanEnd) and str(t.end) in before]
    return [(t, was.sends, t.sends) for was, t in kept if _settings(was) == _settings(t) and was.sends != t.sends]


def link_key(link: Link) -> tuple[str, str]:
    """A link by its two ends, as the topology names them."""
    return tuple(sorted((str(link.a), str(link.b))))  # type: ignore[return-value]


def interfaces(lab: Lab, link: Link) -> list[End]:
    """The ends of `link` that are the lab's interfaces (not bridge ports, not a macvlan's parent)."""
    found = []
    for end in (link.a, link.b):
        iface = lab.interface_of(end) if end.bridge is None and owned(end) else None
        if iface is not None:
            found.append(End(str(end), end.netns, end.device, iface))
    return found


def tunnel_ends(lab: Lab, tunnels: list[Tunnel]) -> list[End]:
    """The VXLAN ends among `tunnels` (of a multi-host part): its namespaces' interfaces too (an MTU, a MAC, addresses)."""
    ends = [t.end for t in tunnels if isinstance(t, VxlanEnd)]
    return [End(str(end), end.netns, end.device, iface) for end in ends if (iface := lab.interface_of(end)) is not None]


def _paired(before: list[End], after: list[End]) -> list[tuple[End, End]]:
    """A kept link's interfaces, old and new, paired by what they are (`ns-0:eth0`), not by position:
    a topology may write the same link's ends in the other order."""
    old = {end.label: end for end in before}
    return [(old[end.label], end) for end in after if end.label in old]


def compare(old: Lab, new: Lab, redo_routes: frozenset[str] = frozenset()) -> Comparison:
    """`old` against `new`; the namespaces `redo_routes` (kernel names) have every route redone."""
    old_links = {link_key(link): link for link in old.links}
    new_links = {link_key(link): link for link in new.links}
    removed = [link for key, link in old_links.items() if key not in new_links]
    added = [link for key, link in new_links.items() if key not in old_links]
    kept = [(old_links[key], link) for key, link in new_links.items() if key in old_links]
    kept_ends = [pair for before, after in kept for pair in _paired(interfaces(old, before), interfaces(new, after))]
    tunnels = compare_tunnels(old, new)
    kept_tunnels = [tunnel for tunnel in new.tunnels if tunnel not in tunnels.added]
    kept_ends += _paired(tunnel_ends(old, list(old.tunnels)), tunnel_ends(new, kept_tunnels))  # a VXLAN device that stays
    old_ns = {ns.name: ns for ns in old.namespaces}
    new_ns = {ns.name: ns for ns in new.namespaces}
    touched = {ns.netns for name, ns in old_ns.items() if name not in new_ns}
    disturbed: set[str] = set(redo_routes)
    for link in removed:
        for end in (link.a, link.b):
            if end.netns is not None:
                touched.add(end.netns)
                disturbed.add(end.netns)
    for link in added:
        touched.update(end.netns for end in (link.a, link.b) if end.netns is not None and end.node in old_ns)
    for tunnel in tunnels.removed:  # as a link's end that goes, one that comes
        if isinstance(tunnel, VxlanEnd):
            touched.add(tunnel.end.netns)
            disturbed.add(tunnel.end.netns)
    touched.update(t.end.netns for t in tunnels.added if isinstance(t, VxlanEnd) and t.end.node in old_ns)
    for before_link, after_link in kept:
        if before_link.sends != after_link.sends:  # its conditions change: its ends' namespaces are touched
            touched.update(end.netns for end in (before_link.a, before_link.b) if end.netns is not None)
    touched.update(t.end.netns for t, _, _ in vxlan_conditions(old, new))
    for before, after in kept_ends:
        if before.iface != after.iface and before.netns is not None:
            touched.add(before.netns)
        if set(before.iface.addresses) - set(after.iface.addresses) and before.netns is not None:
            disturbed.add(before.netns)
    for name in (n for n in new_ns if n in old_ns):
        if new_ns[name].routes != old_ns[name].routes or new_ns[name].sysctls != old_ns[name].sysctls:
            touched.add(old_ns[name].netns)
    stopped, started = _services(old_ns, new_ns), _services(new_ns, old_ns)
    touched.update(ns.netns for ns, _ in stopped)
    return Comparison(
        old,
        new,
        old_ns,
        new_ns,
        {br.name: br for br in old.bridges},
        {br.name: br for br in new.bridges},
        removed,
        added,
        kept,
        kept_ends,
        ipv4_only(old),
        ipv4_only(new),
        frozenset(touched),
        frozenset(disturbed),
        stopped,
        started,
        tunnels,
    )


def _services(these: dict[str, Namespace], others: dict[str, Namespace]) -> list[tuple[Namespace, Service]]:
    """The services of `these` namespaces that `others` do not run as they are: a service is kept
    (and keeps running) only where its namespace, name, command and readiness stay the same."""
    result = []
    for name, ns in these.items():
        kept = set(others[name].services) if name in others else set()
        result += [(ns, service) for service in ns.services if service not in kept]
    return result
