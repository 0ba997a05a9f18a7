"""Reading topology files (strict YAML) and writing normalised ones."""

import dataclasses
import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from nsgen.problems import Problem, TopologyError
from nsgen.topology.model import (
    Bridge,
    Conditions,
    Expected,
    Interface,
    IPNetwork,
    Lab,
    Link,
    Machine,
    Namespace,
    Route,
    RunExpectation,
    Service,
    TcpExpectation,
    stable_mac,
)

#: Larger files are refused before parsing: a lab of thousands of namespaces stays far below it.
MAX_FILE_BYTES = 8 * 1024 * 1024

#: A topology's nodes counted as its aliases expand. A lab of thousands of namespaces stays far
#: below it; a few hundred bytes of aliases nested ten deep (an alias bomb) expand to billions, and
#: are refused before anything walks them.
MAX_EXPANDED_NODES = 2_000_000

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR, _SEQ, _MAP, _MERGE = (f"tag:yaml.org,2002:{kind}" for kind in ("str", "seq", "map", "merge"))


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe YAML that refuses duplicate keys instead of keeping the last one.

    Strings, lists and mappings are built straight from the composed nodes (PyYAML's generic
    constructor took most of the load time of large labs); every other tag goes through the safe
    constructor. A node met again (an alias) gives the same object, as in PyYAML.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._plain_tags: dict[str, str] = {}

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        """A node's tag, a plain scalar's remembered by its text (the loader has no path resolvers, so
        its text alone decides it): a large lab's keys, gateways and devices are the same few words."""
        if kind is yaml.ScalarNode and implicit[0]:
            tag = self._plain_tags.get(value)
            if tag is None:
                tag = self._plain_tags[value] = super().resolve(kind, value, implicit)
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]

    def construct_document(self, node: yaml.Node) -> Any:
        if _expanded(node, {}) > MAX_EXPANDED_NODES:
            message = f"its aliases expand to more than {MAX_EXPANDED_NODES} values: refused (an alias bomb?)"
            raise yaml.constructor.ConstructorError(None, None, message, node.start_mark)
        data = self._build(node, {})
        self.constructed_objects, self.recursive_objects = {}, {}
        return data

    def _build(self, node: yaml.Node, built: dict[int, Any]) -> Any:
        if node.__class__ is yaml.ScalarNode:
            return node.value if node.tag == _STR else self.construct_object(node, deep=True)
        if id(node) in built:
            return built[id(node)]
        scalar = yaml.ScalarNode  # a string's node is read here, not through a call: most of a lab's values
        if node.__class__ is yaml.SequenceNode and node.tag == _SEQ:
            items: list[Any] = []
            built[id(node)] = items
            for item in node.value:
                items.append(item.value if item.__class__ is scalar and item.tag == _STR else self._build(item, built))
            return items
        if node.__class__ is not yaml.MappingNode or node.tag != _MAP:
            return self.construct_object(node, deep=True)  # a set, an ordered map, an unknown tag: refused
        if any(key.tag == _MERGE for key, _ in node.value):
            self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        built[id(node)] = mapping
        for key_node, value_node in node.value:
            key = key_node.value if key_node.__class__ is scalar and key_node.tag == _STR else self._build(key_node, built)
            try:
                duplicate = key in mapping
            except TypeError:  # an unhashable key: a list or mapping used as a key
                raise yaml.constructor.ConstructorError(
                    None, None, "a list or mapping cannot be a key", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            mapping[key] = (
                value_node.value if value_node.__class__ is scalar and value_node.tag == _STR else self._build(value_node, built)
            )
        return mapping


def _expanded(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values `node` holds once every alias in it is expanded (each shared node counted once a use)."""
    if node.__class__ is yaml.ScalarNode:
        return 1
    if id(node) not in sizes:
        sizes[id(node)] = 1  # a node inside itself (a recursive alias) counts once
        children = node.value if node.__class__ is yaml.SequenceNode else [n for pair in node.value for n in pair]
        scalar = yaml.ScalarNode  # a scalar counts one: no call for it (most of a lab's nodes)
        sizes[id(node)] = 1 + sum(1 if child.__class__ is scalar else _expanded(child, sizes) for child in children)
    return sizes[id(node)]


def parse(text: str, source: str) -> Any:
    """Parse YAML text; `source` names it in errors."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        what = exc.problem or exc.context or "invalid YAML"
        lines = text.splitlines()
        if mark and mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
            what = "a tab, where YAML takes spaces only: indent with spaces"
        raise TopologyError([Problem(source, where, f"YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([Problem(source, "", f"YAML: {exc}")]) from None


def read(path: Path) -> Any:
    """Read and parse a topology file, refusing what cannot be a topology before parsing it."""
    return parse(read_text(path), path.name)


def read_text(path: Path) -> str:
    """A topology file's text, refused (one problem) where it cannot be a topology: too large, not UTF-8 text."""
    source = path.name
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TopologyError(
                [Problem(source, "", f"file is {size} bytes; a topology may have at most {MAX_FILE_BYTES}")]
            )
        # opened without waiting for a writer (a FIFO nobody writes to is empty, not a hang), then read
        # to the bound whatever it is (/dev/zero, a pipe): a file's size is not all it can hold
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TopologyError([Problem(source, "", f"cannot read: {exc.strerror}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise TopologyError([Problem(source, "", f"more than {MAX_FILE_BYTES} bytes; a topology may have at most that")])
    if b"\0" in data:
        raise TopologyError([Problem(source, "", "not a text file (it contains NUL bytes)")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TopologyError([Problem(source, "", f"not UTF-8 text (bad byte at offset {exc.start})")]) from None
    return text


#: Strings YAML reads back as the same string when written bare; the rest are written JSON-quoted.
_PLAIN = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_.-]*|[0-9]+(?:\.[0-9]+){3}(?:/[0-9]+)?)$")
_SPECIAL = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])


def _scalar(value: Any) -> str:
    if type(value) is str:
        return _string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _string(str(value))


@functools.lru_cache(maxsize=4096)  # a lab's keys (alias, interfaces, addresses, routes, to, via) and gateways
def _string(text: str) -> str:
    return text if _PLAIN.match(text) and text.lower() not in _SPECIAL else _json_string(text)


#: json.dumps(text, ensure_ascii=False) of a string, without the encoder json.dumps makes for each call.
_json_string = json.encoder.encode_basestring


def _flow(value: Any) -> str:
    """A list or mapping of scalars on one line, as `[a, b]` or `{k: v}`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(_scalar(item) for item in value) + "]"


def _is_leaf(value: Any) -> bool:
    for item in value.values() if isinstance(value, dict) else value:  # noqa: SIM110 - no generator for each of thousands
        if isinstance(item, (dict, list)):
            return False
    return True


def _block(value: Any, indent: str, lines: list[str]) -> None:
    """Append the lines of a mapping or list in block style; collections of scalars go in flow style."""
    for key, item in value.items() if isinstance(value, dict) else ((None, v) for v in value):
        head = f"{indent}{_scalar(key)}:" if key is not None else f"{indent}-"
        if not isinstance(item, (dict, list)):
            lines.append(f"{head} {_scalar(item)}")
        elif not item or _is_leaf(item):
            lines.append(f"{head} {_flow(item)}")
        elif key is None:  # a list item that is itself a block: its first line follows the dash
            first = len(lines)
            _block(item, indent + "  ", lines)
            lines[first] = f"{head} {lines[first].lstrip()}"
        else:
            lines.append(head)
            _block(item, indent + ("" if isinstance(item, list) else "  "), lines)


def dump(document: dict[str, Any]) -> str:
    """YAML for a topology document: keys in the order given, block style, scalars' lists on one line.

    Hand-written for the shapes topologies have (PyYAML's representer took most of the render time
    of large labs); every output is read back with the strict loader in the tests.
    """
    lines: list[str] = []
    _block(document, "", lines)
    lines.append("")
    return "\n".join(lines)


def document(lab: Lab) -> dict[str, Any]:
    """The normalised topology of `lab`: every default filled in, every address handed out, loadable as it is."""
    doc: dict[str, Any] = {"name": lab.name, "description": lab.description}
    if lab.prefix:
        doc["prefix"] = lab.prefix
    if lab.machines:
        doc["hosts"] = {m.name: _machine(m) for m in lab.machines}
        doc["vxlan"] = {"vni_base": lab.vxlan.vni_base, "port": lab.vxlan.port}
    doc["namespaces"] = {ns.name: _namespace(ns) for ns in lab.namespaces}
    if lab.bridges:
        doc["bridges"] = {br.name: _bridge(br, lab.key) for br in lab.bridges}
    if lab.root_interfaces:
        doc["host"] = {"interfaces": {iface.name: _interface(iface) for iface in lab.root_interfaces}}
    doc["links"] = [_link(link) for link in lab.links]
    if lab.expect:
        doc["expect"] = [_expected(e) for e in lab.expect]
    if lab.nat:
        doc["nat"] = [{"from": str(network)} for network in lab.nat]
    if lab.forwards:
        doc["forward"] = [{"port": f.port, "to": f"{f.node}:{f.to_port}", "proto": f.proto} for f in lab.forwards]
    return doc


def _expected(check: Expected) -> dict[str, Any]:
    if isinstance(check, TcpExpectation):
        host = f"[{check.address}]" if check.address.version == 6 else str(check.address)
        return {"from": check.source, "tcp": f"{host}:{check.port}", "open": check.open}
    if isinstance(check, RunExpectation):
        return {"in": check.source, "run": check.command, "output": check.output}
    return {"from": check.source, "to": str(check.address), "reachable": check.reachable}


def _namespace(ns: Namespace) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "alias": ns.alias,
        "interfaces": {iface.name: _interface(iface) for iface in ns.interfaces},
        "routes": [_route(route) for route in ns.routes],
    }
    if ns.host is not None:
        entry["host"] = ns.host
    if ns.sysctls:
        entry["sysctls"] = {key: int(value) if value.isdigit() else value for key, value in ns.sysctls}
    if ns.services:
        entry["run"] = [_service(service) for service in ns.services]
    return entry


def _service(service: Service) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": service.name, "command": service.command}
    if service.ready is not None:
        kind, _, value = service.ready.partition(":")
        entry["ready"] = {kind: int(value) if kind == "tcp" else value, "timeout": service.timeout}
    return entry


def _interface(iface: Interface) -> dict[str, Any]:
    entry: dict[str, Any] = {"addresses": [a.with_prefixlen for a in iface.addresses]}
    if iface.mtu is not None:
        entry["mtu"] = iface.mtu
    if iface.mac is not None:
        entry["mac"] = iface.mac
    return entry


def _subnet(subnets: tuple[IPNetwork, ...]) -> str | list[str]:
    return str(subnets[0]) if len(subnets) == 1 else [str(net) for net in subnets]


def _bridge(bridge: Bridge, lab_key: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"addresses": [a.with_prefixlen for a in bridge.addresses]}
    if bridge.subnets:
        entry["subnet"] = _subnet(bridge.subnets)
    if bridge.mtu is not None:
        entry["mtu"] = bridge.mtu
    if bridge.mac != stable_mac(lab_key, bridge.name):  # a declared one
        entry["mac"] = bridge.mac
    if bridge.hosts:
        entry["hosts"] = list(bridge.hosts)
    if bridge.vni is not None:
        entry["vni"] = bridge.vni
    return entry


def _machine(machine: Machine) -> dict[str, Any]:
    entry: dict[str, Any] = {"address": str(machine.address), "mtu": machine.mtu}
    if machine.ansible:
        entry["ansible"] = dict(machine.ansible)
    return entry


def _link(link: Link) -> list[str] | dict[str, Any]:
    ends = [str(link.a), str(link.b)]
    entry: dict[str, Any] = {"endpoints": ends, **({"subnet": _subnet(link.subnets)} if link.subnets else {})}
    entry |= {"vni": link.vni} if link.vni is not None else {}
    a, b = link.sends
    if a is not None and a == b:
        entry |= _conditions(a)
    elif a is not None or b is not None:
        entry["from"] = {end.node: _conditions(c) for end, c in zip((link.a, link.b), link.sends, strict=True) if c is not None}
    return entry if len(entry) > 1 else ends


def _conditions(conditions: Conditions) -> dict[str, str]:
    return {key: value for key, value in dataclasses.asdict(conditions).items() if value is not None}


def _route(route: Route) -> dict[str, str]:
    entry = {"to": route.destination}
    if route.dev is not None:
        entry["dev"] = route.dev
    if route.via is not None:
        entry["via"] = str(route.via)
    return entry
