"""The change from one lab to another as `nsgen plan` prints it: one typed line per object that goes
(`-`), comes (`+`) or changes in place (`~`)."""

from dataclasses import dataclass

from nsgen.plan.commands import MTU_DEFAULT
from nsgen.plan.compare import Comparison, interfaces, tunnel_ends, vxlan_conditions
from nsgen.topology.ends import Tunnel, VxlanEnd
from nsgen.topology.model import IPInterface, Lab, Service

#: What a removed sysctl goes back to: a new namespace's forwarding default.
SYSCTL_DEFAULT = "0"


@dataclass(frozen=True)
class Change:
    """One line of `nsgen plan`: `+` added, `-` removed, `~` changed in place."""

    sign: str
    text: str

    def __str__(self) -> str:
        return f"{self.sign} {self.text}"


def _addresses(addresses: tuple[IPInterface, ...]) -> str:
    return ", ".join(a.with_prefixlen for a in addresses) or "none"


def changes(c: Comparison) -> tuple[Change, ...]:
    """Every line of the change: objects that go and come, then what changes on kept objects."""
    return (
        *_objects(c),
        *_bridges_and_interfaces(c),
        *_conditions(c),
        *_namespaces(c),
        *_services(c),
        *_outside(c),
        *_link_local(c),
    )


def _outside(c: Comparison) -> list[Change]:
    """NAT subnets and forwarded ports that go or come, and --allow-forward's FORWARD rules with them."""
    lines = [Change("-", f"nat from {net}") for net in c.old.nat if net not in c.new.nat]
    lines += [Change("+", f"nat from {net}") for net in c.new.nat if net not in c.old.nat]
    for sign, these, others in (("-", c.old.forwards, c.new.forwards), ("+", c.new.forwards, c.old.forwards)):
        lines += [Change(sign, f"forward {f.proto} port {f.port} to {f.node}:{f.to_port}") for f in these if f not in others]
    where = "(where the lab has --allow-forward's rules)"
    lines += [Change("-", f"FORWARD accept {' '.join(match)} {where}") for match in c.accepts_removed]
    return lines + [Change("+", f"FORWARD accept {' '.join(match)} {where}") for match in c.accepts_added]


def _services(c: Comparison) -> list[Change]:
    """A service that goes, comes, or is restarted (its command or readiness changes)."""
    started = {(ns.name, s.name): s for ns, s in c.started}
    lines = []
    for ns, service in c.stopped:
        new = started.pop((ns.name, service.name), None)
        if new is None:
            lines.append(Change("-", f"{ns.name}: service {service.name}"))
        else:
            lines.append(Change("~", f"{ns.name}: service {service.name} restarted: {_service(service)} -> {_service(new)}"))
    return lines + [Change("+", f"{ns}: service {name}: {_service(s)}") for (ns, name), s in started.items()]


def _service(service: Service) -> str:
    return service.command + (f" (ready: {service.ready} within {service.timeout} s)" if service.ready else "")


def _conditions(c: Comparison) -> list[Change]:
    """A link's conditions, by the end that sends: added with a new link, or changed in place."""
    lines = []
    for link in c.added_links:
        sent = zip((link.a, link.b), link.sends, strict=True)
        lines += [Change("+", f"link {link.a} -- {link.b} from {end.node}: {sends.text}") for end, sends in sent if sends]
    for before, after in c.kept_links:
        old = dict(zip(map(str, (before.a, before.b)), before.sends, strict=True))
        for end, sends in zip((after.a, after.b), after.sends, strict=True):
            if old[str(end)] != sends:
                was, now = (s.text if s else "none" for s in (old[str(end)], sends))
                lines.append(Change("~", f"link {after.a} -- {after.b} from {end.node}: {was} -> {now}"))
    for tunnel, before_sends, after_sends in vxlan_conditions(c.old, c.new):
        was, now = (s.text if s else "none" for s in (before_sends, after_sends))
        lines.append(Change("~", f"link {tunnel.end} -- vxlan {tunnel.vni} from {tunnel.end.node}: {was} -> {now}"))
    return lines


