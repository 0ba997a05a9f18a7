"""The lab as a plain graph: namespaces and root-namespace bridges and devices, joined by veth links.

Objects here are validated and complete (defaults filled in, addresses handed out, prefix applied):
templates read them and decide nothing. Building a `Lab` is `nsgen.validate`'s job; turning it into
scripts is `nsgen.plan`'s and `nsgen.render`'s.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Any, Generic, TypeVar

from nsgen.topology.conditions import Conditions
from nsgen.topology.ends import Endpoint, NamespaceEnd, Tunnel, VxlanEnd, VxlanPort, owned

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface
IPNetwork = IPv4Network | IPv6Network

T = TypeVar("T")


class once(Generic[T]):  # named as functools.cached_property, which it stands for
    """functools.cached_property without the lock Python 3.11 takes on each first read (1 µs: a lab's
    addresses and routes are read by the ten thousand): worked out on the first read, then read as the
    instance's own attribute. For immutable objects only: nothing ever works it out again."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


class _LabIPv4Address(IPv4Address):
    """An IPv4 address whose text and hash are worked out once: a lab's gateways and its pings'
    addresses are written and looked up thousands of times (ipaddress computes them on every read).
    Equal to, hashed and shown (repr) as the IPv4Address it is."""

    _text = once(IPv4Address.__str__)
    _hash = once(IPv4Address.__hash__)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"IPv4Address({self._text!r})"

    def __hash__(self) -> int:
        return self._hash


class _LabIPv6Address(IPv6Address):
    """_LabIPv4Address's IPv6 twin."""

    _text = once(IPv6Address.__str__)
    _hash = once(IPv6Address.__hash__)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"IPv6Address({self._text!r})"

    def __hash__(self) -> int:
        return self._hash


def lab_address(value: str | int) -> IPAddress:
    """ipaddress.ip_address, as a lab keeps its addresses (their text worked out once)."""
    try:
        return _LabIPv4Address(value)
    except ValueError:  # AddressValueError
        pass
    try:
        return _LabIPv6Address(value)
    except ValueError:
        pass
    raise ValueError(f"{value!r} does not appear to be an IPv4 or IPv6 address")


class _LabIPv4Interface(IPv4Interface):
    """An interface's IPv4 address whose host address and text are worked out once: a lab's plans,
    checks, declared state and record each read them (ipaddress computes them on every read)."""

    ip = once(lambda self: _LabIPv4Address(self._ip))  # type: ignore[assignment]
    with_prefixlen = once(IPv4Interface.with_prefixlen.fget)  # type: ignore[assignment, arg-type]
    _text = once(IPv4Interface.__str__)

    def __str__(self) -> str:
        return self._text


class _LabIPv6Interface(IPv6Interface):
    """_LabIPv4Interface's IPv6 twin."""

    ip = once(lambda self: _LabIPv6Address(self._ip))  # type: ignore[assignment]
    with_prefixlen = once(IPv6Interface.with_prefixlen.fget)  # type: ignore[assignment, arg-type]
    _text = once(IPv6Interface.__str__)

    def __str__(self) -> str:
        return self._text


def interface_address(value: str | tuple[int, int], version: int | None = None) -> IPInterface:
    """An interface address from its text (`10.0.0.2/24`, `fd00::2/64`), or from (integer, prefix
    length) and the IP `version`; ValueError if it is none."""
    if version is None:
        try:
            return _LabIPv4Interface(value)
        except ValueError:
            return _LabIPv6Interface(value)
    return _LabIPv4Interface(value) if version == 4 else _LabIPv6Interface(value)


#: The sysctls that make a namespace forward packets, by IP version.
FORWARDING_SYSCTLS = {
    4: ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding"),
    6: ("net.ipv6.conf.all.forwarding",),
}


@dataclass(frozen=True)
class Interface:
    """A network device: `name` as in the topology, `device` as the kernel names it (prefixed in the root)."""

    name: str
    device: str
    addresses: tuple[IPInterface, ...] = ()
    mtu: int | None = None
    mac: str | None = None


@dataclass(frozen=True)
class Route:
    """A route in a namespace: to a network, out a device and/or via a gateway."""

    to: IPNetwork
    dev: str | None = None
    via: IPAddress | None = None

    @once
    def destination(self) -> str:
        """As the topology and `ip route` write it: `default` for IPv4's 0.0.0.0/0, else the CIDR."""
        return "default" if self.to.version == 4 and self.to.prefixlen == 0 else str(self.to)

    @once
    def text(self) -> str:
        """As `ip route` shows it: `default via 172.16.0.1`, `10.0.2.0/24 dev eth0`, a host route bare."""
        to = self.to
        dest = "default" if to.prefixlen == 0 else str(to.network_address) if to.prefixlen == to.max_prefixlen else str(to)
        return " ".join([dest, *(("via", str(self.via)) if self.via else ()), *(("dev", self.dev) if self.dev else ())])


