"""The change from one lab to another as a plan: what `nsgen plan` prints and apply.sh runs.

Objects are compared one by one: namespaces by name, bridges by name, veth links by their two ends
(`ns-0:eth0`, `v-net-0:veth-0`), addresses per interface, routes per namespace, sysctls, MTUs and
MACs. What is removed goes first, in reverse dependency order (routes, addresses, links, bridges,
namespaces), then what is added (namespaces, bridges, links, sysctls, addresses, MTUs and MACs,
link-local off, up, routes). A kept interface whose address changes keeps its device; a renamed
object is a removal and an addition. Nothing outside the change is in the plan: an untouched veth is
never deleted, so it keeps its ifindex and its traffic.

The routes of a namespace that loses an address or an interface are removed before and added again
after: the kernel drops a route whose gateway or device goes away, and would not bring it back.
"""

from dataclasses import dataclass

from nsgen.plan import lab_plans as plan
from nsgen.plan.lab_plans import Command, Plan
from nsgen.render.styles import Block
from nsgen.topology.model import HOST, Endpoint, Interface, IPInterface, Lab, Route, VethLink

#: What a removed sysctl, MTU goes back to: a new namespace's forwarding default, a veth's MTU.
SYSCTL_DEFAULT = "0"
MTU_DEFAULT = 1500


@dataclass(frozen=True)
class Change:
    """One line of `nsgen plan`: `+` added, `-` removed, `~` changed in place."""

    sign: str
    text: str

    def __str__(self) -> str:
        return f"{self.sign} {self.text}"


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


def link_key(link: VethLink) -> tuple[str, str]:
    """A link by its two ends, as the topology names them."""
    return tuple(sorted((str(link.a), str(link.b))))  # type: ignore[return-value]


def _link_text(link: VethLink) -> str:
    return f"{link.a} -- {link.b}"


@dataclass(frozen=True)
class _End:
    """A link end that is an interface (a namespace's or the host's), with where it lives."""

    label: str
    netns: str | None
    device: str
    iface: Interface


def _interface(lab: Lab, end: Endpoint) -> Interface | None:
    """The interface a link end is: a namespace's or the host's; None for a bridge port."""
    if end.netns is not None:
        return lab.namespace(end.node).interface(end.interface)
    if end.bridge is None and end.node == HOST:
        return next((iface for iface in lab.host if iface.name == end.interface), None)
    return None


def _ends(lab: Lab, link: VethLink) -> list[_End]:
    ends = []
    for end in (link.a, link.b):
        iface = _interface(lab, end)
        if iface is not None:
            ends.append(_End(str(end), end.netns, end.device, iface))
    return ends


def _addresses(addresses: tuple[IPInterface, ...]) -> str:
    return ", ".join(a.with_prefixlen for a in addresses) or "none"


def route_text(route: Route) -> str:
    """A route as `ip route` shows it: `default via 172.16.0.1`, `10.0.2.0/24 dev eth0`."""
    to = route.to
    dest = "default" if to.prefixlen == 0 else str(to.network_address) if to.prefixlen == to.max_prefixlen else str(to)
    return " ".join([dest, *(("via", str(route.via)) if route.via else ()), *(("dev", route.dev) if route.dev else ())])


def _root_veths(links: list[VethLink]) -> list[str]:
    return [end.device for link in links for end in link.creation_order if end.netns is None]