def _objects(c: Comparison) -> list[Change]:
    lines = [Change("-", f"namespace {name}") for name in c.old_ns if name not in c.new_ns]
    lines += [Change("-", f"bridge {name}") for name in c.old_br if name not in c.new_br]
    lines += [Change("-", f"link {link.a} -- {link.b}") for link in c.removed_links]
    lines += [Change("-", _tunnel(c.old, t)) for t in c.tunnels.removed]
    lines += [Change("+", f"namespace {name}") for name in c.new_ns if name not in c.old_ns]
    lines += [Change("+", f"bridge {name}") for name in c.new_br if name not in c.old_br]
    for link in c.added_links:
        lines.append(Change("+", f"link {link.a} -- {link.b}"))
        lines += [
            Change("+", f"{end.label} address {a.with_prefixlen}") for end in interfaces(c.new, link) for a in end.iface.addresses
        ]
    for tunnel in c.tunnels.added:
        lines.append(Change("+", _tunnel(c.new, tunnel)))
        ends = tunnel_ends(c.new, [tunnel])
        lines += [Change("+", f"{end.label} address {a.with_prefixlen}") for end in ends for a in end.iface.addresses]
    for before, after in c.tunnels.kept_ports:
        floods = f"bridge {_bridge_name(c.new, after.bridge)}: floods to {{}} (vxlan {after.vni})"
        lines += [Change("-", floods.format(r)) for r in before.remotes if r not in after.remotes]
        lines += [Change("+", floods.format(r)) for r in after.remotes if r not in before.remotes]
    return lines


def _bridge_name(lab: Lab, device: str) -> str:
    return next(br.name for br in lab.bridges if br.device == device)


def _tunnel(lab: Lab, tunnel: Tunnel) -> str:
    """A VXLAN device as the plan names it: a link's end (to another machine), or a spanning bridge's port."""
    if isinstance(tunnel, VxlanEnd):
        return f"link {tunnel.end} -- vxlan {tunnel.vni} to {tunnel.remote}"
    return f"bridge {_bridge_name(lab, tunnel.bridge)}: port {tunnel.device} (vxlan {tunnel.vni})"


def _bridges_and_interfaces(c: Comparison) -> list[Change]:
    lines = []
    for name in c.kept_br:
        before, after = c.old_br[name], c.new_br[name]
        if before.addresses != after.addresses:
            lines.append(Change("~", f"bridge {name} address {_addresses(before.addresses)} -> {_addresses(after.addresses)}"))
        if before.mtu != after.mtu:
            lines.append(Change("~", f"bridge {name} mtu {before.mtu or 'default'} -> {after.mtu or 'default'}"))
        if before.mac != after.mac:
            lines.append(Change("~", f"bridge {name} mac {before.mac} -> {after.mac}"))
    for old_end, new_end in c.kept_ends:
        before, after, label = old_end.iface, new_end.iface, new_end.label
        if set(before.addresses) != set(after.addresses):
            lines.append(Change("~", f"{label} address {_addresses(before.addresses)} -> {_addresses(after.addresses)}"))
        if before.mtu != after.mtu:
            # a veth's MTU unless it declares one is the kernel's, as status names it
            lines.append(Change("~", f"{label} mtu {before.mtu or MTU_DEFAULT} -> {after.mtu or MTU_DEFAULT}"))
        if before.mac != after.mac:
            lines.append(Change("~", f"{label} mac {before.mac or 'any'} -> {after.mac or 'any'}"))
    return lines


def _namespaces(c: Comparison) -> list[Change]:
    """Each namespace's routes and sysctls that go, come or change."""
    lines = []
    for name, ns in c.new_ns.items():
        old = c.old_ns.get(name)
        before_routes = old.routes if old else ()
        lines += [Change("-", f"{name}: route {r.text}") for r in before_routes if r not in ns.routes]
        lines += [Change("+", f"{name}: route {r.text}") for r in ns.routes if r not in before_routes]
        before_sysctls = dict(old.sysctls) if old else {}
        for key, value in ns.sysctls:
            if key not in before_sysctls:
                lines.append(Change("+", f"{name}: sysctl {key}={value}"))
            elif before_sysctls[key] != value:
                lines.append(Change("~", f"{name}: sysctl {key} {before_sysctls[key]} -> {value}"))
        after_keys = dict(ns.sysctls)
        lines += [
            Change("-", f"{name}: sysctl {key} (back to {SYSCTL_DEFAULT})") for key in before_sysctls if key not in after_keys
        ]
        if old and old.netns in c.disturbed and set(before_routes) & set(ns.routes):
            lines.append(Change("~", f"{name}: its routes are deleted and added again (an address or interface goes)"))
    return lines


def _link_local(c: Comparison) -> list[Change]:
    if c.v4_old == c.v4_new:
        return []
    return [Change("~", "IPv6 link-local addresses " + ("off (an IPv4-only lab)" if c.v4_new else "on"))]
