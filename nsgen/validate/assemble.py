"""The model phase: the `Lab` put together from what the phases before it built (complete when they
found no problem)."""

from nsgen.topology.ends import ROOT
from nsgen.topology.model import Bridge, Interface, Lab, Member, stable_mac
from nsgen.topology.model import Segment as ModelSegment
from nsgen.validate.context import Context, Port, Segment
from nsgen.validate.namespaces import interface


def build(ctx: Context) -> None:
    ctx.lab = _lab(ctx)


def _lab(ctx: Context) -> Lab:
    root_ports = [port for (node, _), port in ctx.ports.items() if node == ROOT]
    return Lab(
        name=ctx.doc["name"],
        description=ctx.doc.get("description", ""),
        prefix=ctx.prefix,
        namespaces=ctx.lab_namespaces,
        links=ctx.lab_links,
        bridges=tuple(_bridge(ctx, name) for name in ctx.bridges),
        root_interfaces=tuple(interface(port, ctx.prefix + port.name) for port in root_ports),
        expect=ctx.lab_expect,
        segments=tuple(_segment(ctx, segment) for segment in ctx.segments),
        machines=ctx.machines,
        vxlan=ctx.vxlan,
        nat=ctx.nat,
        forwards=ctx.forwards,
    )


def _bridge(ctx: Context, name: str) -> Bridge:
    addresses = tuple(ctx.bridge_ports[name].addresses)
    subnets = tuple(ctx.subnets[("bridges", name)])
    hosts, vni = ctx.bridge_hosts.get(name, ()), ctx.bridge_vnis.get(name)
    spec = ctx.bridges[name]
    mac = (spec.get("mac") or stable_mac(ctx.prefix + ctx.doc["name"], name)).lower()
    return Bridge(name, ctx.prefix + name, addresses, spec.get("mtu"), subnets, hosts, vni, mac)


def _segment(ctx: Context, segment: Segment) -> ModelSegment:
    """A segment of the model: its members' interfaces, a bridge's own device as the root's member."""
    members = []
    for port in segment.members:
        if segment.path[0] == "bridges" and port is ctx.bridge_ports.get(port.node):
            bridge = _bridge(ctx, port.node)
            members.append(Member(ROOT, f"bridge {port.node}", Interface(bridge.name, bridge.device, bridge.addresses)))
        else:
            members.append(Member(port.node, f"{port.node}:{port.name}", interface(port, _device(ctx, port))))
    return ModelSegment(segment.label, tuple(members))


def _device(ctx: Context, port: Port) -> str:
    return ctx.prefix + port.name if port.node == ROOT else port.name
