"""The outside phase: NAT from lab subnets to the world, and the machine's ports forwarded into the
lab (IPv4): each from a known namespace with an IPv4 address, no port forwarded twice."""

from ipaddress import IPv4Address, IPv4Network

from nsgen.topology.ends import ROOT
from nsgen.topology.model import PortForward
from nsgen.validate.context import Context, Path
from nsgen.validate.hints import known


def build(ctx: Context) -> None:
    own = _lab_networks(ctx)
    rooted = None if ctx.doc.get("hosts") else _root_networks(ctx)  # a multi-host lab's: each host's (placement)
    nat: list[IPv4Network] = []
    for index, spec in enumerate(ctx.doc.get("nat") or []):
        network = _nat(ctx, index, spec["from"], own, rooted)
        if network in nat:
            ctx.problem(["nat", index, "from"], f"a second nat entry for {network}")
        elif network is not None:
            nat.append(network)
    ctx.nat = tuple(nat)
    forwards: dict[tuple[int, str], PortForward] = {}
    for index, spec in enumerate(ctx.doc.get("forward") or []):
        path: Path = ["forward", index]
        forward = _forward(ctx, path, spec, rooted)
        if forward is None:
            continue
        if (forward.port, forward.proto) in forwards:
            ctx.problem([*path, "port"], f"{forward.proto} port {forward.port} is forwarded twice")
            continue
        forwards[(forward.port, forward.proto)] = forward
    ctx.forwards = tuple(forwards.values())  # a multi-host lab's: each placed on its host (validate/placement.py)


def _lab_networks(ctx: Context) -> list[IPv4Network]:
    """The lab's own IPv4 subnets: of its namespaces', bridges' and root-namespace interfaces' addresses."""
    ports = [*ctx.ports.values(), *ctx.bridge_ports.values()]
    return sorted({a.network for port in ports for a in port.addresses if isinstance(a.network, IPv4Network)})


def _root_networks(ctx: Context) -> list[IPv4Network]:
    """The IPv4 subnets the root namespace is on (its addresses on the lab's bridges and veth ends):
    the only lab subnets it has a route to."""
    ports = [*(port for (node, _), port in ctx.ports.items() if node == ROOT), *ctx.bridge_ports.values()]
    networks = {a.network for port in ports for a in port.addresses if isinstance(a.network, IPv4Network)}
    return sorted(net for net in networks if net.prefixlen < 32)


def _nat(ctx: Context, index: int, text: str, own: list[IPv4Network], rooted: list[IPv4Network] | None) -> IPv4Network | None:
    """A `nat:` subnet: IPv4, and the lab's own (one of its subnets, or inside one): NAT masquerades
    the lab's traffic, not anyone else's; and one the root namespace is on (`rooted`; None: a
    multi-host lab's, each host's checked on placing it), or the replies it un-masquerades would
    have no route back."""
    network = ctx.network(["nat", index, "from"], text)
    if network is not None and not isinstance(network, IPv4Network):
        ctx.problem(["nat", index, "from"], f"{network} is not IPv4: NAT is IPv4's")
        return None
    if network is not None and own and not any(network.subnet_of(net) for net in own if net.prefixlen < 32):
        subnets = ", ".join(str(net) for net in own if net.prefixlen < 32)
        ctx.problem(["nat", index, "from"], f"{network} is not one of the lab's subnets ({subnets}): NAT is the lab's traffic")
        return None
    if network is not None and own and rooted is not None and not any(network.subnet_of(net) for net in rooted):
        why = f"the root namespace has no route to {network}: give it an address there (a bridge's) or NAT a subnet it is on"
        ctx.problem(["nat", index, "from"], why + _on(rooted))
        return None
    return network


def _on(rooted: list[IPv4Network]) -> str:
    return f" ({', '.join(map(str, rooted))})" if rooted else ""


def _forward(ctx: Context, path: Path, spec: dict, rooted: list[IPv4Network] | None) -> PortForward | None:
    """A forwarded port: to a namespace's first IPv4 address, one the root namespace has a route to,
    in a namespace whose default route takes the replies back to any machine."""
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
    if rooted is not None and not any(addresses[0] in net for net in rooted):
        why = f"the root namespace has no route to {node}'s {addresses[0]}: forward to a namespace on a subnet it is on"
        ctx.problem([*path, "to"], why + _on(rooted))
        return None
    if not any(route.to == IPv4Network("0.0.0.0/0") for route in ns.routes):
        ctx.problem([*path, "to"], f"namespace '{node}' has no default route: its replies to other machines have no way back")
        return None
    return PortForward(spec["port"], node, addresses[0], int(port), spec.get("proto", "tcp"))
