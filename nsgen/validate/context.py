"""What validation's phases share: the document, the problems found, and the parts of the model the
phases have built so far, each field written by one phase (named beside it) and read by later ones.

Objects another phase found broken are named here, so a later phase passes over them and nothing
else: `incomplete` nodes (a broken link or segment may leave their interfaces unaddressed, so their
gateways are not judged), `unknown_ends` (interface names of link ends on unknown nodes, which are
not reported as unlinked), and a `Segment.broken` (no addresses handed out there).
"""

import functools
import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from nsgen.problems import Problem, field_path
from nsgen.topology.model import (
    Expected,
    IPAddress,
    IPInterface,
    IPNetwork,
    IPv4Network,
    Lab,
    Link,
    Machine,
    Namespace,
    PortForward,
    Vxlan,
    lab_address,
)

Path = list[Any]

#: Addresses and networks parsed once per text (they are immutable): a large lab names the same
#: gateways and destinations thousands of times (an address's text is worked out once, too).
parsed_address = functools.lru_cache(maxsize=4096)(lab_address)
parsed_network = functools.lru_cache(maxsize=4096)(ipaddress.ip_network)


@dataclass
class Port:
    """An interface (or a bridge's own device) as validation sees it, before it becomes a model object."""

    node: str
    name: str
    path: Path
    addresses: list[IPInterface] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)


class LinkSpec(NamedTuple):
    """A link whose ends resolved: where it is in the document, its two ends, its mapping."""

    path: Path
    ends: list[Port]
    spec: dict[str, Any]


@dataclass
class Segment:
    """An L2 segment: a veth link, or a bridge with its own device and the far ends of its ports."""

    path: Path
    label: str
    members: list[Port]
    subnets: list[IPNetwork]
    broken: bool = False


@dataclass
class Context:
    """The document being validated and what the phases have found and built."""

    doc: Any
    source: str
    problems: list[Problem] = field(default_factory=list)
    # interfaces: every declared interface and bridge device, and who owns each address
    ports: dict[tuple[str, str], Port] = field(default_factory=dict)
    bridge_ports: dict[str, Port] = field(default_factory=dict)
    owners: dict[IPAddress, str] = field(default_factory=dict)
    incomplete: set[str] = field(default_factory=set)  # interfaces, links, segments: nodes left unaddressed
    # links: the links whose ends resolved, every node:interface any link names, ends on unknown nodes
    links: list[LinkSpec] = field(default_factory=list)
    mentioned: set[tuple[str, str]] = field(default_factory=set)
    unknown_ends: set[str] = field(default_factory=set)
    # segments: the L2 segments and each bridge's or link's parsed subnets (by its path)
    segments: list[Segment] = field(default_factory=list)
    subnets: dict[tuple[Any, ...], list[IPNetwork]] = field(default_factory=dict)
    # namespaces, veth links, expectations, placement: the model's parts
    lab_namespaces: tuple[Namespace, ...] = ()
    lab_links: tuple[Link, ...] = ()
    lab_expect: tuple[Expected, ...] = ()
    nat: tuple[IPv4Network, ...] = ()
    forwards: tuple[PortForward, ...] = ()
    machines: tuple[Machine, ...] = ()
    vxlan: Vxlan = field(default_factory=Vxlan)
    bridge_hosts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    bridge_vnis: dict[str, int] = field(default_factory=dict)
    # model: the lab assembled from all of the above
    lab: Lab | None = None

    @cached_property
    def prefix(self) -> str:
        return self.doc.get("prefix", "")

    @cached_property
    def namespaces(self) -> dict[str, Any]:
        """Each namespace's mapping, by name (an empty one for `ns-0: {}` or `ns-0:`)."""
        return {name: spec or {} for name, spec in self.doc["namespaces"].items()}

    @cached_property
    def bridges(self) -> dict[str, Any]:
        return {name: spec or {} for name, spec in (self.doc.get("bridges") or {}).items()}

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(Problem(self.source, field_path(path), message))

    def is_bridge(self, node: str) -> bool:
        """Whether a link end's node is a bridge (a namespace of the same name wins, and is reported)."""
        return node in self.bridges and node not in self.namespaces

    def broken(self, segment: Segment, path: Path, message: str) -> None:
        """A problem of `segment`: addresses are not handed out there, nor gateways checked by its members."""
        self.problem(path, message)
        segment.broken = True
        self.incomplete.update(port.node for port in segment.members)

    def network(self, path: Path, text: str) -> IPNetwork | None:
        """`text` as a network, or None and a problem (a hint where only host bits are wrong)."""
        try:
            return parsed_network(text)
        except ValueError:
            try:
                hint = f"did you mean '{ipaddress.ip_network(text, strict=False)}'?"
                self.problem(path, f"'{text}' has host bits set ({hint})")
            except ValueError:
                self.problem(path, f"invalid network '{text}' (expected a CIDR such as 172.16.0.0/16)")
            return None
