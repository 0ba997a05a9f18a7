"""Turning a parsed topology document into a complete `Lab`, or every problem with it.

The JSON Schema first (structure, types, name syntax): the one checkpoint that stops everything,
since the rules after it read the document's structure. Then the named phases of `PHASES`, in
order, each checking one kind of rule and completing the model (default aliases, interfaces named
only by links, addresses handed out from a segment's `subnet`). A phase never skips a check because
an unrelated problem was found: an object another phase found broken (a link with an unknown end,
a segment with a bad subnet) is marked, and only checks that read that object pass over it. So
every independent problem is reported in one run, each naming the file, the field and what is wrong.
"""

import difflib
import functools
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fastjsonschema

from nsgen.problems import Problem, TopologyError, field_path
from nsgen.topology.model import (
    HOST,
    Bridge,
    BridgePort,
    Endpoint,
    Expectation,
    HostEnd,
    Interface,
    IPAddress,
    IPInterface,
    IPNetwork,
    Lab,
    Member,
    Namespace,
    NamespaceEnd,
    Route,
    Segment,
    VethLink,
    Vxlan,
    interface_address,
)
from nsgen.topology.schema import IFNAME_MAX, NETNS_MAX, SCHEMA
from nsgen.validate import kernel_limits, placement


@functools.cache
def _fast_check() -> Callable[[Any], Any]:
    """The schema compiled to Python, once, when a topology is first checked (not at import: the
    commands that read no topology, and shell completion, start 0.05 s sooner). A valid topology
    (the common case) is checked in milliseconds; an invalid one is checked again by jsonschema,
    which names every problem."""
    return fastjsonschema.compile(SCHEMA)


#: Addresses and networks parsed once per text (they are immutable): a large lab names the same
#: gateways and destinations thousands of times.
_parsed_address = functools.lru_cache(maxsize=4096)(ipaddress.ip_address)
_parsed_network = functools.lru_cache(maxsize=4096)(ipaddress.ip_network)

#: The functions the scripts' runtime sections define (a test keeps this list whole).
RUNTIME_FUNCTIONS = """allow_forward await_batch await_batches await_root await_roots check check_unreachable delete_forward
    delete_lab display drift_report expect_addr expect_commands expect_device expect_gone expect_mac expect_master
    expect_mtu expect_netns expect_read expect_root expect_route expect_sysctl expect_up finish foreign_name
    foreign_names forget_forward forward_explain netns_batch pause record_remove record_write report root_batch
    root_job run say script_line set_sysctl start_batch stop_batches undo undo_ip""".split()

#: Names an alias must not take: shell keywords and builtins, and what the scripts call.
RESERVED_ALIASES = frozenset(
    """if then else elif fi case esac for select while until do done in function time coproc
    alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown
    echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout
    mapfile popd printf pushd pwd read readarray readonly return set shift shopt source suspend test
    times trap true type typeset ulimit umask unalias unset wait
    bash env ip ping sudo nsenter getconf flock iptables nft sysctl tcpdump
    displayLinks displayAddr displayRoutes lab_steps lab_undo_steps lab_record lab_record_old lab_expect
    lab_expect_old bridge nsgen_bridge""".split()
    + RUNTIME_FUNCTIONS
)

#: Device names the kernel keeps for itself: every namespace has `lo`; `all` and `default` name the
#: per-device sysctl directories, and the kernel refuses a device of either name.
KERNEL_DEVICE_NAMES = ("lo", "all", "default")

Path = list[Any]


def _known(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'? known: a, b)`: the close name if there is one, and every known name."""
    names = list(choices)
    close = next(iter(difflib.get_close_matches(word, names, n=1, cutoff=0.8)), None)
    hint = f"did you mean '{close}'? " if close else ""
    return f" ({hint}known: {', '.join(names)})" if names else " (none is declared)"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return f"{kinds.get(type(value), type(value).__name__)} {value!r}"


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "nothing",
}


