"""The outside phase: NAT from lab subnets to the world, and the machine's ports forwarded into the
lab (IPv4): each from a known namespace with an IPv4 address, no port forwarded twice."""

from ipaddress import IPv4Address, IPv4Network

from nsgen.topology.model import PortForward
from nsgen.validate.context import Context, Path
from nsgen.validate.hints import known


def build(ctx: Context) -> None:
    ctx.nat = tuple(net for index, spec in enumerate(ctx.doc.get("nat") or []) if (net := _nat(ctx, index, spec["from"])))
    forwards: dict[tuple[int, str], PortForward] = {}
    for index, spec in enumerate(ctx.doc.get("forward") or []):
        path: Path = ["forward", index]
        forward = _forward(ctx, path, spec)
        if forward is None:
            continue
        if (forward.port, forward.proto) in forwards:
            ctx.problem([*path, "port"], f"{forward.proto} port {forward.port} is forwarded twice")
            continue
        forwards[(forward.port, forward.proto)] = forward
    ctx.forwards = tuple(forwards.values())
    if ctx.doc.get("hosts") and (ctx.nat or ctx.forwards):
        ctx.problem(["nat" if ctx.nat else "forward"], "NAT and forwarded ports are one machine's: not in a multi-host lab")


def _nat(ctx: Context, index: int, text: str) -> IPv4Network | None:
    network = ctx.network(["nat", index, "from"], text)
    if network is not None and not isinstance(network, IPv4Network):
        ctx.problem(["nat", index, "from"], f"{network} is not IPv4: NAT is IPv4's")
        return None
    return network


def _forward(ctx: Context, path: Path, spec: dict) -> PortForward | None:
    node, _, port = spec["to"].rpartition(":")
    if node not in ctx.namespaces:
        ctx.problem([*path, "to"], f"unknown namespace '{node}'{known(node, ctx.namespaces)}")
        return None
    if not 1 <= int(port) <= 65535:
        ctx.problem([*path, "to"], f"port {port} is not 1-65535")
        return None
    ns = next(ns for ns in ctx.lab_namespaces if ns.name == node)
    addresses = [a.ip for iface in ns.interfaces for a in iface.addresses if isinstance(a.ip, IPv4Address)]
    if not addresses:
        ctx.problem([*path, "to"], f"namespace '{node}' has no IPv4 address to forward to")
        return None
    return PortForward(spec["port"], node, addresses[0], int(port), spec.get("proto", "tcp"))
