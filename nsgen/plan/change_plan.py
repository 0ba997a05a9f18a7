"""The change from one lab to another as a plan: what apply.sh runs.

What is removed goes first, in reverse dependency order (services, routes, sysctls, addresses, links,
bridges, namespaces), then what is added (namespaces, bridges, links, link-local, sysctls, addresses,
MTUs and MACs, up, routes, services). A kept interface whose address changes keeps its device. Nothing outside the
change is in the plan: an untouched veth is never deleted, so it keeps its ifindex and its traffic.

The routes of a namespace that loses an address or an interface are removed before and added again
after: the kernel drops a route whose gateway or device goes away, and would not bring it back.
"""

import dataclasses
from dataclasses import dataclass
from typing import Literal

from nsgen.plan import commands, lab_plans
from nsgen.plan.changes import SYSCTL_DEFAULT, Change, changes
from nsgen.plan.commands import MTU_DEFAULT, Command, Made, Plan, addr_command, route_command, step
from nsgen.plan.compare import Comparison, compare, interfaces, tunnel_ends, vxlan_conditions
from nsgen.topology import ends
from nsgen.topology.ends import Tunnel, VxlanEnd
from nsgen.topology.facts import KINDS
from nsgen.topology.model import Interface, Lab, Link


@dataclass(frozen=True)
class Diff:
    """The change from `old` to `new`: its lines, its plan, and the namespaces it touches."""

    old: Lab
    new: Lab
    changes: tuple[Change, ...]
    plan: Plan
    touched: frozenset[str]  # namespaces (kernel names) of `old` that the plan changes or deletes
    disturbed: frozenset[str]  # namespaces whose every route the plan deletes and adds again

    @property
    def empty(self) -> bool:
        return not self.plan


def diff(old: Lab, new: Lab, redo_routes: frozenset[str] = frozenset()) -> Diff:
    """The change that turns the running lab `old` into `new`; the routes of the namespaces
    `redo_routes` (kernel names) are all deleted and added again (a rollback's)."""
    c = compare(old, new, redo_routes)
    return Diff(old, new, changes(c), (*_removals(c), *_additions(c), *_tuning(c)), c.touched, c.disturbed)


def undo(forward: Diff) -> Diff:
    """The rollback of `forward`: back from its new lab to its old one, wherever it stopped."""
    return diff(forward.new, forward.old, forward.disturbed)


def _removals(c: Comparison) -> Plan:
    route_del, sysctl_reset = [], []
    for name in c.kept_ns:
        before, after = c.old_ns[name], c.new_ns[name]
        going = before.routes if before.netns in c.disturbed else [r for r in before.routes if r not in after.routes]
        route_del += [route_command("del", r, before.netns) for r in going]
        new_keys = dict(after.sysctls)
        sysctl_reset += [
            Command((k, SYSCTL_DEFAULT), before.netns, "sysctl", removes=(Made(before.netns, "sysctl", k),))
            for k, _ in before.sysctls
            if k not in new_keys
        ]
    link_del = []
    for link in c.removed_links:
        # from its root-namespace end, else from an end in a namespace that stays; a link between
        # namespaces that both go, goes with them
        root = [end for end in (link.a, link.b) if end.netns is None]
        kept = [end for end in (link.a, link.b) if end.netns is not None and end.node in c.new_ns]
        removals = [(end, removal) for end in (*root, *kept) if (removal := ends.kind(end).removal(end))]
        for here, (argv, netns) in removals[:1]:  # the device it deletes, then its peer
            peers = [end for end in (link.a, link.b) if end is not here and ends.owned(end)]
            link_del.append(Command(argv, netns, removes=tuple(Made(e.netns, "device", e.device) for e in (here, *peers))))
    return (
        *step(
            "delete the lab's NAT and forwarded ports' rules when they change (added again below, in order)",
            [commands.rule_del(rule) for rule in _outside(c)[0]],
        ),
        *step(
            "stop the services that go or change (a changed one is started again below)",
            [commands.stop_service(ns.netns, service) for ns, service in c.stopped],
        ),
        *step(
            "remove the routes that go (and, where an address or interface goes, every route: the\n"
            "kernel would drop those and not bring them back; they are added again below)",
            route_del,
        ),
        *step("set the sysctls that go back to a new namespace's default", sysctl_reset),
        *step("remove the addresses that go from interfaces that stay", _kept_addresses(c, "del")),
        *step("delete the links that go (a veth pair goes with either end)", link_del),
        *step(
            "delete the VXLAN devices that go (or change: made again below), and the spanning bridges'\n"
            "FDB entries of the machines that leave them",
            _tunnels_removed(c),
        ),
        *step(
            "delete the bridges that go",
            [commands.device_del(br.device) for n, br in c.old_br.items() if n not in c.new_br],
        ),
        *step(
            "stop every process still running in the namespaces that go",
            commands.stop_processes([ns.netns for n, ns in c.old_ns.items() if n not in c.new_ns]),
        ),
        *step(
            "delete the namespaces that go: their devices go with them",
            [commands.netns_del(ns.netns) for n, ns in c.old_ns.items() if n not in c.new_ns],
        ),
    )


