"""The L2 phases: segments (a bridge with its ports' far ends, a veth link, or a parent's macvlans), their subnets checked
(addresses inside, no overlap), and addresses handed out from a segment's `subnet`."""

from collections.abc import Iterator
from typing import Any

from nsgen.problems import field_path
from nsgen.topology.ends import MACVLAN
from nsgen.topology.model import IPAddress, IPNetwork, interface_address
from nsgen.validate.context import Context, Path, Port, Segment


def build(ctx: Context) -> None:
    """L2 segments in declaration order: bridges first (their own device, then ports' far ends), then links."""
    bad: set[tuple[Any, ...]] = set()  # paths of bridges and links with an unusable subnet
    segments = {
        name: Segment(["bridges", name], f"bridge {name}", [ctx.bridge_ports[name]], _subnets(ctx, ["bridges", name], spec, bad))
        for name, spec in ctx.bridges.items()
    }
    plain = []
    parents: dict[str, Segment] = {}  # the macvlans of one parent share its segment
    for link in ctx.links:
        bridged = [end for end in link.ends if ctx.is_bridge(end.node)]
        parent = next((end.name for end in link.ends if end.node == MACVLAN), None)
        if parent is not None:
            here = [end for end in link.ends if end.node != MACVLAN]
            if parent in parents:
                parents[parent].members += here
            else:
                subnets = _subnets(ctx, link.path, link.spec, bad)
                parents[parent] = Segment(link.path, f"macvlan parent {parent}", here, subnets)
                plain.append(parents[parent])
        elif bridged:
            far = next(end for end in link.ends if all(end is not b for b in bridged))
            segments[bridged[0].node].members.append(far)
            if link.spec.get("subnet") is not None:
                ctx.problem([*link.path, "subnet"], "a link to a bridge takes its subnet from the bridge")
        else:
            plain.append(Segment(link.path, field_path(link.path), list(link.ends), _subnets(ctx, link.path, link.spec, bad)))
    ctx.segments = [*segments.values(), *plain]
    for segment in ctx.segments:
        if tuple(segment.path) in bad:
            segment.broken = True
            ctx.incomplete.update(port.node for port in segment.members)


def _subnets(ctx: Context, path: Path, spec: dict[str, Any], bad: set[tuple[Any, ...]]) -> list[IPNetwork]:
    """The parsed `subnet` of a bridge or link, remembered for the model; `bad` collects unusable ones."""
    raw = spec.get("subnet")
    texts = [raw] if isinstance(raw, str) else raw or []
    result: list[IPNetwork] = []
    for index, text in enumerate(texts):
        where = [*path, "subnet", *([index] if isinstance(raw, list) else [])]
        network = ctx.network(where, text)
        if network is None:
            bad.add(tuple(path))
        elif any(net.version == network.version for net in result):
            ctx.problem(where, f"a second IPv{network.version} subnet: give at most one per IP version")
            bad.add(tuple(path))
        else:
            result.append(network)
    ctx.subnets[tuple(path)] = result
    return result


def check_subnets(ctx: Context) -> None:
    """Addresses inside their segment's subnet; no subnet shared or overlapped by two segments."""
    networks: list[tuple[IPNetwork, Segment]] = []
    for segment in ctx.segments:
        own = {net: None for net in segment.subnets}
        for port in segment.members:
            for index, address in enumerate(port.addresses):
                declared = [net for net in segment.subnets if net.version == address.version]
                if declared and address.ip not in declared[0]:
                    where = [*port.path, "addresses", index]
                    ctx.broken(segment, where, f"{address.ip} is outside the segment's subnet {declared[0]}")
                elif not declared and address.network.prefixlen < address.max_prefixlen:
                    own.setdefault(address.network, None)
        networks += [(net, segment) for net in own]
    networks.sort(key=lambda item: (item[0].version, item[0].network_address, item[0].prefixlen))  # wider first
    widest: tuple[IPNetwork, Segment] | None = None
    for net, segment in networks:
        if widest is not None and widest[0].version == net.version and net.subnet_of(widest[0]):  # type: ignore
            if widest[1] is not segment:
                relation = "is also the subnet" if net == widest[0] else f"overlaps {widest[0]}"
                ctx.broken(segment, segment.path, f"subnet {net} {relation} of {widest[1].label}")
            continue
        widest = (net, segment)


def check_macs(ctx: Context) -> None:
    """No two devices on one segment declare the same MAC: frames for one would reach both."""
    for segment in ctx.segments:
        owners: dict[str, Port] = {}
        for port in segment.members:
            mac = port.spec.get("mac")
            if not isinstance(mac, str):
                continue
            if (first := owners.setdefault(mac.lower(), port)) is not port:
                owner = f"bridge {first.name}" if first.path[0] == "bridges" else f"{first.node}:{first.name}"
                ctx.problem([*port.path, "mac"], f"MAC {mac} is also {owner}'s, on the same segment ({segment.label})")


def assign_addresses(ctx: Context) -> None:
    """Hand each member that declares no address of a subnet's family the next free one, in order
    (not on a broken segment)."""
    for segment in ctx.segments:
        for subnet in segment.subnets if not segment.broken else ():
            pool = (ip for ip in _hosts(subnet) if ip not in ctx.owners)
            for port in segment.members:
                if port is segment.members[0] and segment.path[0] == "bridges":
                    continue  # a bridge's own device takes only declared addresses (the gateway)
                if any(a.version == subnet.version for a in port.addresses):
                    continue
                ip = next(pool, None)
                if ip is None:
                    message = f"subnet {subnet} has no address left for {port.node}:{port.name}"
                    ctx.broken(segment, [*segment.path, "subnet"], message)
                    break
                ctx.owners[ip] = f"{port.node}:{port.name}"
                port.addresses.append(interface_address((int(ip), subnet.prefixlen), subnet.version))


def _hosts(subnet: IPNetwork) -> Iterator[IPAddress]:
    return iter(subnet.hosts()) if subnet.num_addresses > 1 else iter([subnet.network_address])