@dataclass(frozen=True)
class Service:
    """A process a lab runs in a namespace: `command`, a shell command line its author wrote, run
    under `bash -c`; `ready`, what setup waits for it to do (`tcp:80`: listen on the port;
    `file:/run/x`: make the file), up to `timeout` seconds."""

    name: str
    command: str
    ready: str | None = None
    timeout: int = 10


@dataclass(frozen=True)
class Namespace:
    """A network namespace: `name` as in the topology, `netns` as the kernel knows it (prefixed)."""

    name: str
    netns: str
    alias: str
    interfaces: tuple[Interface, ...]
    routes: tuple[Route, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    host: str | None = None  # the machine it is placed on (multi-host labs)
    services: tuple[Service, ...] = ()

    def interface(self, name: str) -> Interface:
        for iface in self.interfaces:
            if iface.name == name:
                return iface
        raise StopIteration  # as next() over no interface of that name

    def forwards(self, version: int) -> bool:
        """Whether its sysctls turn on forwarding for IP `version`."""
        return any(key in FORWARDING_SYSCTLS[version] and value == "1" for key, value in self.sysctls)


@dataclass(frozen=True)
class Bridge:
    """A Linux bridge in the root namespace; its addresses make the root namespace a member (the gateway)."""

    name: str
    device: str
    addresses: tuple[IPInterface, ...] = ()
    mtu: int | None = None
    subnets: tuple[IPNetwork, ...] = ()
    hosts: tuple[str, ...] = ()  # the machines it spans (multi-host labs): one bridge each, joined by VXLAN
    vni: int | None = None  # the VXLAN network of a bridge that spans machines
    mac: str = ""  # its own MAC (`stable_mac` unless declared): it never follows its ports'


def stable_mac(lab_key: str, name: str) -> str:
    """A device's own MAC, stable across runs: from the lab's key and the device's name, locally
    administered and unicast. A bridge's: without one, a bridge takes its lowest port's MAC, and
    changes it as ports come and go (neighbours keep the old one for about 30 s and lose their
    gateway). A VXLAN end's: made again by apply, it keeps its MAC, which the far end's neighbour
    entry holds (on another machine, which that apply does not touch)."""
    octets = bytearray(hashlib.sha256(f"{lab_key}/{name}".encode()).digest()[:6])
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{octet:02x}" for octet in octets)




@dataclass(frozen=True)
class Link:
    """A link between two ends, made in one `ip link add` (`nsgen.topology.ends`): a veth pair, each
    end created directly where it lives, or a macvlan of a parent; `subnets` hand addresses to its
    ends; `sends` the conditions on what end a, then end b, sends (egress on its device)."""

    a: Endpoint
    b: Endpoint
    subnets: tuple[IPNetwork, ...] = ()
    vni: int | None = None  # the VXLAN network of a link whose ends sit on different machines
    sends: tuple[Conditions | None, Conditions | None] = (None, None)

    @property
    def creation_order(self) -> tuple[Endpoint, Endpoint]:
        """The root-namespace end first: `ip link add` gives `master` and `up` to the first device only."""
        return (self.b, self.a) if self.a.netns is not None and self.b.netns is None else (self.a, self.b)


@dataclass(frozen=True)
class Machine:
    """A machine of a multi-host lab: its underlay `address` (the VXLAN endpoint, and Ansible's
    `ansible_host` unless `ansible` says otherwise), the underlay's MTU, and Ansible connection variables."""

    name: str
    address: IPAddress
    mtu: int = 1500
    ansible: tuple[tuple[str, str | int | bool], ...] = ()

    @property
    def overlay_mtu(self) -> int:
        """The most a VXLAN device over this underlay carries: minus the outer IP, UDP, VXLAN, Ethernet headers."""
        return self.mtu - (VXLAN_OVERHEAD[self.address.version])


#: Bytes VXLAN adds to a frame: outer IPv4 (20) or IPv6 (40) header, UDP (8), VXLAN (8), inner Ethernet (14).
VXLAN_OVERHEAD = {4: 50, 6: 70}


@dataclass(frozen=True)
class Vxlan:
    """A multi-host lab's VXLAN settings: VNIs handed out from `vni_base`, the UDP `port`."""

    vni_base: int = 1000
    port: int = 4789


@dataclass(frozen=True)
class Member:
    """An addressable interface on an L2 segment: `node` is a namespace's name, or ROOT for the root."""

    node: str
    label: str
    interface: Interface


@dataclass(frozen=True)
class Segment:
    """An L2 segment: a veth link's two ends, or a bridge's own device and the far ends of its ports.
    Computed once by validation; reachability reads it."""

    label: str
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Expectation:
    """An explicit reachability check from the topology's `expect:` list: a ping from `source`."""

    source: str
    address: IPAddress
    reachable: bool


@dataclass(frozen=True)
class TcpExpectation:
    """A TCP connection from `source` to `address`:`port` that must open, or must not (`open`)."""

    source: str
    address: IPAddress
    port: int
    open: bool = True


@dataclass(frozen=True)
class RunExpectation:
    """A command run inside `source` (the topology's `in:`) whose output must match `output` (bash's
    `=~`, an extended regular expression)."""

    source: str
    command: str
    output: str


@dataclass(frozen=True)
class PortForward:
    """Connections to the machine's `port` (`proto`) reach `address`:`to_port`, in the namespace `node`."""

    port: int
    node: str
    address: IPv4Address
    to_port: int
    proto: str = "tcp"


#: An entry of the topology's `expect:` list.
Expected = Expectation | TcpExpectation | RunExpectation


@dataclass(frozen=True)
class Lab:
    """A complete, validated lab."""

    name: str
    description: str
    prefix: str
    namespaces: tuple[Namespace, ...]
    links: tuple[Link, ...] = ()
    bridges: tuple[Bridge, ...] = ()
    root_interfaces: tuple[Interface, ...] = ()  # the topology's `host:` interfaces
    expect: tuple[Expected, ...] = ()
    segments: tuple[Segment, ...] = ()
    machines: tuple[Machine, ...] = ()  # a multi-host lab's `hosts:` (none: a one-machine lab)
    vxlan: Vxlan = Vxlan()
    tunnels: tuple[Tunnel, ...] = ()  # one machine's part of a multi-host lab: its VXLAN devices
    peers: tuple[Namespace, ...] = ()  # one machine's part: the other machines' namespaces (for reachability)
    nat: tuple[IPv4Network, ...] = ()  # lab subnets masqueraded as they leave the machine
    forwards: tuple[PortForward, ...] = ()  # the machine's ports forwarded into the lab

    @property
    def key(self) -> str:
        """The lab's name on its machine (prefix and name): its record's, its services' directory's."""
        return self.prefix + self.name

    @cached_property
    def _namespaces_by_name(self) -> dict[str, Namespace]:
        return {ns.name: ns for ns in (*self.peers, *self.namespaces)}

    def machine(self, name: str) -> Machine:
        return next(machine for machine in self.machines if machine.name == name)

    def namespace(self, name: str) -> Namespace:
        return self._namespaces_by_name[name]

    def bridge(self, name: str) -> Bridge:
        return next(br for br in self.bridges if br.name == name)

    def interface_of(self, end: Endpoint) -> Interface | None:
        """The interface a link end is: a namespace's or the root namespace's; None for a bridge port."""
        if isinstance(end, NamespaceEnd):
            return self.namespace(end.node).interface(end.interface)
        return next((iface for iface in self.root_interfaces if iface.name == end.interface), None)

    @property
    def conditioned(self) -> tuple[tuple[str, Endpoint, Conditions], ...]:
        """Every end whose sent traffic is conditioned: the link it ends (`a:e0 -- b:e0`; a VXLAN end's,
        `a:x -- vxlan 1000`), the end, and its conditions."""
        ends = [
            (f"{link.a} -- {link.b}", end, c)
            for link in self.links
            for end, c in zip((link.a, link.b), link.sends, strict=True)
            if c
        ]
        tunnels = [(f"{t.end} -- vxlan {t.vni}", t.end, t.sends) for t in self.tunnels if isinstance(t, VxlanEnd) and t.sends]
        return (*ends, *tunnels)

    @once
    def root_devices(self) -> tuple[str, ...]:
        """Every device the lab makes in the root namespace: bridges, bridge ports, root ends (not a macvlan's parent)."""
        ends = [end.device for link in self.links for end in (link.a, link.b) if end.netns is None and owned(end)]
        ports = [tunnel.device for tunnel in self.tunnels if isinstance(tunnel, VxlanPort)]
        return (*(br.device for br in self.bridges), *ends, *ports)
