"""Which namespace should reach which address, computed from the model alone.

A namespace reaches an address on the other end of one of its links when its routes send the packet
out of that link and the other side's routes send the reply back the same way, as the kernel decides
by longest-prefix match over its connected and configured routes. `verify.sh` pings exactly this set.
"""

from dataclasses import dataclass

from nsgen.model import Endpoint, IPAddress, Lab, Namespace, Route


@dataclass(frozen=True)
class Check:
    """`source` should reach `address`, which `target` holds."""

    source: Namespace
    address: IPAddress
    target: Endpoint

    @property
    def family(self) -> int:
        return self.address.version


def _routes(ns: Namespace) -> list[Route]:
    """The namespace's routing table: a connected route per addressed subnet, then the configured ones."""
    connected = [
        Route(to=address.network, dev=iface.name)
        for iface in ns.interfaces
        for address in iface.addresses
        if address.network.prefixlen < address.max_prefixlen
    ]
    return connected + list(ns.routes)


def _best(routes: list[Route], destination: IPAddress) -> Route | None:
    matches = [r for r in routes if r.to.version == destination.version and destination in r.to]
    return max(matches, key=lambda r: r.to.prefixlen, default=None)


def egress(ns: Namespace, destination: IPAddress) -> str | None:
    """The device a packet from `ns` to `destination` leaves by, or None when no route matches."""
    routes = _routes(ns)
    best = _best(routes, destination)
    if best is None or best.dev is not None:
        return best.dev if best else None
    # A gateway-only route leaves by the device of the route that reaches the gateway itself.
    on_link = _best([r for r in routes if r.dev is not None], best.via) if best.via is not None else None
    return on_link.dev if on_link else None


def _source_address(ns: Namespace, dev: str, version: int) -> IPAddress | None:
    """The address the kernel picks as source: the device's first of the family, else any of the namespace's."""
    candidates = [a.ip for a in ns.interface(dev).addresses if a.version == version]
    candidates += [a.ip for iface in ns.interfaces for a in iface.addresses if a.version == version]
    return candidates[0] if candidates else None


def checks(lab: Lab) -> list[Check]:
    """Every (namespace, address) pair that a ping should succeed for, in declaration order."""
    result = []
    for link in lab.links:
        for near, far in ((link.a, link.b), (link.b, link.a)):
            src_ns, dst_ns = lab.namespace(near.namespace), lab.namespace(far.namespace)
            for address in dst_ns.interface(far.interface).addresses:
                if egress(src_ns, address.ip) != near.interface:
                    continue
                reply_to = _source_address(src_ns, near.interface, address.version)
                if reply_to is not None and egress(dst_ns, reply_to) == far.interface:
                    result.append(Check(src_ns, address.ip, far))
    return result
