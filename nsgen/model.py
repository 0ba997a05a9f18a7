"""The lab as a plain graph: namespaces with interfaces and routes, joined by veth links.

Objects here are validated and complete (defaults filled in, prefix applied): templates read them and
decide nothing. Building a `Lab` is `validation`'s job; turning it into scripts is `rendering`'s.
"""

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface
IPNetwork = IPv4Network | IPv6Network


@dataclass(frozen=True)
class Interface:
    """A network device inside a namespace, with the addresses given to it."""

    name: str
    addresses: tuple[IPInterface, ...] = ()


@dataclass(frozen=True)
class Route:
    """A route in a namespace: to a network (prefix length 0 for `default`), out a device and/or via a gateway."""

    to: IPNetwork
    dev: str | None = None
    via: IPAddress | None = None

    @property
    def destination(self) -> str:
        """As `ip route` and the topology write it: `default` or a CIDR."""
        return "default" if self.to.prefixlen == 0 else str(self.to)


@dataclass(frozen=True)
class Namespace:
    """A network namespace: `name` as in the topology, `netns` as the kernel knows it (prefixed)."""

    name: str
    netns: str
    alias: str
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...] = ()

    def interface(self, name: str) -> Interface:
        return next(iface for iface in self.interfaces if iface.name == name)


@dataclass(frozen=True)
class Endpoint:
    """One end of a link: an interface of a namespace."""

    namespace: str
    interface: str

    def __str__(self) -> str:
        return f"{self.namespace}:{self.interface}"


@dataclass(frozen=True)
class VethLink:
    """A veth pair, each end created directly in its namespace."""

    a: Endpoint
    b: Endpoint


@dataclass(frozen=True)
class Lab:
    """A complete, validated lab."""

    name: str
    description: str
    prefix: str
    namespaces: tuple[Namespace, ...]
    links: tuple[VethLink, ...] = ()

    def namespace(self, name: str) -> Namespace:
        return next(ns for ns in self.namespaces if ns.name == name)