def _additions(c: Comparison) -> Plan:
    """New namespaces, bridges and veth pairs, and the link-local mode of the devices that stay."""
    return (
        *step(
            "create the new namespaces", [commands.netns_add(ns.netns) for n, ns in c.new_ns.items() if n not in c.old_ns]
        ),
        *step(
            "create the new bridges",
            [cmd for n, br in c.new_br.items() if n not in c.old_br for cmd in commands.bridge_add(br, c.v4_new)],
        ),
        *step("create the new links, each end directly where it lives", [commands.link_add(link) for link in c.added_links]),
        *step(
            "create the new VXLAN devices (a link's end directly inside its namespace, a spanning bridge's\n"
            "port on this machine's part), and the spanning bridges' FDB entries of the machines that join them",
            _tunnels_added(c),
        ),
        *step("IPv6 link-local addresses on the devices that stay, as the new lab wants them", _link_local_flip(c)),
    )


def _tunnels_removed(c: Comparison) -> list[Command]:
    """A multi-host part's VXLAN devices that go: a link's end in a namespace that stays (else it goes
    with its namespace), a bridge's port; a kept port's FDB entries of the machines that leave it."""
    gone = [_deletion(t) for t in c.tunnels.removed if not isinstance(t, VxlanEnd) or t.end.node in c.new_ns]
    gone += [commands.flood_entry("del", b.device, r) for b, a in c.tunnels.kept_ports for r in b.remotes if r not in a.remotes]
    return gone


def _deletion(tunnel: Tunnel) -> Command:
    """The deletion of a VXLAN device, as the table of ends gives it."""
    removal = ends.kind(tunnel).removal(tunnel)
    assert removal is not None, "a VXLAN device is the lab's: deleted from where it is"
    argv, netns = removal
    return Command(argv, netns, removes=(Made(netns, "device", tunnel.device),))


def _tunnels_added(c: Comparison) -> list[Command]:
    made, fdb = lab_plans.tunnels_made(c.tunnels.added, c.v4_new)
    fdb += [commands.flood_entry("append", a.device, r) for b, a in c.tunnels.kept_ports for r in a.remotes if r not in b.remotes]
    return made + fdb


def _conditions(c: Comparison) -> list[Command]:
    """Each end whose sent traffic's conditions change: its qdisc replaced (or deleted), the link and
    its devices left as they are; a new link's (or VXLAN end's), added."""
    result = [command for link in c.added_links for command in commands.shaping(link)]
    result += [commands.conditioning("add", t.end, t.sends) for t in c.tunnels.added if isinstance(t, VxlanEnd) and t.sends]
    for before, after in c.kept_links:
        old = dict(zip(map(str, (before.a, before.b)), before.sends, strict=True))
        for end, sends in zip((after.a, after.b), after.sends, strict=True):
            if old[str(end)] != sends:
                result.append(commands.conditioning("replace" if sends else "del", end, sends))
    for tunnel, _, sends in vxlan_conditions(c.old, c.new):  # a multi-host lab's part: on its VXLAN ends
        result.append(commands.conditioning("replace" if sends else "del", tunnel.end, sends))
    return result


