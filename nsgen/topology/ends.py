"""Link ends by kind: the table every stage reads to tell one end from another.

A link joins two ends. Each kind of end is one entry of `END_KINDS`: how its device is named in the
`ip link add` that makes the link (`made`), whether the device is the lab's (`owned`: its facts are
declared, the root namespace's is set up and counted among the lab's devices), and the command
that deletes a link from this end (`removal`; none: never from here). Which kind of link two ends
make is the table's too: a `macvlan:PARENT` end makes the other a macvlan of PARENT, any other a
veth pair. A new kind of end is one class and one entry.
"""

from collections.abc import Callable
from dataclasses import dataclass

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


Endpoint = NamespaceEnd | BridgePort | RootEnd | MacvlanParent

#: argv of `ip`, in a namespace (None: the root namespace).
Removal = tuple[tuple[str, ...], str | None] | None


@dataclass(frozen=True)
class EndKind:
    """One kind of link end: its words in the `ip link add` that makes its link, whether its device
    is the lab's, the `ip` argv (and namespace) that deletes its link from it, and the facts that
    `ip link add` makes at the end (`nsgen.topology.facts`: KIND, DEVICE, VALUE)."""

    made: Callable[[Endpoint], tuple[str, ...]]
    owned: bool
    removal: Callable[[Endpoint], Removal]
    facts: Callable[[Endpoint], tuple[tuple[str, str, str], ...]]


def _deleted_here(end: Endpoint) -> Removal:
    return ("link", "del", "dev", end.device), end.netns


def _device(end: Endpoint) -> tuple[tuple[str, str, str], ...]:
    return (("device", end.device, ""),)


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
}


def kind(end: Endpoint) -> EndKind:
    return END_KINDS[type(end)]


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