def _schema_problems(source: str, error: Any) -> list[Problem]:
    """The problems one jsonschema ValidationError stands for, in nsgen's words."""
    path: Path = list(error.absolute_path)
    schema, value, keyword = error.schema, error.instance, error.validator
    if "propertyNames" in error.absolute_schema_path:
        path.append(value)  # the offending key itself: report it where it stands
    if keyword == "additionalProperties":
        allowed = schema.get("properties", {})
        return [
            Problem(source, field_path([*path, key]), f"unknown key{_known(str(key), allowed)}")
            for key in value
            if key not in allowed
        ]
    if keyword == "required":
        return [
            Problem(source, field_path(path), f"missing required key '{key}'")
            for key in error.validator_value
            if key not in value
        ]
    if keyword == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_TYPE_NAMES.get(kind, kind) for kind in wanted)
        hint = " (YAML reads yes/no/on/off as booleans: quote the value)" if isinstance(value, bool) else ""
        return [Problem(source, field_path(path), f"expected {expected}, got {_describe(value)}{hint}")]
    title = schema.get("title", "value")
    count = len(value) if isinstance(value, (list, dict, str)) else 0
    limit = error.validator_value
    messages = {
        "pattern": f"invalid {title} {value!r}: {schema.get('description', '')}",
        "maxLength": f"{title} {value!r} is longer than {limit} characters"
        + (" (kernel IFNAMSIZ)" if limit == IFNAME_MAX else ""),
        "minLength": f"{title} must not be empty",
        "minItems": f"a {title} has {limit} entries, got {count}",
        "maxItems": f"a {title} has at most {limit} entries, got {count}",
        "minProperties": f"{title} must not be empty",
        "minimum": f"{title} {value!r} is below {limit}",
        "maximum": f"{title} {value!r} is above {limit}",
    }
    return [Problem(source, field_path(path), messages.get(keyword, error.message))]


def check_schema(document: Any, source: str) -> None:
    """Raise TopologyError listing every structural problem of `document`."""
    if not isinstance(document, dict):
        what = "the file is empty" if document is None else f"the top level is {_describe(document)}"
        raise TopologyError([Problem(source, "", f"{what}; expected a mapping with name, namespaces and links")])
    try:
        _fast_check()(document)
        return
    except fastjsonschema.JsonSchemaException as fast_error:
        from jsonschema import Draft202012Validator  # only invalid topologies pay for its import

        problems = [p for e in Draft202012Validator(SCHEMA).iter_errors(document) for p in _schema_problems(source, e)]
        if not problems:  # the two validators disagree: still refuse, with what the fast one saw
            problems = [Problem(source, "", str(fast_error.message))]
        raise TopologyError(sorted(set(problems), key=lambda p: (p.field, p.message))) from None


@dataclass
class _Port:
    """An interface (or a bridge's own device) as validation sees it, before it becomes a model object."""

    node: str
    name: str
    path: Path
    addresses: list[IPInterface] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Segment:
    """An L2 segment: a veth link, or a bridge with its own device and the far ends of its ports."""

    path: Path
    label: str
    members: list[_Port]
    subnets: list[IPNetwork]
    broken: bool = False


