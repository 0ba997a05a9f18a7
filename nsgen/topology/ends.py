"""Link ends by kind: the table every stage reads to tell one end from another.

A link joins two ends. Each kind of end is one entry of `END_KINDS`: how its device is named in the
`ip link add` that makes the link (`made`), whether the device is the lab's (`owned`: its facts are
declared, the root namespace's is set up and counted among the lab's devices), the command that
deletes a link from this end (`removal`; none: never from here), and the facts its `ip link add`
makes. Which kind of link two ends make is the table's too: a `macvlan:PARENT` end makes the other a
macvlan of PARENT, any other a veth pair. A VXLAN end (a multi-host lab's part: a link's end whose
peer is on another machine, or a spanning bridge's port) has no peer here: its entry's `alone` gives
the rest of its `ip link add` (`device_words`). A new kind of end is one class and one entry.
"""

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nsgen.topology.conditions import Conditions

#: The node of the root namespace in link ends (`host:veth-h`) and the topology's `host:` key. In the
#: code "host" means a machine only (Namespace.host, Bridge.hosts, a multi-host lab's `hosts:`); the
#: root namespace is ROOT, and its interfaces are Lab.root_interfaces.
ROOT = "host"
#: The node of a macvlan link's parent (`macvlan:PARENT`).
MACVLAN = "macvlan"


@dataclass(frozen=True)
class NamespaceEnd:
    """A link's end inside a lab namespace: its device keeps the topology's name; the namespace is prefixed."""

    node: str
    interface: str
    prefix: str = ""
    bridge = None

    @property
    def netns(self) -> str:
        return self.prefix + self.node

    @property
    def device(self) -> str:
        return self.interface

    def __str__(self) -> str:
        return f"{self.node}:{self.interface}"


@dataclass(frozen=True)
class BridgePort:
    """A veth end in the root namespace plugged into the bridge `node`: device and bridge are prefixed."""

    node: str
    interface: str
    prefix: str = ""
    netns = None

    @property
    def device(self) -> str:
        return self.prefix + self.interface

    @property
    def bridge(self) -> str:
        return self.prefix + self.node

    def __str__(self) -> str:
        return f"{self.node}:{self.interface}"


@dataclass(frozen=True)
class RootEnd:
    """A veth end in the root namespace itself (`host:IFNAME`), addressed under `host:`; prefixed."""

    interface: str
    prefix: str = ""
    node = ROOT
    netns = None
    bridge = None

    @property
    def device(self) -> str:
        return self.prefix + self.interface

    def __str__(self) -> str:
        return f"{self.node}:{self.interface}"


@dataclass(frozen=True)
class MacvlanParent:
    """The parent of a macvlan link (`macvlan:PARENT`): a root-namespace device the lab does not own,
    named as the machine names it (no prefix). The lab never changes it, and never deletes it."""

    interface: str
    node = MACVLAN
    netns = None
    bridge = None

    @property
    def device(self) -> str:
        return self.interface

    def __str__(self) -> str:
        return f"{self.node}:{self.interface}"


@dataclass(frozen=True)
class VxlanEnd:
    """One machine's end of a cross-host veth link: a VXLAN device made in the machine's root namespace
    (its socket stays there, on the underlay) directly inside the lab namespace, under the interface's name."""

    end: NamespaceEnd
    vni: int
    local: IPv4Address | IPv6Address
    remote: IPv4Address | IPv6Address
    port: int
    mtu: int
    sends: "Conditions | None" = None  # the link's conditions on what this end sends (tc on the VXLAN device)
    mac: str = ""  # its own MAC: the interface's, else a stable one

    @property
    def netns(self) -> str:
        return self.end.netns

    @property
    def device(self) -> str:
        return self.end.interface

    @property
    def place(self) -> tuple[str | None, str]:
        """Where the device is: its namespace (kernel name) and its name."""
        return self.end.netns, self.end.interface


@dataclass(frozen=True)
class VxlanPort:
    """One machine's VXLAN device of a bridge spanning machines: a port of its part of the bridge, with
    head-end replication (an all-zero FDB entry) to each other machine's part."""

    device: str
    bridge: str
    vni: int
    local: IPv4Address | IPv6Address
    remotes: tuple[IPv4Address | IPv6Address, ...]
    port: int
    mtu: int
    netns = None

    @property
    def place(self) -> tuple[str | None, str]:
        """Where the device is: the root namespace (None) and its name."""
        return None, self.device


