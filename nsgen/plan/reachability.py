"""Which namespace should reach which address, computed from the topology's intent.

A namespace should reach every address on the L2 segments it is attached to (a veth link, or a
bridge with its ports' far ends and the bridge's own gateway addresses), and, through a route whose
gateway is a namespace with forwarding on, whatever that namespace reaches inside the route's
destination. Routes do not limit this set: a missing or wrong route makes `verify.sh` fail instead
of quietly checking less. The topology's `expect:` list adds checks, including negative ones.

Large segments are sampled so the checks grow linearly: each member pings the next few members
and every root-namespace address of the segment, and so every member is pinged at least once.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from nsgen.topology.ends import ROOT
from nsgen.topology.model import Expectation, IPAddress, Lab, Member, Namespace

#: Segments with more members than this are sampled (see the module's docstring).
FULL_SEGMENT_MAX = 16
#: How many following members each member of a sampled segment pings.
SAMPLED_PEERS = 2


@dataclass(frozen=True)
class Check:
    """`source` pings `address`, held by `target` (`ns-1:veth-1`, `bridge v-net-0`); it should succeed or not."""

    source: Namespace
    address: IPAddress
    target: str
    reachable: bool = True

    def __init__(self, source: Namespace, address: IPAddress, target: str, reachable: bool = True) -> None:
        # the frozen dataclass's own __init__, without its object.__setattr__ per field (as Command's)
        fields = self.__dict__
        fields["source"], fields["address"], fields["target"], fields["reachable"] = source, address, target, reachable

    @property
    def family(self) -> int:
        return self.address.version


class _Intent:
    """The reachability intent of one lab."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.segments = [segment.members for segment in lab.segments]
        self.attached: dict[str, list[tuple[tuple[Member, ...], int]]] = {}
        self.holders: dict[IPAddress, tuple[str, int]] = {}  # address -> (node, segment index)
        self.root_positions = {id(s): [i for i, m in enumerate(s) if m.node == ROOT] for s in self.segments}
        for index, segment in enumerate(self.segments):
            for position, member in enumerate(segment):
                self.attached.setdefault(member.node, []).append((segment, position))
                self.holders.update((a.ip, (member.node, index)) for a in member.interface.addresses)

    def _peers(self, segment: tuple[Member, ...], position: int) -> Iterator[Member]:
        """The members a member should ping: all of them, or on a large segment a sample."""
        if len(segment) <= FULL_SEGMENT_MAX:
            yield from (m for i, m in enumerate(segment) if i != position)
            return
        picked = {(position + step) % len(segment) for step in range(1, SAMPLED_PEERS + 1)}
        picked.update(self.root_positions[id(segment)])
        yield from (segment[i] for i in sorted(picked - {position}))

    def reach(self, node: str, seen: frozenset[str] = frozenset()) -> dict[IPAddress, str]:
        """Addresses `node` should reach, with who holds them, in discovery order."""
        found: dict[IPAddress, str] = {}
        for segment, position in self.attached.get(node, []):
            for peer in self._peers(segment, position):
                if peer.node != node:
                    found.update((a.ip, peer.label) for a in peer.interface.addresses)
        if node == ROOT:
            return found
        ns = self.lab.namespace(node)
        for route in ns.routes:
            gateway = self._forwarder(node, route.via) if route.via is not None else None
            if gateway is None or gateway in seen:
                continue
            forwarder = self.lab.namespace(gateway)
            held = {a.ip: f"{gateway}:{iface.name}" for iface in forwarder.interfaces for a in iface.addresses}
            for address, holder in {**held, **self.reach(gateway, seen | {node})}.items():
                if address in route.to:
                    found.setdefault(address, holder)
        return found

    def _forwarder(self, node: str, gateway: IPAddress) -> str | None:
        """The namespace holding `gateway` on a segment `node` is on, if it forwards that IP version."""
        holder, index = self.holders.get(gateway, (ROOT, -1))
        if holder in (node, ROOT) or not any(segment is self.segments[index] for segment, _ in self.attached.get(node, [])):
            return None
        return holder if self.lab.namespace(holder).forwards(gateway.version) else None


def sampled(lab: Lab) -> bool:
    """Whether some segment is large enough for its checks to be sampled."""
    return any(len(segment.members) > FULL_SEGMENT_MAX for segment in lab.segments)


def checks(lab: Lab) -> list[Check]:
    """Every ping verify.sh makes, in declaration order: the intent, then the topology's `expect:` entries."""
    intent = _Intent(lab)
    pings = [e for e in lab.expect if isinstance(e, Expectation)]
    expected = {(e.source, e.address): e.reachable for e in pings}
    result = []
    for ns in lab.namespaces:
        own = {a.ip for iface in ns.interfaces for a in iface.addresses}
        families = {a.version for a in own}
        for address, holder in intent.reach(ns.name).items():
            if address not in own and address.version in families and (not expected or expected.get((ns.name, address), True)):
                result.append(Check(ns, address, holder))
    listed = {(c.source.name, c.address) for c in result}
    for expectation in pings:
        if not expectation.reachable or (expectation.source, expectation.address) not in listed:
            holder = "expect" if expectation.reachable else "expect: unreachable"
            result.append(Check(lab.namespace(expectation.source), expectation.address, holder, expectation.reachable))
    return result