class _LabBuilder:
    """The state the phases share: the document, what they have built of the model, and problems."""

    def __init__(self, document: dict[str, Any], source: str):
        self.doc = document
        self.source = source
        self.prefix: str = document.get("prefix", "")
        self.problems: list[Problem] = []
        self.namespaces: dict[str, Any] = {name: spec or {} for name, spec in document["namespaces"].items()}
        self.bridges: dict[str, Any] = {name: spec or {} for name, spec in (document.get("bridges") or {}).items()}
        self.ports: dict[tuple[str, str], _Port] = {}
        self.bridge_ports: dict[str, _Port] = {}
        self.owners: dict[IPAddress, str] = {}
        self.subnets: dict[tuple[Any, ...], list[IPNetwork]] = {}  # by the path of their bridge or link
        self.links: list[tuple[Path, list[_Port], dict[str, Any]]] = []
        self.mentioned: set[tuple[str, str]] = set()  # every node:interface a link names, even a broken link
        self.unknown_ends: set[str] = set()  # interface names of link ends on unknown nodes
        self.segments: list[_Segment] = []
        self.bad_subnets: set[tuple[Any, ...]] = set()  # paths of bridges and links with an unusable subnet
        self.incomplete: set[str] = set()  # nodes whose interfaces a broken link or segment may leave unaddressed
        self.lab_namespaces: tuple[Namespace, ...] = ()
        self.lab_links: tuple[VethLink, ...] = ()
        self.lab_expect: tuple[Expectation, ...] = ()
        self.lab_machines: tuple[Any, ...] = ()  # a multi-host lab's placement (the `placement` phase)
        self.lab_vxlan = Vxlan()
        self.bridge_hosts: dict[str, tuple[str, ...]] = {}
        self.bridge_vnis: dict[str, int] = {}

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(Problem(self.source, field_path(path), message))

    def lab(self) -> Lab:
        """The model as far as the phases built it (complete when there is no problem)."""
        ports_of: dict[str, list[_Port]] = {}
        for (node, _), port in self.ports.items():
            ports_of.setdefault(node, []).append(port)
        return Lab(
            name=self.doc["name"],
            description=self.doc.get("description", ""),
            prefix=self.prefix,
            namespaces=self.lab_namespaces,
            links=self.lab_links,
            bridges=tuple(self._bridge(name) for name in self.bridges),
            host=tuple(self._interface(port, self.prefix + port.name) for port in ports_of.get(HOST, [])),
            expect=self.lab_expect,
            segments=tuple(self._model_segment(segment) for segment in self.segments),
            machines=self.lab_machines,
            vxlan=self.lab_vxlan,
        )

    # --- names --------------------------------------------------------------------------------

    def _check_node_names(self) -> None:
        if HOST in self.namespaces:
            self.problem(["namespaces", HOST], f"'{HOST}' names the root namespace in links: choose another name")
        for name in self.bridges:
            if name in self.namespaces or name == HOST:
                self.problem(["bridges", name], f"'{name}' is also a namespace name: link ends would be ambiguous")
        for name in self.namespaces:
            if len(self.prefix + name) > NETNS_MAX:
                self.problem(["namespaces", name], f"namespace name with prefix is longer than {NETNS_MAX} characters")

    def _check_device_name(self, path: Path, device: str) -> None:
        """A device name the kernel keeps for itself cannot be a lab's (`lo`, `all`, `default`)."""
        if device in KERNEL_DEVICE_NAMES:
            self.problem(path, f"'{device}' is a name the kernel keeps ({', '.join(KERNEL_DEVICE_NAMES)}): choose another")

    def _declare_ports(self) -> None:
        """Every declared interface (namespaces' and the host's) and every bridge's own device."""
        host_interfaces = (self.doc.get("host") or {}).get("interfaces") or {}
        declared = [(name, ["namespaces", name], spec.get("interfaces") or {}) for name, spec in self.namespaces.items()]
        for node, path, interfaces in [*declared, (HOST, ["host"], host_interfaces)]:
            for ifname, spec in interfaces.items():
                port = _Port(node, ifname, [*path, "interfaces", ifname], spec=spec or {})
                if node != HOST:  # root-namespace names are checked with their prefix, as root devices
                    self._check_device_name(port.path, ifname)
                port.addresses = self._addresses(port.path, node, f"{node}:{ifname}", port.spec)
                self.ports[(node, ifname)] = port
        for name, spec in self.bridges.items():
            port = _Port(name, name, ["bridges", name], spec=spec)
            port.addresses = self._addresses(port.path, name, f"bridge {name}", spec)
            self.bridge_ports[name] = port

    def _addresses(self, path: Path, node: str, owner: str, spec: dict[str, Any]) -> list[IPInterface]:
        result = []
        for index, text in enumerate(spec.get("addresses") or []):
            try:
                address = interface_address(text)
            except ValueError:
                self.problem([*path, "addresses", index], f"invalid address '{text}' (expected e.g. 172.16.0.2 or 10.0.0.1/24)")
                self.incomplete.add(node)
                continue
            if self._claim(address.ip, owner, [*path, "addresses", index]):
                result.append(address)
        return result

    def _claim(self, address: IPAddress, owner: str, path: Path) -> bool:
        if address in self.owners:
            self.problem(path, f"address {address} is already given to {self.owners[address]}")
            return False
        self.owners[address] = owner
        return True

    # --- links and segments -------------------------------------------------------------------

    def _links(self) -> None:
        """Each link's path, its two ends as ports (created for ends that declare no interface), its spec.
        A link with a bad end is left out, and the nodes of its good ends are marked incomplete."""
        used: dict[tuple[str, str], int] = {}
        for index, raw in enumerate(self.doc.get("links") or []):
            spec = raw if isinstance(raw, dict) else {"endpoints": raw}
            path: Path = ["links", index]
            ends_path = [*path, "endpoints"] if isinstance(raw, dict) else path
            self.mentioned.update(tuple(text.split(":")) for text in spec["endpoints"])
            ends = [self._end([*ends_path, side], text, used, index) for side, text in enumerate(spec["endpoints"])]
            if None in ends or any(end.node in self.namespaces and end.node in self.bridges for end in ends):
                # a bad or ambiguous end: the nodes of the others may lack what this link would give them
                self.incomplete.update(end.node for end in ends if end is not None)
                if None in ends:
                    continue
            if all(end.node not in self.namespaces for end in ends):
                self.problem(path, "a link needs at least one namespace end")
                continue
            self.links.append((path, ends, spec))

    def _is_bridge(self, node: str) -> bool:
        """Whether a link end's node is a bridge (a namespace of the same name wins, and is reported)."""
        return node in self.bridges and node not in self.namespaces

    def _end(self, path: Path, text: str, used: dict[tuple[str, str], int], index: int) -> _Port | None:
        node, ifname = text.split(":")
        if node not in self.namespaces and node not in self.bridges and node != HOST:
            known = [*self.namespaces, *self.bridges, *([HOST] if self.doc.get("host") else [])]
            self.problem(path, f"unknown namespace '{node}'{_known(node, known)}")
            self.unknown_ends.add(ifname)
            return None
        if (node, ifname) in used:
            self.problem(path, f"interface {node}:{ifname} is already on links[{used[(node, ifname)]}]")
            return None
        used[(node, ifname)] = index
        if len(ifname) > IFNAME_MAX:
            self.problem(path, f"interface name '{ifname}' is longer than {IFNAME_MAX} characters (kernel IFNAMSIZ)")
        elif node in self.namespaces and (node, ifname) not in self.ports:
            self._check_device_name(path, ifname)
        if self._is_bridge(node):
            return _Port(node, ifname, path)  # a bridge port: L2 only, never addressed
        return self.ports.setdefault((node, ifname), _Port(node, ifname, path))

    def _check_linked(self) -> None:
        """Every declared interface is named by a link (a broken one too: its problem is reported
        already), or may be what an end on an unknown node meant (a typo of the node's name)."""
        for (node, name), port in self.ports.items():
            if (node, name) not in self.mentioned and name not in self.unknown_ends:
                self.problem(port.path, "not on any link (add it to links, or remove it)")

    def _subnets(self, path: Path, spec: dict[str, Any]) -> list[IPNetwork]:
        """The parsed `subnet` of a bridge or link, remembered for the model."""
        raw = spec.get("subnet")
        texts = [raw] if isinstance(raw, str) else raw or []
        result = []
        for index, text in enumerate(texts):
            where = [*path, "subnet", *([index] if isinstance(raw, list) else [])]
            network = self._network(where, text)
            if network is None:
                self.bad_subnets.add(tuple(path))
            elif any(net.version == network.version for net in result):
                self.problem(where, f"a second IPv{network.version} subnet: give at most one per IP version")
                self.bad_subnets.add(tuple(path))
            else:
                result.append(network)
        self.subnets[tuple(path)] = result
        return result

    def _network(self, path: Path, text: str) -> IPNetwork | None:
        try:
            return _parsed_network(text)
        except ValueError:
            try:
                hint = f"did you mean '{ipaddress.ip_network(text, strict=False)}'?"
                self.problem(path, f"'{text}' has host bits set ({hint})")
            except ValueError:
                self.problem(path, f"invalid network '{text}' (expected a CIDR such as 172.16.0.0/16)")
            return None

    def _segments(self) -> None:
        """L2 segments in declaration order: bridges first (their own device, then ports' far ends), then links."""
        segments = {
            name: _Segment(["bridges", name], f"bridge {name}", [self.bridge_ports[name]], self._subnets(["bridges", name], spec))
            for name, spec in self.bridges.items()
        }
        plain = []
        for path, ends, spec in self.links:
            bridged = [end for end in ends if self._is_bridge(end.node)]
            if bridged:
                far = next(end for end in ends if all(end is not b for b in bridged))
                segments[bridged[0].node].members.append(far)
                if spec.get("subnet") is not None:
                    self.problem([*path, "subnet"], "a link to a bridge takes its subnet from the bridge")
            else:
                plain.append(_Segment(path, field_path(path), list(ends), self._subnets(path, spec)))
        self.segments = [*segments.values(), *plain]
        for segment in self.segments:
            if tuple(segment.path) in self.bad_subnets:
                segment.broken = True
                self.incomplete.update(port.node for port in segment.members)

    def _broken(self, segment: _Segment, path: Path, message: str) -> None:
        """A problem of `segment`: addresses are not handed out there, nor gateways checked by its members."""
        self.problem(path, message)
        segment.broken = True
        self.incomplete.update(port.node for port in segment.members)

    def _check_subnets(self) -> None:
        """Addresses inside their segment's subnet; no subnet shared or overlapped by two segments."""
        networks: list[tuple[IPNetwork, _Segment]] = []
        for segment in self.segments:
            own = {net: None for net in segment.subnets}
            for port in segment.members:
                for index, address in enumerate(port.addresses):
                    declared = [net for net in segment.subnets if net.version == address.version]
                    if declared and address.ip not in declared[0]:
                        where = [*port.path, "addresses", index]
                        self._broken(segment, where, f"{address.ip} is outside the segment's subnet {declared[0]}")
                    elif not declared and address.network.prefixlen < address.max_prefixlen:
                        own.setdefault(address.network, None)
            networks += [(net, segment) for net in own]
        networks.sort(key=lambda item: (item[0].version, item[0].network_address, item[0].prefixlen))  # wider first
        widest: tuple[IPNetwork, _Segment] | None = None
        for net, segment in networks:
            if widest is not None and widest[0].version == net.version and net.subnet_of(widest[0]):  # type: ignore
                if widest[1] is not segment:
                    relation = "is also the subnet" if net == widest[0] else f"overlaps {widest[0]}"
                    self._broken(segment, segment.path, f"subnet {net} {relation} of {widest[1].label}")
                continue
            widest = (net, segment)

    def _assign_addresses(self) -> None:
        """Hand each member that declares no address of a subnet's family the next free one, in order
        (not on a broken segment)."""
        for segment in self.segments:
            for subnet in segment.subnets if not segment.broken else ():
                pool = (ip for ip in self._hosts(subnet) if ip not in self.owners)
                for port in segment.members:
                    if port is segment.members[0] and segment.path[0] == "bridges":
                        continue  # a bridge's own device takes only declared addresses (the gateway)
                    if any(a.version == subnet.version for a in port.addresses):
                        continue
                    ip = next(pool, None)
                    if ip is None:
                        message = f"subnet {subnet} has no address left for {port.node}:{port.name}"
                        self._broken(segment, [*segment.path, "subnet"], message)
                        break
                    self.owners[ip] = f"{port.node}:{port.name}"
                    port.addresses.append(interface_address((int(ip), subnet.prefixlen), subnet.version))

    @staticmethod
    def _hosts(subnet: IPNetwork) -> Iterator[IPAddress]:
        return iter(subnet.hosts()) if subnet.num_addresses > 1 else iter([subnet.network_address])

    # --- namespaces ---------------------------------------------------------------------------

    def _interface(self, port: _Port, device: str) -> Interface:
        return Interface(port.name, device, tuple(port.addresses), port.spec.get("mtu"), port.spec.get("mac"))

    def _namespaces(self) -> None:
        """The namespaces of the model: interfaces, routes (checked), sysctls, default aliases."""
        ports_of: dict[str, list[_Port]] = {}
        for (node, _), port in self.ports.items():
            ports_of.setdefault(node, []).append(port)
        self.lab_namespaces = tuple(
            self._namespace(index, name, ports_of.get(name, [])) for index, name in enumerate(self.namespaces)
        )

    def _namespace(self, index: int, name: str, ports: list[_Port]) -> Namespace:
        spec = self.namespaces[name]
        path: Path = ["namespaces", name]
        interfaces = tuple(self._interface(port, port.name) for port in ports)
        connected = [a.network for iface in interfaces for a in iface.addresses if a.network.prefixlen < a.max_prefixlen]
        routes: list[tuple[int, Route]] = []
        for route_index, route_spec in enumerate(spec.get("routes") or []):
            route = self._route([*path, "routes", route_index], route_spec, [i.name for i in interfaces])
            if route is None:
                continue
            if route.to in {r.to for _, r in routes}:
                self.problem([*path, "routes", route_index, "to"], f"a second route to {route.to}")
            routes.append((route_index, route))
        onlink = connected + [r.to for _, r in routes if r.via is None]
        # a namespace whose addresses a broken link or segment left incomplete: its gateways are not judged
        for route_index, route in routes if name not in self.incomplete else ():
            if route.via is None or (route.via.is_link_local and route.dev is not None):
                continue  # a link-local gateway is reached through the route's own device
            if not any(route.via in net for net in onlink if net.version == route.via.version):
                self.problem(
                    [*path, "routes", route_index, "via"],
                    f"gateway {route.via} is on no connected subnet of this namespace",
                )
        return Namespace(
            name=name,
            netns=self.prefix + name,
            alias=spec.get("alias") or f"ip{index}",
            interfaces=interfaces,
            routes=tuple(route for _, route in routes),
            sysctls=tuple((key, str(value)) for key, value in (spec.get("sysctls") or {}).items()),
        )

    def _route(self, path: Path, spec: dict[str, Any], ifnames: list[str]) -> Route | None:
        ok = True
        dev = spec.get("dev")
        via = None
        if dev is not None and dev not in ifnames:
            self.problem([*path, "dev"], f"unknown device '{dev}' in this namespace{_known(dev, ifnames)}")
            ok = False
        if "via" in spec:
            try:
                via = _parsed_address(spec["via"])
            except ValueError:
                self.problem([*path, "via"], f"invalid gateway address '{spec['via']}'")
                ok = False
        if dev is None and "via" not in spec:
            self.problem(path, "a route needs 'dev', 'via' or both")
            ok = False
        if spec["to"] == "default":
            to: IPNetwork | None = _parsed_network("::/0" if via is not None and via.version == 6 else "0.0.0.0/0")
        else:
            to = self._network([*path, "to"], spec["to"])
            if to is None:
                return None
        if via is not None and via.version != to.version:
            self.problem([*path, "via"], f"gateway {via} is IPv{via.version} but the destination is IPv{to.version}")
            ok = False
        return Route(to=to, dev=dev, via=via) if ok else None

    def _check_aliases(self) -> None:
        owners: dict[str, str] = {}
        for ns in self.lab_namespaces:
            path = ["namespaces", ns.name, "alias"]
            if ns.alias in RESERVED_ALIASES:
                self.problem(path, f"alias '{ns.alias}' would hide the shell's or the scripts' own '{ns.alias}'")
            elif ns.alias in owners:
                self.problem(path, f"alias '{ns.alias}' is already the alias of namespace '{owners[ns.alias]}'")
            owners.setdefault(ns.alias, ns.name)

    def _model_segment(self, segment: _Segment) -> Segment:
        """A segment of the model: its members' interfaces, a bridge's own device as the root's member."""
        members = []
        for port in segment.members:
            if segment.path[0] == "bridges" and port is self.bridge_ports.get(port.node):
                bridge = self._bridge(port.node)
                interface = Interface(bridge.name, bridge.device, bridge.addresses)
                members.append(Member(HOST, f"bridge {port.node}", interface))
            else:
                device = self.prefix + port.name if port.node == HOST else port.name
                members.append(Member(port.node, f"{port.node}:{port.name}", self._interface(port, device)))
        return Segment(segment.label, tuple(members))

    # --- root namespace -----------------------------------------------------------------------

    def _bridge(self, name: str) -> Bridge:
        addresses = tuple(self.bridge_ports[name].addresses)
        subnets = tuple(self.subnets[("bridges", name)])
        hosts, vni = self.bridge_hosts.get(name, ()), self.bridge_vnis.get(name)
        return Bridge(name, self.prefix + name, addresses, self.bridges[name].get("mtu"), subnets, hosts, vni)

    def _endpoint(self, port: _Port) -> Endpoint:
        if self._is_bridge(port.node):
            return BridgePort(port.node, port.name, self.prefix)
        if port.node == HOST:
            return HostEnd(port.name, self.prefix)
        return NamespaceEnd(port.node, port.name, self.prefix)

    def _veth_links(self) -> None:
        """The veth links of the model, each end typed (namespace end, bridge port, host end)."""
        self.lab_links = tuple(
            VethLink(self._endpoint(a), self._endpoint(b), tuple(self.subnets.get(tuple(path), ())))
            for path, (a, b), _ in self.links
        )

    def _check_root_devices(self) -> None:
        """Root-namespace names fit IFNAMSIZ with the prefix, and no two lab objects share one."""
        owners: dict[str, str] = {}
        named = [(["bridges", name], self.prefix + name, f"bridge {name}") for name in self.bridges]
        for (path, _, _), link in zip(self.links, self.lab_links, strict=True):
            named += [(path, end.device, f"link end {end}") for end in (link.a, link.b) if end.netns is None]
        for path, device, what in named:
            if device in KERNEL_DEVICE_NAMES:
                self._check_device_name(path, device)
            elif len(device) > IFNAME_MAX:
                self.problem(path, f"root-namespace device '{device}' (with prefix) is longer than {IFNAME_MAX} characters")
            elif device in owners:
                self.problem(path, f"root-namespace device '{device}' of {what} clashes with {owners[device]}")
            owners.setdefault(device, what)

    def _check_expectations(self) -> None:
        self.lab_expect = self._expectations()

    def _expectations(self) -> tuple[Expectation, ...]:
        result = []
        for index, spec in enumerate(self.doc.get("expect") or []):
            path: Path = ["expect", index]
            if spec["from"] not in self.namespaces:
                self.problem([*path, "from"], f"unknown namespace '{spec['from']}'{_known(spec['from'], self.namespaces)}")
                continue
            try:
                address = ipaddress.ip_address(spec["to"])
            except ValueError:
                self.problem([*path, "to"], f"invalid address '{spec['to']}'")
                continue
            result.append(Expectation(spec["from"], address, spec["reachable"]))
        return tuple(result)