def _link_local_flip(c: Comparison) -> list[Command]:
    """Every kept device follows the lab's new IPv6 choice: IPv6 off and on again (it has no IPv6
    address yet, or no more) makes or drops the link-local address of the new mode without taking
    the device down."""
    if c.v4_old == c.v4_new:
        return []
    mode = "none" if c.v4_new else "eui64"
    kept_devices = [(e.netns, e.device) for _, link in c.kept_links for e in (link.a, link.b)]
    kept_devices += [(None, c.new_br[n].device) for n in c.kept_br]
    flip = []
    for ns, dev in kept_devices:
        key = f"net.ipv6.conf.{dev}.disable_ipv6"
        flip += [Command(("link", "set", "dev", dev, "addrgenmode", mode), ns)]
        flip += [Command((key, "1"), ns, "sysctl"), Command((key, "0"), ns, "sysctl")]
    return flip


def _tuning(c: Comparison) -> Plan:
    """Sysctls, addresses, MTUs and MACs that are new or change; the new devices' link-local and up; routes."""
    sysctls = []
    for name, ns in c.new_ns.items():
        before = dict(c.old_ns[name].sysctls) if name in c.old_ns else {}
        sysctls += [Command((k, v), ns.netns, "sysctl") for k, v in ns.sysctls if before.get(k) != v]
    new_ends = [end for link in c.added_links for end in interfaces(c.new, link)] + tunnel_ends(c.new, c.tunnels.added)
    addr_add = [addr_command("add", a, end.device, end.netns) for end in new_ends for a in end.iface.addresses]
    addr_add += _kept_addresses(c, "add")
    namespaced = [(end.netns, end.device) for link in c.added_links for end in (link.a, link.b) if end.netns is not None]
    namespaced += [(t.end.netns, t.end.interface) for t in c.tunnels.added if isinstance(t, VxlanEnd)]
    root_new = _root_veths(c.added_links)
    local = []
    if c.v4_new:
        local += [Command(("link", "set", "dev", dev, "addrgenmode", "none"), ns) for ns, dev in namespaced]
        local += [Command(("link", "set", "dev", dev, "addrgenmode", "none")) for dev in root_new]
    ups = [commands.loopback_up(ns.netns) for n, ns in c.new_ns.items() if n not in c.old_ns]
    ups += [commands.link_up(dev, ns) for ns, dev in namespaced]
    ups += [commands.link_up(dev, None) for dev in root_new]
    route_add = []
    for name, ns in c.new_ns.items():
        redo = name not in c.old_ns or ns.netns in c.disturbed
        route_add += [route_command("add", r, ns.netns) for r in ns.routes if redo or r not in c.old_ns[name].routes]
    return (
        *step("set the sysctls that are new or change", sysctls),
        *step("the links' conditions that are new or change, in place (tc qdisc replace or del)", _conditions(c)),
        *step("add the new addresses", addr_add),
        *step("set the MTUs and MAC addresses that are new or change", _mtus_and_macs(c, new_ends)),
        *step("an IPv4-only lab: no IPv6 link-local addresses on the new devices", local),
        *step("set the new interfaces up", ups),
        *step(
            "the neighbours of a device made again forget its old MAC (their entry would send to it for\n"
            "seconds more): its addresses flushed from the other members of its segment",
            _forgotten(c, new_ends),
        ),
        *step("add the new routes", route_add),
        *step(
            "the lab and the outside, when they change: forwarding on in the root namespace (teardown puts\n"
            "it back), then every NAT and forwarded port rule, in order",
            _outside(c)[1],
        ),
        *step(
            "--allow-forward's FORWARD rules follow the bridges, NAT and forwarded ports that come or go,\n"
            "where the lab has them (it was set up with --allow-forward, and FORWARD drops)",
            _forward_rules(c),
        ),
        *step(
            "start the services that come or change, each inside its namespace",
            [commands.start_service(ns.netns, service) for ns, service in c.started],
        ),
    )


def _forward_rules(c: Comparison) -> list[Command]:
    """The FORWARD rules --allow-forward has for the new lab and not the old (`add`), and for the old
    and not the new (`del`); none where the new lab has none (apply.sh deletes every one: retired)."""
    if not commands.accepts(c.new):
        return []
    def rule(verb: Literal["add", "del"], match: tuple[str, ...]) -> Command:
        made = (Made(None, "iptables", value=" ".join(match)),)  # the rule, by its match (declared.accepted's words)
        if verb == "add":
            return Command((verb, *match), None, "forward_rule", makes=made)
        return Command((verb, *match), None, "forward_rule", removes=made)

    return [rule("add", match) for match in c.accepts_added] + [rule("del", match) for match in c.accepts_removed]