def diff(old: Lab, new: Lab, redo_routes: frozenset[str] = frozenset()) -> Diff:
    """The change that turns the running lab `old` into `new`; the routes of the namespaces
    `redo_routes` (kernel names) are all deleted and added again (a rollback's)."""
    changes: list[Change] = []
    old_ns = {ns.name: ns for ns in old.namespaces}
    new_ns = {ns.name: ns for ns in new.namespaces}
    kept_ns = [name for name in new_ns if name in old_ns]
    old_links = {link_key(link): link for link in old.links}
    new_links = {link_key(link): link for link in new.links}
    removed_links = [link for key, link in old_links.items() if key not in new_links]
    added_links = [link for key, link in new_links.items() if key not in old_links]
    kept_links = [(old_links[key], link) for key, link in new_links.items() if key in old_links]
    old_br = {br.name: br for br in old.bridges}
    new_br = {br.name: br for br in new.bridges}
    v4_old, v4_new = plan.ipv4_only(old), plan.ipv4_only(new)

    # the interfaces of kept links, old and new, with what changes on them
    kept_ends = [
        (a, b) for old_link, new_link in kept_links for a, b in zip(_ends(old, old_link), _ends(new, new_link), strict=True)
    ]
    touched = {old_ns[name].netns for name in old_ns if name not in new_ns}
    disturbed: set[str] = set(redo_routes)  # namespaces whose routes go and come back
    for link in removed_links:
        for end in (link.a, link.b):
            if end.netns is not None:
                touched.add(end.netns)
                disturbed.add(end.netns)
    for link in added_links:
        touched.update(end.netns for end in (link.a, link.b) if end.netns is not None and end.node in old_ns)
    for before, after in kept_ends:
        if before.iface != after.iface and before.netns is not None:
            touched.add(before.netns)
        if set(before.iface.addresses) - set(after.iface.addresses) and before.netns is not None:
            disturbed.add(before.netns)

    # --- the lines of the plan
    changes += [Change("-", f"namespace {name}") for name in old_ns if name not in new_ns]
    changes += [Change("-", f"bridge {name}") for name in old_br if name not in new_br]
    changes += [Change("-", f"link {_link_text(link)}") for link in removed_links]
    changes += [Change("+", f"namespace {name}") for name in new_ns if name not in old_ns]
    changes += [Change("+", f"bridge {name}") for name in new_br if name not in old_br]
    for link in added_links:
        changes.append(Change("+", f"link {_link_text(link)}"))
        changes += [
            Change("+", f"{end.label} address {a.with_prefixlen}") for end in _ends(new, link) for a in end.iface.addresses
        ]
    for name in (n for n in new_br if n in old_br):
        before, after = old_br[name], new_br[name]
        if before.addresses != after.addresses:
            changes.append(Change("~", f"bridge {name} address {_addresses(before.addresses)} -> {_addresses(after.addresses)}"))
        if before.mtu != after.mtu:
            changes.append(Change("~", f"bridge {name} mtu {before.mtu or 'default'} -> {after.mtu or 'default'}"))
    for before, after in kept_ends:
        if set(before.iface.addresses) != set(after.iface.addresses):
            changes.append(
                Change("~", f"{after.label} address {_addresses(before.iface.addresses)} -> {_addresses(after.iface.addresses)}")
            )
        if before.iface.mtu != after.iface.mtu:
            changes.append(Change("~", f"{after.label} mtu {before.iface.mtu or 'default'} -> {after.iface.mtu or 'default'}"))
        if before.iface.mac != after.iface.mac:
            changes.append(Change("~", f"{after.label} mac {before.iface.mac or 'any'} -> {after.iface.mac or 'any'}"))
    for name in new_ns:
        before_routes = old_ns[name].routes if name in old_ns else ()
        after_routes = new_ns[name].routes
        changes += [Change("-", f"{name}: route {route_text(r)}") for r in before_routes if r not in after_routes]
        changes += [Change("+", f"{name}: route {route_text(r)}") for r in after_routes if r not in before_routes]
        before_sysctls = dict(old_ns[name].sysctls) if name in old_ns else {}
        for key, value in new_ns[name].sysctls:
            if key not in before_sysctls:
                changes.append(Change("+", f"{name}: sysctl {key}={value}"))
            elif before_sysctls[key] != value:
                changes.append(Change("~", f"{name}: sysctl {key} {before_sysctls[key]} -> {value}"))
        after_keys = dict(new_ns[name].sysctls)
        changes += [
            Change("-", f"{name}: sysctl {key} (back to {SYSCTL_DEFAULT})") for key in before_sysctls if key not in after_keys
        ]
        if name in old_ns and old_ns[name].netns in disturbed and set(before_routes) & set(after_routes):
            changes.append(Change("~", f"{name}: its routes are deleted and added again (an address or interface goes)"))
    if v4_old != v4_new:
        changes.append(Change("~", "IPv6 link-local addresses " + ("off (an IPv4-only lab)" if v4_new else "on")))
    for name in kept_ns:
        if new_ns[name].routes != old_ns[name].routes or new_ns[name].sysctls != old_ns[name].sysctls:
            touched.add(old_ns[name].netns)

    # --- removals: routes, sysctls back to their default, addresses, links, bridges, namespaces
    route_del = []
    sysctl_reset = []
    for name in kept_ns:
        ns_old, ns_new = old_ns[name], new_ns[name]
        going = ns_old.routes if ns_old.netns in disturbed else [r for r in ns_old.routes if r not in ns_new.routes]
        route_del += [plan.route_command("del", r, ns_old.netns) for r in going]
        new_keys = dict(ns_new.sysctls)
        sysctl_reset += [Command((k, SYSCTL_DEFAULT), ns_old.netns, "sysctl") for k, _ in ns_old.sysctls if k not in new_keys]
    addr_del = [
        plan.addr_command("del", a, before.device, before.netns)
        for before, after in kept_ends
        for a in before.iface.addresses
        if a not in after.iface.addresses
    ]
    addr_del += [
        plan.addr_command("del", a, old_br[n].device, None)
        for n in new_br
        if n in old_br
        for a in old_br[n].addresses
        if a not in new_br[n].addresses
    ]
    link_del = []
    for link in removed_links:
        # from its root-namespace end, else from an end in a namespace that stays; a link between
        # namespaces that both go, goes with them
        root = [end for end in (link.a, link.b) if end.netns is None]
        kept = [end for end in (link.a, link.b) if end.netns is not None and end.node in new_ns]
        for end in (root or kept)[:1]:
            link_del.append(Command(("link", "del", "dev", end.device), end.netns))
    bridge_del = [Command(("link", "del", "dev", br.device)) for n, br in old_br.items() if n not in new_br]
    netns_del = [Command(("netns", "del", ns.netns)) for n, ns in old_ns.items() if n not in new_ns]

    # --- additions: namespaces, bridges, links, sysctls, addresses, MTUs and MACs, link-local, up, routes
    netns_add = [Command(("netns", "add", ns.netns)) for n, ns in new_ns.items() if n not in old_ns]
    bridge_add = [c for n, br in new_br.items() if n not in old_br for c in plan.bridge_add(br, v4_new)]
    veth_add = [plan.veth_add(link) for link in added_links]
    sysctls = []
    for name, ns in new_ns.items():
        before_sysctls = dict(old_ns[name].sysctls) if name in old_ns else {}
        sysctls += [Command((k, v), ns.netns, "sysctl") for k, v in ns.sysctls if before_sysctls.get(k) != v]
    new_ends = [end for link in added_links for end in _ends(new, link)]
    addr_add = [plan.addr_command("add", a, end.device, end.netns) for end in new_ends for a in end.iface.addresses]
    addr_add += [
        plan.addr_command("add", a, after.device, after.netns)
        for before, after in kept_ends
        for a in after.iface.addresses
        if a not in before.iface.addresses
    ]
    addr_add += [
        plan.addr_command("add", a, new_br[n].device, None)
        for n in new_br
        if n in old_br
        for a in new_br[n].addresses
        if a not in old_br[n].addresses
    ]
    tuning = [
        Command(("link", "set", "dev", e.device, *plan._tuning(e.iface)), e.netns) for e in new_ends if plan._tuning(e.iface)
    ]
    for before, after in kept_ends:
        words: tuple[str, ...] = ()
        if before.iface.mtu != after.iface.mtu:
            words += ("mtu", str(after.iface.mtu or MTU_DEFAULT))
        if before.iface.mac != after.iface.mac and after.iface.mac:
            words += ("address", after.iface.mac)
        tuning += [Command(("link", "set", "dev", after.device, *words), after.netns)] if words else []
    for n in (n for n in new_br if n in old_br):
        if old_br[n].mtu != new_br[n].mtu:
            tuning.append(Command(("link", "set", "dev", new_br[n].device, "mtu", str(new_br[n].mtu or MTU_DEFAULT))))
    namespaced = [(end.netns, end.device) for link in added_links for end in (link.a, link.b) if end.netns is not None]
    root_new = _root_veths(added_links)
    local = []
    if v4_new:
        local += [Command(("link", "set", "dev", dev, "addrgenmode", "none"), ns) for ns, dev in namespaced]
        local += [Command(("link", "set", "dev", dev, "addrgenmode", "none")) for dev in root_new]
    flip = []
    if v4_old != v4_new:  # every kept device follows the lab's new IPv6 choice
        mode = "none" if v4_new else "eui64"
        kept_devices = [(e.netns, e.device) for _, link in kept_links for e in (link.a, link.b)]
        kept_devices += [(None, new_br[n].device) for n in new_br if n in old_br]
        for ns, dev in kept_devices:
            # IPv6 off and on again (it has no IPv6 address yet, or no more) makes or drops the
            # link-local address of the new mode without taking the device down
            key = f"net.ipv6.conf.{dev}.disable_ipv6"
            flip += [Command(("link", "set", "dev", dev, "addrgenmode", mode), ns)]
            flip += [Command((key, "1"), ns, "sysctl"), Command((key, "0"), ns, "sysctl")]
    ups = [Command(("link", "set", "dev", dev, "up"), ns) for ns, dev in namespaced]
    ups += [Command(("link", "set", "dev", dev, "up")) for dev in root_new]
    route_add = []
    for name, ns in new_ns.items():
        if name not in old_ns or ns.netns in disturbed:
            route_add += [plan.route_command("add", r, ns.netns) for r in ns.routes]
        else:
            route_add += [plan.route_command("add", r, ns.netns) for r in ns.routes if r not in old_ns[name].routes]

    steps = (
        *plan._step(
            "remove the routes that go (and, where an address or interface goes, every route: the\n"
            "kernel would drop those and not bring them back; they are added again below)",
            route_del,
        ),
        *plan._step("set the sysctls that go back to a new namespace's default", sysctl_reset),
        *plan._step("remove the addresses that go from interfaces that stay", addr_del),
        *plan._step("delete the links that go (a veth pair goes with either end)", link_del),
        *plan._step("delete the bridges that go", bridge_del),
        *plan._step("delete the namespaces that go: their devices go with them", netns_del),
        *plan._step("create the new namespaces", netns_add),
        *plan._step("create the new bridges", bridge_add),
        *plan._step("create the new veth pairs, each end directly where it lives", veth_add),
        *plan._step("IPv6 link-local addresses on the devices that stay, as the new lab wants them", flip),
        *plan._step("set the sysctls that are new or change", sysctls),
        *plan._step("add the new addresses", addr_add),
        *plan._step("set the MTUs and MAC addresses that are new or change", tuning),
        *plan._step("an IPv4-only lab: no IPv6 link-local addresses on the new devices", local),
        *plan._step("set the new interfaces up", ups),
        *plan._step("add the new routes", route_add),
    )
    return Diff(old, new, tuple(changes), steps, frozenset(touched), frozenset(disturbed))


def undo(forward: Diff) -> Diff:
    """The rollback of `forward`: back from its new lab to its old one, wherever it stopped."""
    return diff(forward.new, forward.old, forward.disturbed)


def command_words(command: Command) -> tuple[str, ...]:
    """A command as apply.sh writes it: `ip [-n NETNS] …`, or the runtime's `set_sysctl`."""
    if command.tool == "sysctl":
        return ("set_sysctl", command.netns or "", *command.argv)
    return ("ip", *(("-n", command.netns) if command.netns else ()), *command.argv)


def blocks(steps: Plan) -> list[Block]:
    """A plan's steps as apply.sh's blocks: a comment, then one command a line."""
    return [Block(tuple(s.comment.split("\n")), tuple(command_words(c) for c in s.commands)) for s in steps]


def touched_devices(steps: Plan) -> set[str]:
    """The root-namespace devices the plan names: what it changes, deletes or plugs ports into."""
    names = set()
    for command in steps:
        for c in command.commands:
            if c.netns is None and c.tool == "ip":
                names.update(b for a, b in zip(c.argv, c.argv[1:], strict=False) if a in ("dev", "master"))
    return names