#: The phases after the schema, in order: each checks one kind of rule and completes the model.
PHASES: tuple[tuple[str, Callable[[_LabBuilder], None]], ...] = (
    ("names", _LabBuilder._check_node_names),  # namespaces and bridges: reserved, clashing, too long
    ("interfaces", _LabBuilder._declare_ports),  # declared interfaces and bridges, their addresses
    ("links", _LabBuilder._links),  # each link's ends resolved; a broken link marks its nodes
    ("unlinked", _LabBuilder._check_linked),  # no declared interface left off every link
    ("segments", _LabBuilder._segments),  # L2 segments: bridges with their ports' far ends, links
    ("subnets", _LabBuilder._check_subnets),  # addresses inside their subnet, no subnet overlap
    ("addresses", _LabBuilder._assign_addresses),  # `subnet` hands addresses out (sound segments)
    ("namespaces", _LabBuilder._namespaces),  # routes and gateways, sysctls, default aliases
    ("aliases", _LabBuilder._check_aliases),  # the guide's helper names: unique, not the shell's
    ("veth links", _LabBuilder._veth_links),  # typed link ends
    ("root devices", _LabBuilder._check_root_devices),  # root-namespace names: fit, no clash
    ("expectations", _LabBuilder._check_expectations),  # the `expect:` list
    ("placement", placement.check),  # multi-host labs: hosts, namespaces' host, bridges' hosts, VNIs, MTUs
)


def build_lab(document: Any, source: str, prefix: str | None = None) -> Lab:
    """Validate `document` (parsed YAML) and return the complete lab; `prefix` overrides the file's.

    The schema is the checkpoint: a document of the wrong structure stops there. Then every phase
    runs, and the kernel's limits are checked on the model they built; all problems are raised at once.
    """
    if prefix is not None and isinstance(document, dict):
        document = {**document, "prefix": prefix}
    check_schema(document, source)
    builder = _LabBuilder(document, source)
    for _, phase in PHASES:
        phase(builder)
    lab = builder.lab()
    problems = builder.problems + kernel_limits.problems(lab, source)
    if problems:
        raise TopologyError(problems)
    return lab