def _kept_addresses(c: Comparison, verb: Literal["add", "del"]) -> list[Command]:
    """On the interfaces and bridges that stay (their devices keep their names): `del` the addresses
    that go, or `add` those that come."""
    pairs = [(before.iface.addresses, after.iface.addresses, after.device, after.netns) for before, after in c.kept_ends]
    pairs += [(c.old_br[n].addresses, c.new_br[n].addresses, c.new_br[n].device, None) for n in c.kept_br]
    return [
        addr_command(verb, a, device, netns)
        for old, new, device, netns in pairs
        for a in (old if verb == "del" else new)
        if a not in (new if verb == "del" else old)
    ]


def _mtus_and_macs(c: Comparison, new_ends: list) -> list[Command]:
    tuning = [command for e in new_ends for command in commands.tuning(e.device, e.iface, e.netns)]
    for before, after in c.kept_ends:
        mtu = after.iface.mtu or MTU_DEFAULT if before.iface.mtu != after.iface.mtu else None
        mac = after.iface.mac if before.iface.mac != after.iface.mac else None
        tuning += commands.tuning(after.device, dataclasses.replace(after.iface, mtu=mtu, mac=mac), after.netns)
    for n in c.kept_br:
        old, new = c.old_br[n], c.new_br[n]
        mtu = new.mtu or MTU_DEFAULT if old.mtu != new.mtu else None
        changed = Interface(new.name, new.device, (), mtu, new.mac if old.mac != new.mac else None)
        tuning += commands.tuning(new.device, changed, None)
    return tuning


def _forgotten(c: Comparison, new_ends: list) -> list[Command]:
    """`ip neigh flush to ADDRESS dev DEVICE` on each other member of the segment of a new interface in a
    namespace that stays, or whose MAC changes: a device made again (a link repaired, an interface
    renamed by hand) has a new MAC. A new namespace's interfaces are no one's neighbours yet."""
    again = {(e.netns, e.device): e.iface.addresses for e in new_ends if e.netns in {ns.netns for ns in c.old_ns.values()}}
    again |= {(a.netns, a.device): a.iface.addresses for b, a in c.kept_ends if b.iface.mac != a.iface.mac}
    here = {ns.name: ns.netns for ns in c.new.namespaces}
    flushes = []
    for segment in c.new.segments:
        members = [(None if m.node == ends.ROOT else here.get(m.node, ""), m.interface.device) for m in segment.members]
        for place in [m for m in members if m in again]:
            flushes += [
                Command(("neigh", "flush", "to", str(address.ip), "dev", device), netns)
                for netns, device in members
                if (netns, device) != place and netns != ""  # a peer's namespace (on another machine) is not here
                for address in again[place]
            ]
    return flushes


def _root_veths(links: list[Link]) -> list[str]:
    return [end.device for link in links for end in link.creation_order if end.netns is None and ends.owned(end)]


def touched_devices(steps: Plan) -> set[str]:
    """The root-namespace devices the plan makes, changes or deletes, and the bridges it plugs ports into."""
    facts = [fact for s in steps for c in s.commands if isinstance(c, Command) for fact in (*c.makes, *c.removes)]
    rooted = [fact for fact in facts if fact.netns is None and (fact.kind == "device" or KINDS[fact.kind].of_device)]
    return {fact.device for fact in rooted} | {fact.value for fact in rooted if fact.kind == "master"}


def _outside(c: Comparison) -> tuple[list[Command], list[Command]]:
    """The NAT and forwarded-port rules to delete and the commands to add, when they differ at all: all
    of the old lab's rules out, then all of the new lab's in (a RETURN rule must come before its
    MASQUERADE: appending one would not), forwarding turned on first where the old lab had none on."""
    old, new = commands.outside(c.old), commands.outside(c.new)
    if old == new:
        return [], []
    rules = [command for command in old if command.tool == "iptables"]
    return rules, [command for command in new if command.tool == "iptables" or not old]