Endpoint = NamespaceEnd | BridgePort | RootEnd | MacvlanParent
#: A multi-host lab's VXLAN device on one machine: an end made alone, its peer on another machine.
Tunnel = VxlanEnd | VxlanPort

#: argv of `ip`, in a namespace (None: the root namespace).
Removal = tuple[tuple[str, ...], str | None] | None


@dataclass(frozen=True)
class EndKind:
    """One kind of link end: its words in the `ip link add` that makes its link, whether its device
    is the lab's, the `ip` argv (and namespace) that deletes its link from it, the facts that `ip
    link add` makes at the end (`nsgen.topology.facts`: KIND, DEVICE, VALUE), and for an end made
    alone (a VXLAN device), the rest of its `ip link add` (its type and settings)."""

    made: Callable[[Endpoint | Tunnel], tuple[str, ...]]
    owned: bool
    removal: Callable[[Endpoint | Tunnel], Removal]
    facts: Callable[[Endpoint | Tunnel], tuple[tuple[str, str, str], ...]]
    alone: Callable[[Tunnel], tuple[str, ...]] | None = None


def _deleted_here(end: Endpoint | Tunnel) -> Removal:
    return ("link", "del", "dev", end.device), end.netns


def _device(end: Endpoint | Tunnel) -> tuple[tuple[str, str, str], ...]:
    return (("device", end.device, ""),)


def _vxlan(tunnel: Tunnel) -> tuple[str, ...]:
    return ("type", "vxlan", "id", str(tunnel.vni), "local", str(tunnel.local))


END_KINDS: dict[type, EndKind] = {
    NamespaceEnd: EndKind(lambda e: ("name", e.device, "netns", e.netns or ""), True, _deleted_here, _device),
    BridgePort: EndKind(
        lambda e: ("name", e.device, "master", e.bridge or ""),
        True,
        _deleted_here,
        lambda e: (("device", e.device, ""), ("master", e.device, e.bridge or "")),
    ),
    RootEnd: EndKind(lambda e: ("name", e.device), True, _deleted_here, _device),
    MacvlanParent: EndKind(lambda e: ("link", e.device), False, lambda e: None, lambda e: ()),
    VxlanEnd: EndKind(
        lambda e: ("name", e.device, "netns", e.netns or "", *(("address", e.mac) if e.mac else ())),
        True,
        _deleted_here,
        _device,
        alone=lambda e: (*_vxlan(e), "remote", str(e.remote), "dstport", str(e.port)),
    ),
    VxlanPort: EndKind(
        lambda e: ("name", e.device, "mtu", str(e.mtu), "master", e.bridge),
        True,
        _deleted_here,
        lambda e: (("device", e.device, ""), ("mtu", e.device, str(e.mtu)), ("master", e.device, e.bridge)),
        alone=lambda e: (*_vxlan(e), "dstport", str(e.port)),
    ),
}


def kind(end: Endpoint | Tunnel) -> EndKind:
    return END_KINDS[type(end)]


def device_words(tunnel: Tunnel) -> tuple[str, ...]:
    """`ip link add` of an end made alone (a VXLAN device): its name and place, then its type."""
    made_alone = kind(tunnel).alone
    assert made_alone is not None, f"{type(tunnel).__name__} is made with its peer"
    return ("link", "add", *kind(tunnel).made(tunnel), *made_alone(tunnel))


def owned(end: Endpoint) -> bool:
    """Whether `end`'s device is the lab's (a macvlan's parent is not)."""
    return END_KINDS[type(end)].owned


def link_words(a: Endpoint, b: Endpoint) -> tuple[str, ...]:
    """`ip link add` of a link between `a` and `b` (in their creation order): a macvlan of a parent
    (bridge mode: its macvlans on one parent reach each other), else a veth pair."""
    if isinstance(b, MacvlanParent) or isinstance(a, MacvlanParent):
        end, parent = (a, b) if isinstance(b, MacvlanParent) else (b, a)
        return ("link", "add", *kind(parent).made(parent), *kind(end).made(end), "type", "macvlan", "mode", "bridge")
    return ("link", "add", *kind(a).made(a), "type", "veth", "peer", *kind(b).made(b))
